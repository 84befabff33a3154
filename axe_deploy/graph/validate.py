"""Validation: the same test inputs through torch, qonnx and onnxruntime, and an
integer overflow check of every annotated layer.

The overflow check reads the integer weights back out of the exported QONNX graph and
the widths out of its annotations, then recomputes every dot product in int64 on the
layer's real integer inputs (from qonnx execution) and on each row's worst-case input,
and confirms all of them fit the annotated accumulator (per tile and outer, for
multi-stage accumulation). A grouped/depthwise Conv is checked group by group: the
patches of group g hold only its own C/g input channels, dotted with its M/g rows.
Residual Adds and average pools (:mod:`axe_deploy.graph.sums`) are checked the same way:
their integer sums on the real inputs and their worst case against the annotation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnxruntime as ort
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.core.onnx_exec import execute_onnx
from qonnx.transformation.infer_shapes import InferShapes

from axe_deploy.core import accumulator
from axe_deploy.graph.annotation import Annotation
from axe_deploy.graph.layers import GraphError, QuantLayer, quant_layers
from axe_deploy.graph.sums import SumNode, integer_sums, sum_nodes


def run_onnxruntime(model, x: np.ndarray, optimize: bool = True) -> np.ndarray:
    """Run a (QCDQ) graph, a file or a ModelWrapper, in onnxruntime; ``optimize=False`` switches its graph optimizations
    off (they fold a BatchNorm into the float MatMul before a quantizer, which moves values
    across rounding ties: ±3 logits on FINN's TFC against qonnx and the unoptimized run)."""
    opts = ort.SessionOptions()
    if not optimize:
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    source = model.model.SerializeToString() if isinstance(model, ModelWrapper) else str(model)
    sess = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    return sess.run(None, {sess.get_inputs()[0].name: x.astype(np.float32)})[0]


def run_qonnx(model: ModelWrapper, x: np.ndarray) -> dict[str, np.ndarray]:
    """Execute a QONNX graph with a symbolic batch on ``x``; returns every tensor."""
    model = ModelWrapper(model.model.__deepcopy__())
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    model.set_tensor_shape(inp, list(x.shape))
    out_shape = [x.shape[0]] + [d.dim_value for d in model.graph.output[0].type.tensor_type.shape.dim[1:]]
    model.set_tensor_shape(out, out_shape)
    del model.graph.value_info[:]
    model = model.transform(InferShapes())
    return execute_onnx(model, {inp: x.astype(np.float32)}, return_full_exec_context=True)


def im2col(x: np.ndarray, node_attrs: dict, kernel: tuple[int, int]) -> np.ndarray:
    """[n, C, H, W] -> [n·oh·ow, C·kh·kw] patches in the weights' [C, kh, kw] order.
    Zero padding adds integer zeros: they contribute nothing to the dot product."""
    kh, kw = kernel
    pt, pl, pb, pr = node_attrs.get("pads", [0, 0, 0, 0])
    sh, sw = node_attrs.get("strides", [1, 1])
    dh, dw = node_attrs.get("dilations", [1, 1])
    x = np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)))
    win = np.lib.stride_tricks.sliding_window_view(x, ((kh - 1) * dh + 1, (kw - 1) * dw + 1), axis=(2, 3))
    win = win[:, :, ::sh, ::sw, ::dh, ::dw]  # [n, C, oh, ow, kh, kw]
    n, C, oh, ow = win.shape[:4]
    return win.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, C * kh * kw)


def _node_attrs(node) -> dict:
    return {a.name: list(a.ints) for a in node.attribute if a.ints}


def layer_integer_inputs(layer: QuantLayer, node, x_real: np.ndarray) -> np.ndarray:
    """The integer input vectors [rows, K] of a layer, from its real-valued input tensor;
    [group, rows, K] for a grouped Conv (each group's patches of its own input channels)."""
    x = x_real.astype(np.float64) / float(layer.input.scale.reshape(-1)[0])
    x_int = np.rint(x)
    if np.abs(x - x_int).max(initial=0) > 1e-3:
        raise GraphError(f"layer '{layer.layer_name}': its input is not integer times the "
                         f"input quantizer's scale (max deviation {np.abs(x - x_int).max():.3g})")
    x_int = x_int.astype(np.int64)
    if layer.op == "Conv":
        attrs = _node_attrs(node)
        if "kernel_shape" not in attrs:
            raise GraphError(f"Conv node '{node.name}': kernel_shape attribute is required")
        kernel = tuple(attrs["kernel_shape"])
        if layer.group > 1:
            return np.stack([im2col(xg, attrs, kernel) for xg in np.split(x_int, layer.group, axis=1)])
        return im2col(x_int, attrs, kernel)
    return x_int.reshape(-1, layer.K)


def group_dot(x_int: np.ndarray, q: np.ndarray, tile_size: int = 0) -> np.ndarray:
    """Integer dot products of inputs with weight rows [M, K]: x_int [rows, K] -> [rows, M],
    or per group x_int [g, rows, K] with the M/g rows of each group -> [rows, M]; with
    ``tile_size`` T > 0 the per-tile partial sums [rows, M, ceil(K/T)]."""
    xs = x_int if x_int.ndim == 3 else x_int[None]
    qs = q.reshape(xs.shape[0], -1, q.shape[1])
    if tile_size:
        return np.concatenate([np.einsum("rtk,mtk->rmt", accumulator.split_tiles(x, tile_size),
                                         accumulator.split_tiles(qg, tile_size)) for x, qg in zip(xs, qs)], axis=1)
    return np.concatenate([x @ qg.T for x, qg in zip(xs, qs)], axis=1)


@dataclass
class LayerCheck:
    name: str
    overflow_free: bool
    observed_range: tuple[int, int]
    worst_case_range: tuple[int, int]
    exact_bits: int
    detail: str = ""


def _fits(values: np.ndarray, dtype: DataType) -> bool:
    return bool(values.size == 0 or (values.min() >= dtype.min() and values.max() <= dtype.max()))


def check_layer(layer: QuantLayer, annotation: Annotation, x_int: np.ndarray) -> LayerCheck:
    """Real and worst-case accumulators of one layer against its annotation."""
    T = annotation.tile_size
    inner = DataType[annotation.accumulator_datatype]
    outer = DataType[annotation.whole_datatype]
    lo, hi = annotation.accumulator_range
    x_min, x_max = accumulator.input_bounds(*layer.input.range_format)
    x_hi, x_lo = accumulator.worst_case_inputs(layer.q, x_min, x_max)
    worst = np.stack([(x_hi * layer.q).sum(1), (x_lo * layer.q).sum(1)])
    full = group_dot(x_int, layer.q)
    problems = []
    if not (_fits(full, outer) and _fits(worst, outer)):
        problems.append(f"whole-row sums exceed {outer.name}")
    if T:
        qt = accumulator.split_tiles(layer.q, T)
        partial = group_dot(x_int, layer.q, T)
        worst_t = np.stack([np.einsum("mtk,mtk->mt", accumulator.split_tiles(x, T), qt) for x in (x_hi, x_lo)])
        checked, checked_worst = partial, worst_t
    else:
        checked, checked_worst = full, worst
    if not (_fits(checked, inner) and _fits(checked_worst, inner)):
        problems.append(f"accumulator values exceed {inner.name}")
    if checked_worst.min() < lo or checked_worst.max() > hi or checked.min(initial=lo) < lo or checked.max(initial=hi) > hi:
        problems.append(f"values outside the annotated range [{lo}, {hi}]")
    observed = (int(checked.min(initial=0)), int(checked.max(initial=0)))
    worst_range = (int(checked_worst.min()), int(checked_worst.max()))
    exact_bits = accumulator.min_bits(*worst_range, signed=inner.signed())
    return LayerCheck(layer.layer_name, not problems, observed, worst_range, exact_bits, "; ".join(problems))


def integer_check(model: ModelWrapper, context: dict[str, np.ndarray]) -> list[LayerCheck]:
    """Check every annotated layer of ``model`` on the tensors of one qonnx execution."""
    checks = []
    for layer in quant_layers(model):
        node = model.graph.node[layer.node_index]
        annotation = Annotation.required(node, layer.layer_name)
        x_int = layer_integer_inputs(layer, node, context[node.input[0]])
        checks.append(check_layer(layer, annotation, x_int))
    for found in sum_nodes(model):
        node = model.graph.node[found.node_index]
        annotation = Annotation.required(node, found.name)
        checks.append(check_sum(found, annotation, integer_sums(model, found, context)))
    return checks


def check_sum(found: SumNode, annotation: Annotation, sums: np.ndarray) -> LayerCheck:
    """Real and worst-case values of a residual Add or window sum against its annotation."""
    dtype = DataType[annotation.accumulator_datatype]
    lo, hi = annotation.accumulator_range
    worst = np.array(found.exact_range(), dtype=np.int64)
    problems = []
    if not (_fits(sums, dtype) and _fits(worst, dtype)):
        problems.append(f"sums exceed {dtype.name}")
    if worst[0] < lo or worst[1] > hi or sums.min(initial=lo) < lo or sums.max(initial=hi) > hi:
        problems.append(f"values outside the annotated range [{lo}, {hi}]")
    observed = (int(sums.min(initial=0)), int(sums.max(initial=0)))
    exact_bits = accumulator.min_bits(int(worst[0]), int(worst[1]), signed=dtype.signed())
    return LayerCheck(found.name, not problems, observed, (int(worst[0]), int(worst[1])), exact_bits,
                      "; ".join(problems))


def accuracy(logits: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(logits).argmax(1) == np.asarray(labels)).mean())

