"""Reading quantized layers out of a QONNX graph.

A *quantized layer* is a Gemm, MatMul or Conv node whose weight comes from a QONNX
``Quant`` node on a constant and whose data input comes (through shape-only ops) from a
``Quant`` node: then both operands are integers times scales, and the node's dot
products are integer dot products. Weights are returned as [M, K] rows = output
channels, Conv flattened in [C, kh, kw] order (docs/reference.md). A grouped or depthwise
Conv (``group`` = g > 1, weights [M, C/g, kh, kw]) gives rows of K = C/g·kh·kw: output
channel m reads only the C/g input channels of its group m // (M/g).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.quant import quant
from qonnx.util.basic import get_by_name

COMPUTE_OPS = ("Gemm", "MatMul", "Conv")
# Ops that move or select integer values without changing them.
PASS_THROUGH_OPS = ("Reshape", "Flatten", "Transpose", "Identity", "Squeeze", "Unsqueeze", "MaxPool")


class GraphError(ValueError):
    """A graph the flow cannot handle; the message names the node and what to change."""


@dataclass(frozen=True)
class QuantSpec:
    """A Quant node's integer format and per-tensor or per-channel scale."""

    bits: int
    signed: bool
    narrow: bool
    scale: np.ndarray
    zero_point: np.ndarray

    @property
    def bipolar(self) -> bool:
        """A signed 1-bit format holds ±1 (qonnx's 1-bit Quant and BipolarQuant), not {-1, 0}."""
        return self.bits == 1 and self.signed

    @property
    def range_format(self) -> tuple[int, bool, bool]:
        """(bits, signed, narrow) of an integer format with this one's range, for the
        accumulator analysis: bipolar ±1 is the narrow signed 2-bit range [-1, 1]."""
        return (2, True, True) if self.bipolar else (self.bits, self.signed, self.narrow)

    @property
    def datatype(self) -> str:
        return "BIPOLAR" if self.bipolar else f"{'INT' if self.signed else 'UINT'}{self.bits}"


@dataclass(frozen=True)
class QuantLayer:
    """One quantized compute node: integer weights [M, K] and both operands' formats."""

    node_index: int
    layer_name: str
    op: str
    q: np.ndarray  # int64 [M, K]
    weight: QuantSpec
    input: QuantSpec
    group: int = 1  # Conv groups: rows m·M/g .. (m+1)·M/g - 1 read input channels of group m

    @property
    def M(self) -> int:
        return self.q.shape[0]

    @property
    def K(self) -> int:
        return self.q.shape[1]


def node_attr(node, name, default=None):
    """A node attribute's value (strings decoded), or ``default`` when the node has none."""
    a = get_by_name(node.attribute, name)
    if a is None:
        return default
    value = helper.get_attribute_value(a)
    return value.decode() if isinstance(value, bytes) else value


QUANT_OPS = ("Quant", "BipolarQuant")


def quant_spec(model: ModelWrapper, node) -> QuantSpec:
    """The integer format and scale of a Quant or BipolarQuant node; a GraphError when they
    are not constants or the zero point is not 0."""
    if node.op_type == "BipolarQuant":
        scale = model.get_initializer(node.input[1])
        if scale is None:
            raise GraphError(f"BipolarQuant node '{node.name}': its scale must be a constant")
        return QuantSpec(1, True, False, np.asarray(scale, dtype=np.float64), np.zeros(1))
    scale, zp, bits = (model.get_initializer(t) for t in node.input[1:4])
    if scale is None or zp is None or bits is None:
        raise GraphError(f"Quant node '{node.name}': scale, zero point and bit width must be "
                         f"constants; fold constants (qonnx cleanup) before annotating")
    if np.any(zp != 0):
        raise GraphError(f"Quant node '{node.name}': non-zero zero point; only symmetric "
                         f"(zero-point 0) quantizers have integer dot products here")
    b = float(np.asarray(bits).reshape(-1)[0]) if np.asarray(bits).size == 1 else float("nan")
    if not np.isfinite(b) or b != int(b) or b < 1:
        raise GraphError(f"Quant node '{node.name}': bit width {np.asarray(bits).tolist()} is not an "
                         f"integer >= 1; export the model with a bit width of at least 1")
    return QuantSpec(int(b), bool(node_attr(node, "signed", 1)), bool(node_attr(node, "narrow", 0)),
                     np.asarray(scale, dtype=np.float64), np.asarray(zp))


def weight_quant_node(model: ModelWrapper, node) -> tuple[object, list[list[int]]]:
    """The Quant node behind a compute node's weight input and the Transpose permutations
    between them (Brevitas exports a QuantLinear without bias as Quant -> Transpose -> MatMul)."""
    perms, producer = [], model.find_producer(node.input[1])
    while producer is not None and producer.op_type == "Transpose":
        perms.append(list(node_attr(producer, "perm")))
        producer = model.find_producer(producer.input[0])
    return producer, perms[::-1]


def layer_name(model: ModelWrapper, node) -> str:
    """The PyTorch module name: the weight initializer 'fc1.weight' gives 'fc1'."""
    wq, _ = weight_quant_node(model, node)
    src = wq.input[0] if wq is not None else node.input[1]
    return src[: -len(".weight")] if src.endswith(".weight") else (node.name or src)


def input_quant_node(model: ModelWrapper, node):
    """The Quant node that produces ``node``'s data input, through pass-through ops."""
    tensor = node.input[0]
    while True:
        producer = model.find_producer(tensor)
        if producer is None:
            return None
        if producer.op_type in QUANT_OPS:
            return producer
        if producer.op_type not in PASS_THROUGH_OPS:
            return None
        tensor = producer.input[0]


def integer_weights(model: ModelWrapper, node) -> tuple[np.ndarray, QuantSpec]:
    """Integer weights [M, K] of a compute node and their Quant format."""
    wq, perms = weight_quant_node(model, node)
    if wq is None or wq.op_type not in QUANT_OPS or model.get_initializer(wq.input[0]) is None:
        raise GraphError(f"{node.op_type} node '{node.name}': its weight is not a Quant node on "
                         f"a constant; export the model with a Brevitas weight quantizer")
    spec = quant_spec(model, wq)
    w = model.get_initializer(wq.input[0]).astype(np.float64)
    if wq.op_type == "BipolarQuant":
        q = np.where(w / spec.scale >= 0, 1, -1).astype(np.int64)
    else:
        deq = quant(w, spec.scale, spec.zero_point, np.array(spec.bits, dtype=np.float64), spec.signed,
                    spec.narrow, node_attr(wq, "rounding_mode", "ROUND"))
        q = np.rint(deq / spec.scale).astype(np.int64)
    scale = spec.scale
    for perm in perms:
        q = q.transpose(perm)
        scale = scale.transpose(perm) if scale.ndim == len(perm) else scale
    if node.op_type == "Gemm":
        if not node_attr(node, "transB", 0):
            q, scale = q.T, scale.T
    elif node.op_type == "MatMul":
        q, scale = q.T, scale.T
    elif node.op_type == "Conv":
        group = node_attr(node, "group", 1)
        if group < 1 or q.shape[0] % group:
            raise GraphError(f"Conv node '{node.name}': group={group} does not divide its {q.shape[0]} "
                             f"output channels; a Conv needs M divisible by group")
        q = q.reshape(q.shape[0], -1)
        scale = scale.reshape(scale.shape[0], -1) if scale.ndim == 4 else scale
    scale = np.broadcast_to(scale.reshape(-1), (q.shape[0],)) if scale.size in (1, q.shape[0]) else scale
    return q, QuantSpec(spec.bits, spec.signed, spec.narrow, np.asarray(scale), spec.zero_point)


def quant_layers(model: ModelWrapper) -> list[QuantLayer]:
    """Every quantized compute node, in graph order; errors name a node that is not."""
    layers = []
    for i, node in enumerate(model.graph.node):
        if node.op_type not in COMPUTE_OPS:
            continue
        q, wspec = integer_weights(model, node)
        iq = input_quant_node(model, node)
        if iq is None:
            raise GraphError(f"{node.op_type} node '{node.name}' ({layer_name(model, node)}): its "
                             f"input is not the output of a Quant node, so its dot products are not "
                             f"integer; put an activation quantizer (e.g. QuantIdentity/QuantReLU) before it")
        ispec = quant_spec(model, iq)
        if ispec.scale.size != 1:
            raise GraphError(f"Quant node '{iq.name}' feeding '{node.name}': per-channel input "
                             f"scales are not supported; use a per-tensor activation quantizer")
        group = node_attr(node, "group", 1) if node.op_type == "Conv" else 1
        layers.append(QuantLayer(i, layer_name(model, node), node.op_type, q, wspec, ispec, group))
    return layers
