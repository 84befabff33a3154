"""Rewrites that make an annotated QONNX graph one FINN's builder takes as it is.

FINN (dev) refuses an unsigned identity ``Quant`` (``step_qonnx_to_finn``: "FINN only
supports signed Quant nodes for identity activations") and reads a symbolic batch
dimension as 0 (every MVAU gets ``numInputVectors=[0]`` and the estimates divide by
zero). FINN's own end-to-end flows quantize the input outside the accelerator: the graph
input carries integers annotated with their DataType, followed by a ``Mul`` by the scale.
Both rewrites keep the function exact: ``Quant(x) == round(x / s) * s`` and the FINN graph
computes ``Mul(x_int, s)`` from ``x_int = clip(round(x / s), lo, hi)`` (:func:`quantize_input`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.infer_shapes import InferShapes

from axe_deploy.graph.layers import GraphError, quant_spec


@dataclass(frozen=True)
class InputQuantization:
    """How a float input becomes the integer input of the FINN graph."""

    scale: float
    datatype: str
    lo: int
    hi: int

    def as_dict(self) -> dict:
        return {"scale": self.scale, "zero_point": 0, "datatype": self.datatype, "min": self.lo, "max": self.hi,
                "rounding": "half to even", "formula": "x_int = clip(round(x / scale), min, max)"}


def quantize_input(x: np.ndarray, q: InputQuantization | None) -> np.ndarray:
    """The integers (float32 container) the FINN graph takes for the float input ``x``."""
    if q is None:
        return np.asarray(x, dtype=np.float32)
    return np.clip(np.round(np.asarray(x, dtype=np.float64) / q.scale), q.lo, q.hi).astype(np.float32)


def _input_quant(model: ModelWrapper):
    """The Quant node that alone reads the graph input with one scale, else None."""
    consumers = model.find_consumers(model.graph.input[0].name) or []
    if len(consumers) != 1 or consumers[0].op_type != "Quant":
        return None
    try:
        spec = quant_spec(model, consumers[0])
    except GraphError:
        return None
    return consumers[0] if spec.scale.size == 1 else None


def input_quantization(model: ModelWrapper) -> InputQuantization | None:
    """How the float input becomes the FINN graph's integer input; None when the graph
    input is not read by one per-tensor Quant (e.g. FINN's own graphs with a preprocessing
    Mul/Add first): then the FINN graph keeps its input as it is."""
    q = _input_quant(model)
    if q is None:
        return None
    spec = quant_spec(model, q)
    dt = DataType[spec.datatype]
    lo = int(dt.min()) + int(spec.narrow and spec.signed)
    return InputQuantization(float(spec.scale.reshape(-1)[0]), spec.datatype, lo, int(dt.max()))


class IntegerGraphInput(Transformation):
    """Input ``Quant`` -> graph input annotated with its integer DataType, then ``Mul`` by the scale."""

    def apply(self, model: ModelWrapper):
        q = _input_quant(model)
        if q is None:
            return model, False
        info = input_quantization(model)
        inp = model.graph.input[0].name
        scale_name = model.make_new_valueinfo_name()
        model.set_initializer(scale_name, np.asarray(info.scale, dtype=np.float32))
        mul = helper.make_node("Mul", [inp, scale_name], [q.output[0]], name="InputScale")
        model.graph.node.insert(list(model.graph.node).index(q), mul)
        model.graph.node.remove(q)
        for name in q.input[1:]:
            if not model.find_consumers(name):
                model.del_initializer(name)
        model.set_tensor_datatype(inp, DataType[info.datatype])
        return model, False


class StaticBatchOne(Transformation):
    """Every graph input and output gets batch dimension 1; shapes inferred again."""

    def apply(self, model: ModelWrapper):
        for vi in [*model.graph.input, *model.graph.output]:
            dims = vi.type.tensor_type.shape.dim
            if dims:
                dims[0].Clear()
                dims[0].dim_value = 1
        del model.graph.value_info[:]
        return model.transform(InferShapes()), False


class ConvBiasQuantParamsAsVectors(Transformation):
    """0-d scale/zero-point of a Conv's bias ``Quant`` -> shape (1,).

    qonnx's ``ExtractBiasFromConv`` (run by FINN's ``step_qonnx_to_finn``) reshapes every
    parameter whose shape is not ``(1,)`` to the channel shape, so a 0-d zero point (what
    Brevitas exports) fails with "cannot reshape array of size 1". Same values, same function.
    """

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type != "Conv" or len(node.input) < 3:
                continue
            quant = model.find_producer(node.input[2])
            if quant is None or quant.op_type != "Quant":
                continue
            for name in quant.input[1:3]:
                value = model.get_initializer(name)
                if value is not None and value.ndim == 0:
                    if len(model.find_consumers(name)) > 1:  # shared constant: give this Quant its own
                        new = model.make_new_valueinfo_name()
                        quant.input[list(quant.input).index(name)] = new
                        name = new
                    model.set_initializer(name, value.reshape(1))
        return model, False


def finn_graph(model: ModelWrapper) -> ModelWrapper:
    """The handoff's ``model.onnx``: annotations kept, integer input, batch 1."""
    for t in (IntegerGraphInput(), ConvBiasQuantParamsAsVectors(), StaticBatchOne()):
        model = model.transform(t)
    return model
