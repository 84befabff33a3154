"""ConvertLayersToMVAU: every annotated quantized layer becomes one MVAU with exact
integer thresholds.

Before: the quantized Gemm/MatMul/Conv nodes (:func:`axe_deploy.graph.layers.quant_layers`)
carry the accumulator annotation (docs/reference.md). After each one the graph may have a bias
(constant or Quant of one), per-channel affine ops (BatchNormalization, Mul/Add/Sub/Div by
constants; FINN's TFC/CNV BatchNorm and TensorNorm), a Relu, and an activation Quant.
Run it before ConvertInputQuant: it reads the input Quant's scale.

After, for each layer:
- with an activation Quant after it: ``MVAU(x, W, T)`` (``noActivation`` = 0,
  ``outputDataType`` = the activation's DataType, ``ActVal`` = its minimum) in place of
  the layer, bias, affine ops, Relu and Quant; T are the exact integer thresholds
  (:mod:`axe_deploy.dataflow.thresholds`) of the whole chain;
- without one (a last layer): ``MVAU(x, W)`` (``noActivation`` = 1, output = the
  accumulator) followed by ``ChannelwiseAffine(acc, s_x·s_w, bias)``; the affine ops are
  absorbed only when they end at a graph output;
- a Conv becomes Transpose(to NHWC) -> ConvolutionInputGenerator -> MVAU (one vector per
  output pixel, ``numInputVectors`` = OH·OW, weight columns in (kh, kw, c) order) ->
  [ChannelwiseAffine] -> Transpose(to NCHW). Padding is the integer 0 made by the
  generator; it equals the graph's zero padding because every Quant here has zero point
  0 (graph/layers.py refuses others), so it adds nothing to the accumulator;
- a tiled layer (annotated ``tile_size`` > 0) keeps its weight columns in the graph's
  order, along which the annotation's tiles run, and gets ``tileSize``,
  ``outerAccDataType``, ``outerAccRange``; a Conv's MVAU then gets ``inputOrder`` to take
  its (kh, kw, c) window in (c, kh, kw) order.
Every MVAU has ``accDataType``/``accRange`` from the annotation, ``SIMD`` = ``PE`` = 1 and
``layer_name`` = the PyTorch module; dead weight/bias Quant nodes are removed.

Refuses (GraphError), naming the node:
- a layer without annotation ("... has no accumulator annotation; run the annotate step
  first") or with one that does not match its weights (graph.annotate.check_annotation);
- a Conv the sliding-window generator cannot run (:func:`conv_geometry`);
- a BipolarQuant activation, a Relu not followed by a Quant, a per-channel or signed-after-
  Relu activation Quant ("only per-tensor activations of 2 or more bits (unsigned after a
  ReLU) become thresholds"), a non-positive per-channel scale before the activation
  quantizer, an affine constant that is not per channel, a bias that is neither a constant
  nor a Quant of one.
"""

from __future__ import annotations

import json
import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.quant import max_int, min_int
from qonnx.transformation.base import Transformation

from axe_deploy.dataflow.conv_geometry import conv_geometry
from axe_deploy.dataflow.helpers import layer_bias, make_transpose, remove_dead_nodes, sole_consumer
from axe_deploy.dataflow.nodes import DOMAIN, TO_NCHW, TO_NHWC
from axe_deploy.dataflow.thresholds import layer_thresholds
from axe_deploy.graph.annotate import check_annotation
from axe_deploy.graph.annotation import Annotation
from axe_deploy.graph.layers import GraphError, node_attr, quant_layers, quant_spec

AFFINE_OPS = ("Mul", "Add", "Sub", "Div", "BatchNormalization")


def _channel_vector(model: ModelWrapper, node, const: np.ndarray, M: int, rank: int) -> np.ndarray:
    """A constant of an elementwise op on a [n, M] or [n, M, H, W] tensor as one value per
    channel, or a GraphError when it varies along another axis."""
    c = np.asarray(const, dtype=np.float64)
    if c.size == 1:
        return np.full(M, float(c.reshape(-1)[0]))
    shape = list(c.shape)
    full = [1] * (rank - len(shape)) + shape  # numpy broadcasting aligns the trailing axes
    if len(full) == rank and full[1] == M and all(d == 1 for i, d in enumerate(full) if i != 1):
        return c.reshape(-1)
    raise GraphError(f"{node.op_type} node '{node.name}': constant of shape {shape} is not one value per "
                     f"channel of the [n, {M}, ...] tensor; only scalar or per-channel affine ops follow a layer")


def _affine_chain(model: ModelWrapper, node, M: int):
    """Per-channel affine ops right after a compute node (BatchNormalization, Mul/Add/Sub/Div
    by constants; FINN's TFC/CNV BatchNorm and TensorNorm): (m [M], a [M], the tensor after
    them, the nodes) with y = x·m + a, in float64."""
    shape = model.get_tensor_shape(node.output[0])
    rank = len(shape) if shape else 2
    m, a, tensor, nodes = np.ones(M), np.zeros(M), node.output[0], []
    while True:
        consumers = model.find_consumers(tensor) or []
        if len(consumers) != 1 or consumers[0].op_type not in AFFINE_OPS:
            return m, a, tensor, nodes
        op = consumers[0]
        if op.op_type == "BatchNormalization":
            gamma, beta, mean, var = (model.get_initializer(t) for t in op.input[1:5])
            if any(v is None for v in (gamma, beta, mean, var)) or op.input[0] != tensor:
                return m, a, tensor, nodes
            mul = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + float(node_attr(op, "epsilon", 1e-5)))
            add = beta.astype(np.float64) - mean.astype(np.float64) * mul
            m, a = m * mul, a * mul + add
        else:
            other = [i for i in op.input if i != tensor]
            const = model.get_initializer(other[0]) if len(other) == 1 else None
            if const is None or (op.op_type in ("Sub", "Div") and op.input[0] != tensor):
                return m, a, tensor, nodes
            v = _channel_vector(model, op, const, M, rank)
            if op.op_type == "Mul":
                m, a = m * v, a * v
            elif op.op_type == "Div":
                m, a = m / v, a / v
            else:
                a = a + v if op.op_type == "Add" else a - v
        nodes.append(op)
        tensor = op.output[0]


def _following_act_quant(model: ModelWrapper, tensor: str, name: str):
    """(Relu or None, Quant) after ``tensor``, or (None, None) for a last layer."""
    relu = sole_consumer(model, tensor, "Relu")
    bipolar = sole_consumer(model, relu.output[0] if relu else tensor, "BipolarQuant")
    if bipolar is not None:
        raise GraphError(f"BipolarQuant '{bipolar.name}' after '{name}': a bipolar (±1) activation has no "
                         f"threshold datapath here; use activations of 2 or more bits")
    act = sole_consumer(model, relu.output[0] if relu else tensor, "Quant")
    if act is None:
        if relu is not None:
            raise GraphError(f"Relu after '{name}' is not followed by a Quant node; put an "
                             f"activation quantizer (QuantReLU) there")
        return None, None
    return relu, act


class ConvertLayersToMVAU(Transformation):
    """Each annotated Gemm/MatMul/Conv, with its bias, ReLU and next activation quantizer,
    becomes one MVAU (see the module docstring)."""

    def apply(self, model: ModelWrapper):
        layers = quant_layers(model)
        for layer in layers:
            if layer.group > 1:
                node = model.graph.node[layer.node_index]
                raise GraphError(f"Conv node '{node.name}' ({layer.layer_name}): grouped/depthwise convolution "
                                 f"(group={layer.group}) has no MVAU lowering (it needs a vector unit, FINN's "
                                 f"VVAU); annotate/check/validate handle it, lowering supports group=1 only")
        for layer in reversed(layers):  # reversed: node indices stay valid
            node = model.graph.node[layer.node_index]
            annotation = Annotation.required(node, layer.layer_name)
            check_annotation(layer, annotation)
            self._convert(model, node, layer, annotation)
        remove_dead_nodes(model)
        return model, False

    @staticmethod
    def _convert(model, node, layer, annotation: Annotation):
        s_x = float(layer.input.scale.reshape(-1)[0])
        s_w = layer.weight.scale.reshape(-1).astype(np.float64)
        bias = layer_bias(model, node, layer.M)
        mul, add, after, affine = _affine_chain(model, node, layer.M)
        relu, act = _following_act_quant(model, after, node.name)
        if act is None and not any(o.name == after for o in model.graph.output):
            mul, add, after, affine = np.ones(layer.M), np.zeros(layer.M), node.output[0], []  # not absorbed
        s_w, bias = s_w * mul, bias * mul + add  # the real output is s_x·s_w·acc + bias, per channel
        name, q, vectors = layer.layer_name, layer.q, 1
        tiled = annotation.tile_size > 0
        tiles = dict(tileSize=annotation.tile_size, outerAccDataType=annotation.outer_accumulator_datatype,
                     outerAccRange=json.dumps(list(annotation.outer_accumulator_range))) if tiled else {}
        end = act.output[0] if act is not None else after
        x_in, y_out = node.input[0], end
        pre, post = [], []
        if node.op_type == "Conv":
            g = conv_geometry(model, node)
            vectors = g.OH * g.OW
            if not tiled:
                q = g.channels_last_columns(q)
            elif g.C > 1:  # with one channel the two orders are the same
                tiles["inputOrder"] = [int(i) for i in g.window_positions()]
            nhwc, win, y_out = (model.make_new_valueinfo_name() for _ in range(3))
            pre = [make_transpose(model, x_in, nhwc, TO_NHWC, f"Transpose_{name}_in"),
                   helper.make_node("ConvolutionInputGenerator", [nhwc], [win], name=f"SWG_{name}",
                                    domain=DOMAIN, layer_name=f"{name}_swg", IFMDim=[g.H, g.W],
                                    IFMChannels=g.C, ConvKernelDim=g.K, Stride=g.stride, Padding=g.pad,
                                    OFMDim=[g.OH, g.OW], SIMD=1, inputDataType=layer.input.datatype)]
            model.set_tensor_datatype(win, DataType[layer.input.datatype])
            post = [(y_out, end)]
            x_in = win
        common = dict(domain=DOMAIN, MW=layer.K, MH=layer.M, SIMD=1, PE=1, numInputVectors=vectors,
                      inputDataType=layer.input.datatype, weightDataType=layer.weight.datatype,
                      inputNarrow=int(layer.input.narrow and layer.input.signed),
                      accDataType=annotation.accumulator_datatype, accRange=json.dumps(list(annotation.accumulator_range)),
                      layer_name=name, mem_mode="internal_embedded", **tiles)
        w_name = model.make_new_valueinfo_name()
        model.set_initializer(w_name, q.T.astype(np.int64).copy())
        pos = list(model.graph.node).index(node)
        if act is not None:
            a = quant_spec(model, act)
            if a.scale.size != 1 or a.bipolar or (a.signed and relu is not None):
                raise GraphError(f"activation Quant '{act.name}' after '{layer.layer_name}': only per-tensor "
                                 f"activations of 2 or more bits (unsigned after a ReLU) become thresholds")
            if np.any(s_w <= 0):
                raise GraphError(f"layer '{layer.layer_name}': a per-channel scale (BatchNorm/Mul) before the "
                                 f"activation quantizer '{act.name}' is not positive, which would reverse the "
                                 f"thresholds; not supported")
            lo, hi = min_int(a.signed, a.narrow, a.bits), max_int(a.signed, a.narrow, a.bits)
            t_name = model.make_new_valueinfo_name()
            model.set_initializer(t_name, layer_thresholds(s_x, s_w, float(a.scale.reshape(-1)[0]), bias, a.bits,
                                                           out_range=(lo, hi)))
            new = [helper.make_node("MVAU", [x_in, w_name, t_name], [y_out], name=f"MVAU_{name}",
                                    noActivation=0, outputDataType=a.datatype, ActVal=int(lo), **common)]
            model.set_tensor_datatype(y_out, DataType[a.datatype])
            removed = [node, relu, act] + affine
        else:
            acc = model.make_new_valueinfo_name()
            s_name, b_name = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            model.set_initializer(s_name, (s_x * s_w).astype(np.float32))
            model.set_initializer(b_name, bias.astype(np.float32))
            out_type = annotation.whole_datatype
            new = [helper.make_node("MVAU", [x_in, w_name], [acc], name=f"MVAU_{name}", ActVal=0,
                                    noActivation=1, outputDataType=out_type, **common),
                   helper.make_node("ChannelwiseAffine", [acc, s_name, b_name], [y_out],
                                    name=f"ChannelwiseAffine_{name}", domain=DOMAIN)]
            model.set_tensor_datatype(acc, DataType[out_type])
            removed = [node] + affine
        new = pre + new + [make_transpose(model, src, dst, TO_NCHW, f"Transpose_{name}_out") for src, dst in post]
        for i, n in enumerate(new):
            model.graph.node.insert(pos + i, n)
        for n in removed:
            if n is not None:
                model.graph.node.remove(n)
