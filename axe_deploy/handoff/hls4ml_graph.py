"""Rewrites that make an annotated QONNX graph one hls4ml 1.3 converts with integer layers.

hls4ml's QONNX frontend fails on per-output-channel weight scales and on quantized biases
("Failed to propagate quantization scales down MatMul/Conv node", then an ``IndexError`` in
``infer_precision``). :class:`FoldWeightScales` rewrites each annotated layer
``Quant(W, s) -> Gemm/Conv(+ Quant(bias))`` as ``Quant(q, 1) -> MatMul/Conv -> Mul(s) -> Add(b)``
with the integer weights q = W/s: the same function, and hls4ml then builds a layer whose
``accum_t`` holds exactly the integer dot product our annotation proves, followed by a
per-channel scale and bias. The annotation moves with the compute node.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation
from qonnx.transformation.channels_last import ConvertToChannelsLastAndClean
from qonnx.transformation.gemm_to_matmul import GemmToMatMul
from qonnx.util.cleanup import cleanup_model

from axe_deploy.graph.annotation import Annotation
from axe_deploy.dataflow.helpers import layer_bias, remove_dead_nodes
from axe_deploy.graph.layers import GraphError, integer_weights, quant_layers, weight_quant_node
from axe_deploy.handoff.finn_graph import StaticBatchOne


def _check_plain_gemm(node):
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
        raise GraphError(f"Gemm node '{node.name}': alpha/beta != 1 or transA is not supported by the "
                         f"hls4ml handoff; export a plain Linear layer")


class FoldWeightScales(Transformation):
    """Every annotated Gemm/Conv: integer weights (scale 1), then ``Mul`` by the per-channel
    weight scale and ``Add`` of the bias after it (channel axis 1, the graph is NCHW here)."""

    def apply(self, model: ModelWrapper):
        for layer in reversed(quant_layers(model)):
            node = model.graph.node[layer.node_index]
            if Annotation.of(node) is None:
                continue
            wq, _ = weight_quant_node(model, node)
            q, wspec = integer_weights(model, node)  # [M, K], per-channel scale [M]
            w = model.get_initializer(wq.input[0])
            M = q.shape[0]
            if node.op_type == "Conv":  # integer weights in the initializer's own layout
                q_init = q.reshape(w.shape)
            else:  # Gemm/MatMul -> MatMul on the Quant itself, weights [K, M] (the Transposes
                # of a bias-free Linear fall away); the bias goes to the Add below
                q_init = q.T
                _check_plain_gemm(node)
                node.op_type = "MatMul"
                del node.attribute[:]
                node.input[1] = wq.output[0]
            scale = np.asarray(wspec.scale, dtype=np.float64)
            bias = layer_bias(model, node, M)
            shape = (M, 1, 1) if node.op_type == "Conv" else (M,)
            model.set_initializer(wq.input[0], q_init.astype(np.float32))
            one = model.make_new_valueinfo_name()
            model.set_initializer(one, np.asarray(1.0, dtype=np.float32))
            wq.input[1] = one
            out = node.output[0]
            acc, scaled = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            node.output[0] = acc
            del node.input[2:]
            s_name, b_name = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            model.set_initializer(s_name, scale.reshape(shape).astype(np.float32))
            model.set_initializer(b_name, bias.reshape(shape).astype(np.float32))
            at = list(model.graph.node).index(node) + 1
            model.graph.node.insert(at, helper.make_node("Mul", [acc, s_name], [scaled], name=f"{node.name}_scale"))
            model.graph.node.insert(at + 1, helper.make_node("Add", [scaled, b_name], [out], name=f"{node.name}_bias"))
        remove_dead_nodes(model)  # the bias Quant nodes
        return model, False


class MoveActivationQuantPastPoolAndFlatten(Transformation):
    """``Quant -> MaxPool`` / ``Quant -> Flatten`` become ``MaxPool -> Quant`` / ``Flatten -> Quant``.

    hls4ml does not move an activation scale past MaxPool/Flatten, so the next layer would
    accumulate scaled values instead of integers. The swap is exact: a per-tensor Quant is
    elementwise and non-decreasing, so it commutes with a max and with a reshape.
    """

    MOVABLE = ("MaxPool", "Flatten")

    def apply(self, model: ModelWrapper):
        changed = False
        for quant in list(model.graph.node):
            if quant.op_type != "Quant" or model.get_initializer(quant.input[0]) is not None:
                continue
            consumers = model.find_consumers(quant.output[0]) or []
            scale = model.get_initializer(quant.input[1])
            if len(consumers) != 1 or consumers[0].op_type not in self.MOVABLE or scale is None or scale.size != 1:
                continue
            op = consumers[0]
            a, b, c = quant.input[0], quant.output[0], op.output[0]
            op.input[0], op.output[0] = a, b
            quant.input[0], quant.output[0] = b, c
            nodes = model.graph.node
            nodes.remove(quant)
            nodes.insert(list(nodes).index(op) + 1, quant)
            for vi in [v for v in model.graph.value_info if v.name == b]:
                model.graph.value_info.remove(vi)
            changed = True
        return model, changed


class ChannelConstantsAsVectors(Transformation):
    """Per-channel ``Mul``/``Add`` constants of shape (1, 1, 1, M) -> (M,) in the channels-last
    graph: hls4ml broadcasts a constant against the layer shape without the batch axis."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type in ("Mul", "Add") and len(node.input) == 2:
                value = model.get_initializer(node.input[1])
                if value is not None and value.ndim > 1 and all(d == 1 for d in value.shape[:-1]):
                    model.set_initializer(node.input[1], value.reshape(-1))
        return model, False


def hls4ml_graph(model: ModelWrapper) -> ModelWrapper:
    """The handoff's ``hls4ml/model.onnx``: scales folded, activation quantizers behind
    max-pool/flatten, batch 1, then cleaned as hls4ml's QONNX docs say (``cleanup_model``,
    ``ConvertToChannelsLastAndClean``, ``GemmToMatMul``, ``cleanup_model``)."""
    for t in (FoldWeightScales(), MoveActivationQuantPastPoolAndFlatten(), StaticBatchOne()):
        model = model.transform(t)
    model = cleanup_model(model)
    model = model.transform(ConvertToChannelsLastAndClean()).transform(ChannelConstantsAsVectors())
    model = model.transform(GemmToMatMul())
    # the node numbers change with the layout, and qonnx's readable renaming then collides with
    # an earlier parameter name ("Quant_0_param0" twice): give the parameters fresh names first
    for i, init in enumerate(list(model.graph.initializer)):
        model.rename_tensor(init.name, f"axe_param_{i}")
    return cleanup_model(model)
