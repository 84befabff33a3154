"""Graph rewrites from annotated QONNX to integer dataflow nodes, one contract each.

After :class:`ConvertInputQuant` and :class:`ConvertLayersToMVAU` every tensor between
dataflow nodes holds integers (in float32 or int64 containers) and every node is in
the ``axe_deploy.dataflow`` domain, or a shape-only op. The nodes:

- ``InputQuant(x)``: x_int = clip(round_half_even(x / scale), lo, hi), the integer input
  interface of the accelerator;
- ``MVAU(x, W[MW, MH], T[MH, n])`` (FINN's attribute names): acc = x·W in the register
  ``accDataType`` (from the annotation), out = #{thresholds <= acc}, or acc itself with
  ``noActivation = 1``;
- ``ChannelwiseAffine(acc, scale[MH], bias[MH])``: y = acc·scale + bias, the float output
  of a last layer.
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.quant import quant
from qonnx.transformation.base import Transformation

from axe_deploy.annotate import read_annotation
from axe_deploy.dataflow.thresholds import layer_thresholds
from axe_deploy.graph import PASS_THROUGH_OPS, GraphError, _attr, _quant_spec, quant_layers

DOMAIN = "axe_deploy.dataflow"
DATAFLOW_OPS = ("InputQuant", "MVAU", "ChannelwiseAffine")


def _consumer(model: ModelWrapper, tensor: str, op_type: str):
    consumers = model.find_consumers(tensor) or []
    return consumers[0] if len(consumers) == 1 and consumers[0].op_type == op_type else None


def _remove_dead_nodes(model: ModelWrapper) -> None:
    """Drop nodes whose outputs nobody reads (the weight and bias Quant nodes)."""
    outputs = {o.name for o in model.graph.output}
    changed = True
    while changed:
        changed = False
        for node in list(model.graph.node):
            if all(not model.find_consumers(o) and o not in outputs for o in node.output):
                model.graph.node.remove(node)
                changed = True
    used = {i for n in model.graph.node for i in n.input}
    for init in list(model.graph.initializer):
        if init.name not in used:
            model.graph.initializer.remove(init)


class ConvertInputQuant(Transformation):
    """The Quant node on the graph input becomes the accelerator's integer input."""

    def apply(self, model: ModelWrapper):
        inp = model.graph.input[0].name
        q = _consumer(model, inp, "Quant")
        if q is None:
            raise GraphError(f"graph input '{inp}' is not read by exactly one Quant node; the "
                             f"accelerator's input must be quantized (e.g. a QuantIdentity first)")
        spec = _quant_spec(model, q)
        if spec.scale.size != 1:
            raise GraphError(f"input Quant node '{q.name}': per-channel input scale is not supported")
        lo, hi = (DataType[spec.datatype].min() + int(spec.narrow and spec.signed), DataType[spec.datatype].max())
        node = helper.make_node("InputQuant", [inp], [q.output[0]], name="InputQuant_0", domain=DOMAIN,
                                scale=float(spec.scale.reshape(-1)[0]), min=int(lo), max=int(hi),
                                outputDataType=spec.datatype)
        model.graph.node.insert(list(model.graph.node).index(q), node)
        model.graph.node.remove(q)
        model.set_tensor_datatype(q.output[0], DataType[spec.datatype])
        _remove_dead_nodes(model)
        return model, False


def _bias(model: ModelWrapper, node, M: int) -> np.ndarray:
    """The real-valued bias the compute node adds (dequantized if it is quantized)."""
    if len(node.input) < 3 or not node.input[2]:
        return np.zeros(M)
    producer = model.find_producer(node.input[2])
    if producer is not None and producer.op_type == "Quant":
        spec = _quant_spec(model, producer)
        b = quant(model.get_initializer(producer.input[0]).astype(np.float64), spec.scale, spec.zero_point,
                  np.array(spec.bits, dtype=np.float64), spec.signed, spec.narrow, _attr(producer, "rounding_mode", "ROUND"))
        # the runtimes add the float32 dequantized bias: use exactly that value
        return np.asarray(b, dtype=np.float32).astype(np.float64).reshape(-1)
    b = model.get_initializer(node.input[2])
    if b is None:
        raise GraphError(f"{node.op_type} node '{node.name}': bias is neither a constant nor a Quant of one")
    return np.asarray(b, dtype=np.float32).astype(np.float64).reshape(-1)


def _following_act_quant(model: ModelWrapper, node):
    """(Relu or None, Quant) after a compute node, or (None, None) for a last layer."""
    relu = _consumer(model, node.output[0], "Relu")
    act = _consumer(model, (relu or node).output[0], "Quant")
    if act is None:
        if relu is not None:
            raise GraphError(f"Relu after '{node.name}' is not followed by a Quant node; put an "
                             f"activation quantizer (QuantReLU) there")
        return None, None
    return relu, act


class ConvertLayersToMVAU(Transformation):
    """Each annotated Gemm/MatMul, with its bias, ReLU and next activation quantizer,
    becomes one MVAU with exact integer thresholds; a layer with no quantizer after it
    becomes an MVAU without activation followed by a ChannelwiseAffine."""

    def apply(self, model: ModelWrapper):
        for layer in reversed(quant_layers(model)):  # reversed: node indices stay valid
            node = model.graph.node[layer.node_index]
            props = read_annotation(node)
            if props is None:
                raise GraphError(f"{node.op_type} node '{node.name}' ({layer.layer_name}) has no "
                                 f"accumulator annotation; run the annotate step first")
            if node.op_type == "Conv":
                raise GraphError(f"Conv node '{node.name}' ({layer.layer_name}): convolution lowering "
                                 f"(sliding window + MVAU) is not supported by this flow yet")
            if props.get("tile_size", "0") != "0":
                raise GraphError(f"layer '{layer.layer_name}': multi-stage accumulation (tile_size "
                                 f"{props['tile_size']}) has no MVAU datapath yet; set quant.tile_size = 0")
            self._convert(model, node, layer, props)
        _remove_dead_nodes(model)
        return model, False

    @staticmethod
    def _convert(model, node, layer, props):
        s_x = float(layer.input.scale.reshape(-1)[0])
        s_w = layer.weight.scale.reshape(-1).astype(np.float64)
        bias = _bias(model, node, layer.M)
        relu, act = _following_act_quant(model, node)
        common = dict(domain=DOMAIN, MW=layer.K, MH=layer.M, SIMD=1, PE=1, numInputVectors=1,
                      inputDataType=layer.input.datatype, weightDataType=layer.weight.datatype,
                      accDataType=props["accumulator_datatype"], accRange=props["accumulator_range"],
                      layer_name=layer.layer_name, mem_mode="internal_embedded", ActVal=0)
        w_name = model.make_new_valueinfo_name()
        model.set_initializer(w_name, layer.q.T.astype(np.int64).copy())
        pos = list(model.graph.node).index(node)
        if act is not None:
            a = _quant_spec(model, act)
            if a.signed or a.narrow or a.scale.size != 1:
                raise GraphError(f"activation Quant '{act.name}' after '{layer.layer_name}': only unsigned, "
                                 f"per-tensor, non-narrow activations become thresholds")
            t_name = model.make_new_valueinfo_name()
            model.set_initializer(t_name, layer_thresholds(s_x, s_w, float(a.scale.reshape(-1)[0]), bias, a.bits))
            new = [helper.make_node("MVAU", [node.input[0], w_name, t_name], [act.output[0]],
                                    name=f"MVAU_{layer.layer_name}", noActivation=0,
                                    outputDataType=a.datatype, **common)]
            model.set_tensor_datatype(act.output[0], DataType[a.datatype])
            removed = [node, relu, act]
        else:
            acc = model.make_new_valueinfo_name()
            s_name, b_name = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            model.set_initializer(s_name, (s_x * s_w).astype(np.float32))
            model.set_initializer(b_name, bias.astype(np.float32))
            new = [helper.make_node("MVAU", [node.input[0], w_name], [acc], name=f"MVAU_{layer.layer_name}",
                                    noActivation=1, outputDataType=props["accumulator_datatype"], **common),
                   helper.make_node("ChannelwiseAffine", [acc, s_name, b_name], [node.output[0]],
                                    name=f"ChannelwiseAffine_{layer.layer_name}", domain=DOMAIN)]
            model.set_tensor_datatype(acc, DataType[props["accumulator_datatype"]])
            removed = [node]
        for i, n in enumerate(new):
            model.graph.node.insert(pos + i, n)
        for n in removed:
            if n is not None:
                model.graph.node.remove(n)


class CheckDataflow(Transformation):
    """Every remaining node is a dataflow node or a shape-only op; errors name the rest."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.domain != DOMAIN and node.op_type not in PASS_THROUGH_OPS:
                raise GraphError(f"node '{node.name}' ({node.op_type}) cannot be lowered to the dataflow "
                                 f"accelerator; supported: quantized Gemm/MatMul with bias, ReLU and an "
                                 f"unsigned activation quantizer, and {', '.join(PASS_THROUGH_OPS)}")
        return model, False
