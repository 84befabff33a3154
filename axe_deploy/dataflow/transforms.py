"""Graph rewrites from annotated QONNX to integer dataflow nodes, one contract each.

After :class:`ConvertInputQuant` and :class:`ConvertLayersToMVAU` every tensor between
dataflow nodes holds integers (in float32 or int64 containers) and every node is in
the ``axe_deploy.dataflow`` domain, or a shape-only op. The nodes:

- ``InputQuant(x)``: x_int = clip(round_half_even(x / scale), lo, hi), the integer input
  interface of the accelerator;
- ``MVAU(x, W[MW, MH], T[MH, n])`` (FINN's attribute names): acc = x·W in the register
  ``accDataType`` (from the annotation), out = #{thresholds <= acc}, or acc itself with
  ``noActivation = 1``; with ``tileSize`` T > 0 (multi-stage accumulation) every tile of
  T consecutive rows of W is summed in ``accDataType`` and the tile sums in
  ``outerAccDataType``; ``inputOrder`` (optional) permutes each input vector first,
  x'[j] = x[inputOrder[j]], so that the tiles see the annotation's [C, kh, kw] order;
- ``ChannelwiseAffine(acc, scale[MH], bias[MH])``: y = acc·scale + bias (along the last
  axis), the float output of a last layer;
- ``ConvolutionInputGenerator(x[n, H, W, C])`` (FINN's name; ``SlidingWindowLayer``):
  the K×K windows of every output pixel in (kh, kw, c) order, [n, OH, OW, K·K·C], with
  integer 0 in the ``Padding`` border;
- ``StreamingMaxPool(x[n, H, W, C])``: 2×2 max-pool, stride 2, floor mode (``MaxPoolLayer``).

Image tensors of the dataflow nodes are channels-last (NHWC). The conversions of Conv and
MaxPool wrap their dataflow nodes in ``Transpose`` nodes to and from the graph's NCHW, so
every intermediate graph computes the same function; the rewrites in
:mod:`axe_deploy.dataflow.layout` then remove the transposes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.quant import max_int, min_int, quant
from qonnx.transformation.base import Transformation

from axe_deploy.graph.annotate import check_annotation, read_annotation
from axe_deploy.dataflow.thresholds import layer_thresholds
from axe_deploy.graph.layers import PASS_THROUGH_OPS, QUANT_OPS, GraphError, _attr, _quant_spec, quant_layers

DOMAIN = "axe_deploy.dataflow"
DATAFLOW_OPS = ("InputQuant", "MVAU", "ChannelwiseAffine", "ConvolutionInputGenerator", "StreamingMaxPool")
HW_OPS = ("ConvolutionInputGenerator", "MVAU", "StreamingMaxPool")  # the accelerator's layers
TO_NHWC = (0, 2, 3, 1)
TO_NCHW = (0, 3, 1, 2)


def _consumer(model: ModelWrapper, tensor: str, op_type: str):
    consumers = model.find_consumers(tensor) or []
    return consumers[0] if len(consumers) == 1 and consumers[0].op_type == op_type else None


def channels_last_positions(C: int, H: int, W: int) -> np.ndarray:
    """For each element of a (c, h, w) tensor in that order, its position in (h, w, c) order."""
    c, h, w = np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing="ij")
    return ((h * W + w) * C + c).reshape(-1)


def _transpose(model: ModelWrapper, src: str, dst: str, perm: tuple, name: str):
    """A Transpose node src -> dst; dst gets src's DataType (a transpose moves integers)."""
    model.set_tensor_datatype(dst, model.get_tensor_datatype(src))
    return helper.make_node("Transpose", [src], [dst], name=name, perm=list(perm))


def _ints(node, name: str, default: list[int]) -> list[int]:
    value = _attr(node, name, default)
    return list(value) if isinstance(value, (list, tuple)) else value


def module_name(node, fallback: str) -> str:
    """The PyTorch module of an exported node: '/features/pool/MaxPool' gives 'features.pool'.

    torch.onnx names a container's child by its name in the container's parent
    ('/features/features.4/MaxPool', '/body/body.0/body.0.1/Relu'): such a scope replaces
    the container's instead of extending it, so these give 'features.4' and 'body.0.1'."""
    scopes = [p for p in node.name.split("/") if p][:-1]
    path: list[str] = []
    for scope in scopes:
        if path and scope.startswith(path[-1] + "."):
            path[-1] = scope
        else:
            path.append(scope)
    return ".".join(path) or fallback


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


PREPROCESS_OPS = ("Mul", "Add", "Sub", "Div")


def _input_chain(model: ModelWrapper):
    """From the graph input to the first quantizer: (the tensor the InputQuant reads, the
    scalar preprocessing nodes in order, the Quant node). Shape-only ops before the first
    preprocessing node stay in the graph; FINN's TFC/CNV compute ``2x - 1`` there."""
    tensor, pre = model.graph.input[0].name, []
    start = tensor
    while True:
        consumers = model.find_consumers(tensor) or []
        if len(consumers) != 1:
            return start, pre, None
        node = consumers[0]
        if node.op_type in QUANT_OPS:
            return start, pre, node
        if node.op_type in ("Reshape", "Flatten") and not pre:
            start = node.output[0]
        elif node.op_type in PREPROCESS_OPS:
            const = model.get_initializer(node.input[1])
            if const is None or const.size != 1 or node.input[0] != tensor:
                raise GraphError(f"input preprocessing node '{node.name}' ({node.op_type}): only x {node.op_type} "
                                 f"scalar constant is absorbed into the input quantizer; fold per-channel "
                                 f"preprocessing into the data or the first layer")
            pre.append(node)
        else:
            return start, pre, None
        tensor = node.output[0]


class ConvertInputQuant(Transformation):
    """The Quant node on the graph input becomes the accelerator's integer input; scalar
    Mul/Add/Sub/Div between the input and that Quant (FINN's TFC/CNV preprocessing) are
    absorbed into it and run in float32 in graph order, as the runtimes do."""

    def apply(self, model: ModelWrapper):
        inp, pre, q = _input_chain(model)
        if q is None:
            raise GraphError(f"graph input '{model.graph.input[0].name}' is not read by exactly one Quant node "
                             f"(through shape ops and scalar Mul/Add/Sub/Div); the accelerator's input must be "
                             f"quantized (e.g. a QuantIdentity first)")
        spec = _quant_spec(model, q)
        if spec.scale.size != 1:
            raise GraphError(f"input Quant node '{q.name}': per-channel input scale is not supported")
        if spec.bipolar:
            raise GraphError(f"input Quant node '{q.name}': a bipolar (1-bit signed) input has no integer "
                             f"datapath here; use an input quantizer of 2 or more bits")
        lo, hi = (DataType[spec.datatype].min() + int(spec.narrow and spec.signed), DataType[spec.datatype].max())
        extra = {}
        if pre:
            extra = dict(preprocess_ops=[n.op_type for n in pre],
                         preprocess_consts=[float(model.get_initializer(n.input[1]).reshape(-1)[0]) for n in pre])
        node = helper.make_node("InputQuant", [inp], [q.output[0]], name="InputQuant_0", domain=DOMAIN,
                                scale=float(spec.scale.reshape(-1)[0]), min=int(lo), max=int(hi),
                                outputDataType=spec.datatype, **extra)
        first = pre[0] if pre else q
        model.graph.node.insert(list(model.graph.node).index(first), node)
        for n in pre + [q]:
            model.graph.node.remove(n)
        model.set_tensor_datatype(q.output[0], DataType[spec.datatype])
        _remove_dead_nodes(model)
        return model, False


def preprocess(node, x: np.ndarray) -> np.ndarray:
    """The InputQuant's absorbed scalar preprocessing, in float32 as the graph computed it."""
    ops = [o.decode() if isinstance(o, bytes) else o for o in _attr(node, "preprocess_ops") or []]
    consts = _attr(node, "preprocess_consts") or []
    if not ops:
        return x
    y = np.asarray(x, dtype=np.float32)
    for op, c in zip(ops, consts):
        c = np.float32(c)
        y = {"Mul": lambda: y * c, "Add": lambda: y + c, "Sub": lambda: y - c, "Div": lambda: y / c}[op]()
    return y.astype(np.float64)


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
            mul = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + float(_attr(op, "epsilon", 1e-5)))
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
    relu = _consumer(model, tensor, "Relu")
    bipolar = _consumer(model, relu.output[0] if relu else tensor, "BipolarQuant")
    if bipolar is not None:
        raise GraphError(f"BipolarQuant '{bipolar.name}' after '{name}': a bipolar (±1) activation has no "
                         f"threshold datapath here; use activations of 2 or more bits")
    act = _consumer(model, relu.output[0] if relu else tensor, "Quant")
    if act is None:
        if relu is not None:
            raise GraphError(f"Relu after '{name}' is not followed by a Quant node; put an "
                             f"activation quantizer (QuantReLU) there")
        return None, None
    return relu, act


@dataclass(frozen=True)
class ConvGeometry:
    """A square, equally strided and padded, undilated 2-D convolution on [n, C, H, W]."""

    H: int
    W: int
    C: int
    K: int
    stride: int
    pad: int

    OH = property(lambda self: (self.H + 2 * self.pad - self.K) // self.stride + 1)
    OW = property(lambda self: (self.W + 2 * self.pad - self.K) // self.stride + 1)

    def window_positions(self) -> np.ndarray:
        """For each column of the graph's (c, kh, kw) order, its position in the (kh, kw, c)
        window the sliding-window generator emits."""
        return channels_last_positions(self.C, self.K, self.K)

    def channels_last_columns(self, q: np.ndarray) -> np.ndarray:
        """Weight rows [M, C·K·K] in the graph's (c, kh, kw) order -> (kh, kw, c), the order
        in which the sliding-window generator emits a window. A permutation of each row:
        the exact accumulator range (and so the annotation) is unchanged."""
        return q.reshape(len(q), self.C, self.K, self.K).transpose(0, 2, 3, 1).reshape(len(q), -1)


def conv_geometry(model: ModelWrapper, node) -> ConvGeometry:
    """The geometry of a Conv node, or a GraphError naming what the sliding-window
    generator cannot do (it needs kh = kw, one stride and one padding for both axes,
    stride <= K, padding < K, no dilation)."""
    shape = model.get_tensor_shape(node.input[0])
    kh, kw = _ints(node, "kernel_shape", [0, 0])
    pads, strides = _ints(node, "pads", [0, 0, 0, 0]), _ints(node, "strides", [1, 1])
    dilations = _ints(node, "dilations", [1, 1])
    if shape is None or len(shape) != 4:
        raise GraphError(f"Conv node '{node.name}': input shape {shape} is not [n, C, H, W]; "
                         f"only 2-D convolutions are lowered")
    if (kh != kw or len(set(pads)) != 1 or len(set(strides)) != 1 or set(dilations) != {1}
            or _attr(node, "auto_pad", "NOTSET") != "NOTSET" or strides[0] > kh or pads[0] >= kh):
        raise GraphError(f"Conv node '{node.name}': kernel {[kh, kw]}, strides {strides}, pads {pads}, "
                         f"dilations {dilations}: the sliding-window generator needs a square kernel K, "
                         f"one stride <= K and one padding < K on every side, and no dilation")
    return ConvGeometry(H=shape[2], W=shape[3], C=shape[1], K=kh, stride=strides[0], pad=pads[0])


class ConvertLayersToMVAU(Transformation):
    """Each annotated Gemm/MatMul/Conv, with its bias, ReLU and next activation quantizer,
    becomes one MVAU with exact integer thresholds; a layer with no quantizer after it
    becomes an MVAU without activation followed by a ChannelwiseAffine.

    A Conv becomes Transpose(to NHWC) -> ConvolutionInputGenerator -> MVAU (one vector per
    output pixel, ``numInputVectors`` = OH·OW, weight columns in (kh, kw, c) order) ->
    [ChannelwiseAffine] -> Transpose(to NCHW). Padding is the integer 0 made by the
    generator; it equals the graph's zero padding because every Quant here has zero point
    0 (graph.py refuses others), so it adds nothing to the accumulator.

    A tiled layer (annotated ``tile_size`` > 0) keeps its weight columns in the graph's
    order, along which the annotation's tiles run; a Conv's MVAU then gets ``inputOrder``
    to take its (kh, kw, c) window in (c, kh, kw) order."""

    def apply(self, model: ModelWrapper):
        for layer in reversed(quant_layers(model)):  # reversed: node indices stay valid
            node = model.graph.node[layer.node_index]
            props = read_annotation(node)
            if props is None:
                raise GraphError(f"{node.op_type} node '{node.name}' ({layer.layer_name}) has no "
                                 f"accumulator annotation; run the annotate step first")
            check_annotation(layer, props)
            self._convert(model, node, layer, props)
        _remove_dead_nodes(model)
        return model, False

    @staticmethod
    def _convert(model, node, layer, props):
        s_x = float(layer.input.scale.reshape(-1)[0])
        s_w = layer.weight.scale.reshape(-1).astype(np.float64)
        bias = _bias(model, node, layer.M)
        mul, add, after, affine = _affine_chain(model, node, layer.M)
        relu, act = _following_act_quant(model, after, node.name)
        if act is None and not any(o.name == after for o in model.graph.output):
            mul, add, after, affine = np.ones(layer.M), np.zeros(layer.M), node.output[0], []  # not absorbed
        s_w, bias = s_w * mul, bias * mul + add  # the real output is s_x·s_w·acc + bias, per channel
        name, q, vectors = layer.layer_name, layer.q, 1
        tiled = int(props.get("tile_size", "0")) > 0
        tiles = dict(tileSize=int(props["tile_size"]), outerAccDataType=props["outer_accumulator_datatype"],
                     outerAccRange=props["outer_accumulator_range"]) if tiled else {}
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
            pre = [_transpose(model, x_in, nhwc, TO_NHWC, f"Transpose_{name}_in"),
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
                      accDataType=props["accumulator_datatype"], accRange=props["accumulator_range"],
                      layer_name=name, mem_mode="internal_embedded", **tiles)
        w_name = model.make_new_valueinfo_name()
        model.set_initializer(w_name, q.T.astype(np.int64).copy())
        pos = list(model.graph.node).index(node)
        if act is not None:
            a = _quant_spec(model, act)
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
            out_type = props["outer_accumulator_datatype"] if tiled else props["accumulator_datatype"]
            new = [helper.make_node("MVAU", [x_in, w_name], [acc], name=f"MVAU_{name}", ActVal=0,
                                    noActivation=1, outputDataType=out_type, **common),
                   helper.make_node("ChannelwiseAffine", [acc, s_name, b_name], [y_out],
                                    name=f"ChannelwiseAffine_{name}", domain=DOMAIN)]
            model.set_tensor_datatype(acc, DataType[out_type])
            removed = [node] + affine
        new = pre + new + [_transpose(model, src, dst, TO_NCHW, f"Transpose_{name}_out") for src, dst in post]
        for i, n in enumerate(new):
            model.graph.node.insert(pos + i, n)
        for n in removed:
            if n is not None:
                model.graph.node.remove(n)


class ConvertMaxPool(Transformation):
    """Each 2×2, stride-2, unpadded MaxPool on an integer tensor becomes
    Transpose(to NHWC) -> StreamingMaxPool -> Transpose(to NCHW). The input must already be
    integer (the output of a dataflow node: run after ConvertLayersToMVAU and
    ConvertInputQuant); the pool selects integers and keeps their DataType."""

    def apply(self, model: ModelWrapper):
        for i, node in enumerate(list(model.graph.node)):
            if node.op_type != "MaxPool" or node.domain not in ("", "ai.onnx"):
                continue
            shape = model.get_tensor_shape(node.input[0])
            dtype = model.get_tensor_datatype(node.input[0])
            geometry = (_ints(node, "kernel_shape", []), _ints(node, "strides", [1, 1]),
                        _ints(node, "pads", [0, 0, 0, 0]), _ints(node, "dilations", [1, 1]),
                        _attr(node, "ceil_mode", 0), _attr(node, "auto_pad", "NOTSET"))
            if geometry != ([2, 2], [2, 2], [0, 0, 0, 0], [1, 1], 0, "NOTSET") or len(node.output) > 1:
                raise GraphError(f"MaxPool node '{node.name}': only a 2x2 max-pool with stride 2, no "
                                 f"padding, floor mode and no indices output has a streaming module; "
                                 f"got kernel, strides, pads, dilations, ceil_mode, auto_pad = {geometry}")
            if shape is None or len(shape) != 4:
                raise GraphError(f"MaxPool node '{node.name}': input shape {shape} is not [n, C, H, W]")
            if not dtype.is_integer():
                raise GraphError(f"MaxPool node '{node.name}': its input is {dtype.name}, not the integer "
                                 f"output of a quantizer; put the max-pool after an activation "
                                 f"quantizer (QuantReLU), where it selects integers")
            name = module_name(node, f"maxpool{i}")
            nhwc, pooled = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            model.set_tensor_datatype(pooled, dtype)
            new = [_transpose(model, node.input[0], nhwc, TO_NHWC, f"Transpose_{name}_in"),
                   helper.make_node("StreamingMaxPool", [nhwc], [pooled], name=f"MaxPool_{name}",
                                    domain=DOMAIN, layer_name=name, ImgDim=[shape[2], shape[3]],
                                    NumChannels=shape[1], PE=1, dataType=dtype.name),
                   _transpose(model, pooled, node.output[0], TO_NCHW, f"Transpose_{name}_out")]
            pos = list(model.graph.node).index(node)
            model.graph.node.remove(node)
            for k, n in enumerate(new):
                model.graph.node.insert(pos + k, n)
        return model, False


class CheckDataflow(Transformation):
    """Every remaining node is a dataflow node or a shape-only op, and the hardware layers
    form one stream: between the first and the last of them only Flatten/Reshape (which
    do not reorder a channels-last stream). Errors name the node."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.domain != DOMAIN and node.op_type not in PASS_THROUGH_OPS:
                raise GraphError(f"node '{node.name}' ({node.op_type}) cannot be lowered to the dataflow "
                                 f"accelerator; supported: quantized Gemm/MatMul/Conv with bias, ReLU and an "
                                 f"unsigned activation quantizer, 2x2 MaxPool after a quantizer, and "
                                 f"{', '.join(PASS_THROUGH_OPS)}")
        hw = [i for i, n in enumerate(model.graph.node) if n.domain == DOMAIN and n.op_type in HW_OPS]
        for node in list(model.graph.node)[hw[0]:hw[-1]] if hw else []:
            if not (node.domain == DOMAIN and node.op_type in HW_OPS) and node.op_type not in ("Flatten", "Reshape"):
                raise GraphError(f"node '{node.name}' ({node.op_type}) sits between two hardware layers; "
                                 f"the stream between them cannot be reordered or rescaled (a layout "
                                 f"change that the channels-last rewrites could not remove?)")
        return model, False
