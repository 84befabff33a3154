"""Integer accumulators that are not dot products: the residual ``Add`` of two quantized
tensors and the window sum of an ``AveragePool`` / ``GlobalAveragePool``.

- **add**: an Add whose two inputs come (through shape-only ops) from activation Quant
  nodes with the same per-tensor scale s is s·(a + b) with integers a, b: its exact range
  is the sum of the two input ranges. With different scales the sum is not one integer
  sum: it runs on the dequantized values (as in the QONNX and QCDQ graphs), the Quant
  after it re-quantizes, and the Add is not an accumulator here (:func:`unaligned_adds`
  names it). Brevitas graph mode shares one quantizer across a residual's inputs.
- **window_sum**: an average pool on a Quant output is s·(sum of k integers)/k; the sum
  of a k-element window (k = kh·kw, or H·W for the global pool) lies in k·[x_min, x_max]
  (zero padding adds zeros, which stay inside that range).

These ranges come from the data types alone, so they are exact whatever the weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes

from axe_deploy.core import accumulator
from axe_deploy.graph.layers import GraphError, QuantSpec, node_attr, quant_spec
from axe_deploy.graph.layers import PASS_THROUGH_OPS, QUANT_OPS

POOL_OPS = ("AveragePool", "GlobalAveragePool")


@dataclass(frozen=True)
class SumNode:
    """One integer-sum node: its kind, the formats of its inputs and the number of terms."""

    node_index: int
    name: str
    op: str
    kind: str  # "add" or "window_sum"
    inputs: tuple[QuantSpec, ...]  # add: both inputs; window_sum: the pooled input
    terms: int  # add: 2; window_sum: elements per window

    @property
    def input_datatype(self) -> str:
        return ",".join(spec.datatype for spec in self.inputs)

    def exact_range(self) -> tuple[int, int]:
        """The exact worst-case integer range of the sum (reached when every term is at its bound)."""
        bounds = [accumulator.input_bounds(*spec.range_format) for spec in self.inputs]
        if self.kind == "add":
            return sum(b[0] for b in bounds), sum(b[1] for b in bounds)
        return self.terms * bounds[0][0], self.terms * bounds[0][1]

    def exact_datatype(self) -> str:
        lo, hi = self.exact_range()
        signed = lo < 0
        return accumulator.datatype_name(accumulator.min_bits(lo, hi, signed), signed)


def activation_quant(model: ModelWrapper, tensor: str):
    """The activation Quant node (on a computed tensor, not a constant) that produces
    ``tensor`` through pass-through ops; None when there is none."""
    while model.get_initializer(tensor) is None:
        producer = model.find_producer(tensor)
        if producer is None:
            return None
        if producer.op_type in QUANT_OPS:
            return producer if model.get_initializer(producer.input[0]) is None else None
        if producer.op_type not in PASS_THROUGH_OPS:
            return None
        tensor = producer.input[0]
    return None


def _quant_inputs(model: ModelWrapper, node) -> list[QuantSpec] | None:
    specs = []
    for tensor in node.input[:2] if node.op_type == "Add" else node.input[:1]:
        q = activation_quant(model, tensor)
        if q is None:
            return None
        spec = quant_spec(model, q)
        if spec.scale.size != 1:
            return None
        specs.append(spec)
    return specs


def _window(model: ModelWrapper, node) -> int:
    if node.op_type == "GlobalAveragePool":
        shape = model.get_tensor_shape(node.input[0])
        if shape is None:  # onnx shape inference stops at QONNX's custom Quant nodes; qonnx's does not
            inferred = ModelWrapper(model.model.__deepcopy__()).transform(InferShapes())
            shape = inferred.get_tensor_shape(node.input[0])
        if shape is None or len(shape) < 3 or not all(isinstance(d, int) and d > 0 for d in shape[2:]):
            raise GraphError(f"GlobalAveragePool node '{node.name}': input shape {shape} is not known; "
                             f"run shape inference (qonnx InferShapes) first")
        return int(np.prod(shape[2:]))
    if node_attr(node, "ceil_mode", 0):
        raise GraphError(f"AveragePool node '{node.name}': ceil_mode=1 is not supported (partial windows "
                         f"divide by a different count); use ceil_mode=0")
    return int(np.prod(node_attr(node, "kernel_shape")))


def sum_nodes(model: ModelWrapper) -> list[SumNode]:
    """Every residual Add of two equally scaled quantized tensors and every average pool
    on a quantized tensor, in graph order."""
    found = []
    for i, node in enumerate(model.graph.node):
        if node.op_type != "Add" and node.op_type not in POOL_OPS:
            continue
        specs = _quant_inputs(model, node)
        if specs is None:
            continue
        if node.op_type == "Add":
            if not np.array_equal(specs[0].scale.reshape(-1), specs[1].scale.reshape(-1)):
                continue
            found.append(SumNode(i, node.name, node.op_type, "add", tuple(specs), 2))
        else:
            found.append(SumNode(i, node.name, node.op_type, "window_sum", tuple(specs), _window(model, node)))
    return found


def unaligned_adds(model: ModelWrapper) -> list[tuple[str, float, float]]:
    """(node name, scale a, scale b) of every Add of two quantized tensors whose scales
    differ: not an integer sum, computed on the dequantized values."""
    out = []
    for node in model.graph.node:
        if node.op_type == "Add":
            specs = _quant_inputs(model, node)
            if specs and not np.array_equal(specs[0].scale.reshape(-1), specs[1].scale.reshape(-1)):
                out.append((node.name, float(specs[0].scale.reshape(-1)[0]), float(specs[1].scale.reshape(-1)[0])))
    return out


def _integers(x_real: np.ndarray, spec: QuantSpec, where: str) -> np.ndarray:
    x = x_real.astype(np.float64) / float(spec.scale.reshape(-1)[0])
    x_int = np.rint(x)
    if np.abs(x - x_int).max(initial=0) > 1e-3:
        raise GraphError(f"{where}: its input is not integer times the input quantizer's scale "
                         f"(max deviation {np.abs(x - x_int).max():.3g})")
    return x_int.astype(np.int64)


def integer_sums(model: ModelWrapper, node_sum: SumNode, context: dict[str, np.ndarray]) -> np.ndarray:
    """The integer values the sum takes on the tensors of one qonnx execution, in int64."""
    node = model.graph.node[node_sum.node_index]
    where = f"{node.op_type} node '{node.name}'"
    xs = [_integers(context[t], s, where) for t, s in zip(node.input, node_sum.inputs)]
    if node_sum.kind == "add":
        return xs[0] + xs[1]
    x = xs[0]
    if node.op_type == "GlobalAveragePool":
        return x.reshape(*x.shape[:2], -1).sum(-1)
    kernel = tuple(node_attr(node, "kernel_shape"))
    pads = list(node_attr(node, "pads", [0] * 2 * len(kernel)))
    strides = list(node_attr(node, "strides", [1] * len(kernel)))
    half = len(kernel)
    x = np.pad(x, [(0, 0), (0, 0)] + [(pads[d], pads[d + half]) for d in range(half)])
    win = np.lib.stride_tricks.sliding_window_view(x, kernel, axis=tuple(range(2, 2 + half)))
    win = win[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in strides)]
    return win.reshape(*win.shape[: 2 + half], -1).sum(-1)
