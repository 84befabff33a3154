"""Channels-last layout: rewrites that remove the Transposes the Conv/MaxPool conversions
put around their dataflow nodes, one contract each.

After them the image tensors between dataflow nodes are channels-last from the input
interface on, which is the order in which the hardware streams them.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from axe_deploy.dataflow.transforms import DOMAIN, _attr, _consumer, _ints, channels_last_positions


def _rewire(model: ModelWrapper, old: str, new: str) -> None:
    for consumer in model.find_consumers(old) or []:
        for k, name in enumerate(consumer.input):
            if name == old:
                consumer.input[k] = new


def _is_output(model: ModelWrapper, tensor: str) -> bool:
    return any(o.name == tensor for o in model.graph.output)


class RemoveInverseTransposes(Transformation):
    """Transpose(p) whose only consumer is Transpose(q) with p then q the identity: both
    go, their consumers read the first one's input (NCHW -> NHWC between two dataflow
    nodes, left by converting two adjacent layers)."""

    def apply(self, model: ModelWrapper):
        for first in list(model.graph.node):
            if first.op_type != "Transpose" or _is_output(model, first.output[0]):
                continue
            second = _consumer(model, first.output[0], "Transpose")
            if second is None or _is_output(model, second.output[0]):
                continue
            p, q = _ints(first, "perm", []), _ints(second, "perm", [])
            if len(p) != len(q) or [p[i] for i in q] != list(range(len(p))):
                continue
            _rewire(model, second.output[0], first.input[0])
            model.graph.node.remove(first)
            model.graph.node.remove(second)
            return model, True
        return model, False


class AbsorbTransposeIntoFlatten(Transformation):
    """Transpose(NHWC -> NCHW) -> Flatten (or Reshape to [n, C·H·W]) -> MVAU of one vector:
    the transpose goes and the MVAU's weight rows are permuted from the (c, h, w) order of
    the NCHW flatten to the (h, w, c) order of the channels-last stream (FINN's
    RemoveCNVtoFCFlatten). A permutation of each output channel's weights: the exact
    accumulator range, and so the annotation, is unchanged. A tiled MVAU keeps its weights
    in the (c, h, w) order its tiles run along and gets ``inputOrder`` instead, to take
    the channels-last stream in that order."""

    def apply(self, model: ModelWrapper):
        for t in list(model.graph.node):
            if t.op_type != "Transpose" or _ints(t, "perm", []) != [0, 3, 1, 2]:
                continue
            consumers = model.find_consumers(t.output[0]) or []
            flat = consumers[0] if len(consumers) == 1 else None
            if flat is None or flat.op_type not in ("Flatten", "Reshape"):
                continue
            mvau = _consumer(model, flat.output[0], "MVAU")
            shape, flat_shape = model.get_tensor_shape(t.output[0]), model.get_tensor_shape(flat.output[0])
            if (mvau is None or mvau.domain != DOMAIN or _attr(mvau, "numInputVectors") != 1
                    or shape is None or flat_shape is None or len(flat_shape) != 2):
                continue
            C, H, W = shape[1:]
            if flat_shape[1] != C * H * W or _attr(mvau, "MW") != C * H * W:
                continue
            if _attr(mvau, "tileSize", 0):
                order = channels_last_positions(C, H, W)
                mvau.attribute.append(helper.make_attribute("inputOrder", [int(i) for i in order]))
            else:
                w = model.get_initializer(mvau.input[1])
                model.set_initializer(mvau.input[1], np.ascontiguousarray(
                    w.reshape(C, H, W, -1).transpose(1, 2, 0, 3).reshape(w.shape)))
            flat.input[0] = t.input[0]
            model.graph.node.remove(t)
            return model, True
        return model, False


class AbsorbTransposeIntoInputQuant(Transformation):
    """InputQuant -> Transpose(perm): the InputQuant gets ``perm`` and writes the
    transposed integers itself (an elementwise quantizer commutes with a transpose). The
    accelerator's input interface then takes the image channels-last; the host reorders."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type != "InputQuant" or node.domain != DOMAIN or _attr(node, "perm") is not None:
                continue
            t = _consumer(model, node.output[0], "Transpose")
            if t is None:
                continue
            node.attribute.append(helper.make_attribute("perm", _ints(t, "perm", [])))
            model.set_tensor_datatype(t.output[0], model.get_tensor_datatype(node.output[0]))
            node.output[0] = t.output[0]
            model.graph.node.remove(t)
            return model, True
        return model, False
