"""Lowering as a readable list of small transformations, the integer executor of the
dataflow graph, and the bridge to the hardware backend's layer specs.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import GiveReadableTensorNames, SortGraph

from axe_deploy.dataflow.transforms import CheckDataflow, ConvertInputQuant, ConvertLayersToMVAU
from axe_deploy.graph import PASS_THROUGH_OPS, GraphError, _attr
from axe_deploy.hw.spec import MVAULayer

LOWERING = [
    ("convert_layers_to_mvau", ConvertLayersToMVAU),  # reads the input Quant's scale: first
    ("convert_input_quant", ConvertInputQuant),
    ("check_dataflow", CheckDataflow),
]


def lower(model: ModelWrapper) -> ModelWrapper:
    """Annotated QONNX -> dataflow graph (InputQuant, MVAU, ChannelwiseAffine, shape ops)."""
    model = ModelWrapper(model.model.__deepcopy__())
    model = model.transform(SortGraph())
    for _, transformation in LOWERING:
        model = model.transform(transformation())
    return model.transform(GiveReadableTensorNames())


def _init(model: ModelWrapper, name: str) -> np.ndarray:
    return model.get_initializer(name)


def hw_layers(model: ModelWrapper) -> list[MVAULayer]:
    """The MVAU nodes as hardware specs, in graph order, with their current PE/SIMD."""
    layers = []
    for node in model.graph.node:
        if node.op_type != "MVAU":
            continue
        acc = DataType[_attr(node, "accDataType")]
        inp = DataType[_attr(node, "inputDataType")]
        w = DataType[_attr(node, "weightDataType")]
        thresholds = _init(model, node.input[2]) if len(node.input) > 2 else None
        layers.append(MVAULayer(
            name=_attr(node, "layer_name"), MW=_attr(node, "MW"), MH=_attr(node, "MH"),
            SIMD=_attr(node, "SIMD"), PE=_attr(node, "PE"), input_bits=inp.bitwidth(),
            input_signed=inp.signed(), weight_bits=w.bitwidth(), acc_bits=acc.bitwidth(),
            acc_signed=acc.signed(), weights=_init(model, node.input[1]).T,
            thresholds=thresholds, num_vectors=_attr(node, "numInputVectors")))
    return layers


def set_folding(model: ModelWrapper, layers: list[MVAULayer]) -> None:
    """Write the PE/SIMD of ``layers`` back into the MVAU nodes of the same names."""
    by_name = {l.name: l for l in layers}
    for node in model.graph.node:
        if node.op_type == "MVAU":
            layer = by_name[_attr(node, "layer_name")]
            for a in node.attribute:
                if a.name in ("PE", "SIMD"):
                    a.i = getattr(layer, a.name)


def execute_dataflow(model: ModelWrapper, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the dataflow graph on float inputs ``x``; integers stay int64 end to end.
    Returns every tensor, the graph output under its name."""
    specs = {l.name: l for l in hw_layers(model)}
    ctx = {model.graph.input[0].name: np.asarray(x, dtype=np.float64)}
    for node in model.graph.node:
        a = ctx[node.input[0]]
        if node.op_type == "InputQuant":
            out = np.clip(np.round(a / _attr(node, "scale")), _attr(node, "min"), _attr(node, "max")).astype(np.int64)
        elif node.op_type == "MVAU":
            layer = specs[_attr(node, "layer_name")]
            out = layer.reference(a.reshape(a.shape[0], -1))
        elif node.op_type == "ChannelwiseAffine":
            out = a * _init(model, node.input[1]).astype(np.float64) + _init(model, node.input[2]).astype(np.float64)
        elif node.op_type in ("Reshape", "Flatten"):
            out = a.reshape(a.shape[0], -1)
        elif node.op_type in PASS_THROUGH_OPS:
            raise GraphError(f"executor: {node.op_type} node '{node.name}' is not supported yet")
        else:
            raise GraphError(f"executor: node '{node.name}' ({node.op_type}, domain '{node.domain}') "
                             f"is not a dataflow node; lower the graph first")
        ctx[node.output[0]] = out
    return ctx
