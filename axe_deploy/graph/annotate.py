"""Accumulator annotations on quantized compute nodes (docs/reference.md, "The annotation contract").

Every Gemm / MatMul / Conv with integer weights gets an :class:`~axe_deploy.graph.annotation.Annotation`
with the minimal accumulator DataType that holds its exact worst-case range, computed
by :mod:`axe_deploy.core.accumulator` from the weights in the graph. Stages after this one
read widths with ``Annotation.of(node)``; they never recompute them. Residual Adds of two
equally scaled quantized tensors and average pools on a quantized tensor are annotated
too (:mod:`axe_deploy.graph.sums`), with their exact ranges from the input data types.
"""

from __future__ import annotations

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from axe_deploy.core import accumulator
from axe_deploy.core.layer_glob import match_layer
from axe_deploy.graph.annotation import Annotation
from axe_deploy.graph.layers import COMPUTE_OPS, GraphError, quant_layers
from axe_deploy.graph.sums import POOL_OPS, SumNode, sum_nodes


def layer_accumulator(layer, tile_size: int) -> accumulator.AccumulatorInfo:
    """The exact accumulator of a graph layer (:func:`axe_deploy.graph.layers.quant_layers`) over its
    input quantizer's range."""
    bits, signed, narrow = layer.input.range_format
    return accumulator.analyze(layer.q, input_bits=bits, input_signed=signed, weight_bits=layer.weight.bits,
                               tile_size=tile_size, input_narrow=narrow)


class AnnotateAccumulators(Transformation):
    """Annotate every quantized compute node with its exact accumulator width.

    ``tile_sizes`` maps layer-name globs to T (0: one stage); ``targets`` maps globs to a
    target P. A layer whose exact range does not fit its target P is an error: the
    quantization did not deliver the width the flow promised, and no annotation is
    written that the weights do not satisfy.
    """

    def __init__(self, tile_sizes: dict[str, int] | None = None, targets: dict[str, int] | None = None):
        super().__init__()
        self.tile_sizes = tile_sizes or {}
        self.targets = targets or {}

    def apply(self, model: ModelWrapper):
        layers = quant_layers(model)
        wanted = {p: t for p, t in self.targets.items() if t}
        if wanted and not layers:
            raise GraphError(f"the graph has no Gemm, MatMul or Conv node with quantized weights, so there is "
                             f"nothing to hold to the target accumulator width {wanted}; check that this is "
                             f"the exported QONNX model")
        names = [layer.layer_name for layer in layers]
        for what, patterns in (("tile size", self.tile_sizes), ("target", self.targets)):
            for pattern in patterns:
                if pattern != "*" and not any(match_layer({pattern: True}, n, False) for n in names):
                    raise GraphError(f"per-layer {what} for '{pattern}' matches no layer; the graph's layers: "
                                     f"{', '.join(names)}")
        for layer in layers:
            node = model.graph.node[layer.node_index]
            T = int(match_layer(self.tile_sizes, layer.layer_name, 0) or 0)
            info = layer_accumulator(layer, T)
            target = int(match_layer(self.targets, layer.layer_name, 0) or 0)
            if target and not accumulator.fits(info.lo, info.hi, target, signed=True):
                raise GraphError(f"layer '{layer.layer_name}' ({node.op_type} '{node.name}'): exact "
                                 f"accumulator range [{info.lo}, {info.hi}] needs {info.exact_bits} bits, "
                                 f"more than the target of {target}; quantize with AXE "
                                 f"(quant.algorithm gpfq/optq/spfq with quant.accumulator_bits)")
            Annotation(layer_name=layer.layer_name, accumulator_datatype=info.datatype,
                       accumulator_range=(info.lo, info.hi), tile_size=info.tile_size,
                       input_datatype=layer.input.datatype, weight_datatype=layer.weight.datatype,
                       datatype_bound_bits=info.datatype_bound_bits,
                       outer_accumulator_datatype=info.outer_datatype if info.tile_size else None,
                       outer_accumulator_range=(info.outer_lo, info.outer_hi) if info.tile_size else None,
                       target_accumulator_bits=target or None).write(node)
        for found in sum_nodes(model):
            sum_annotation(found).write(model.graph.node[found.node_index])
        return model, False


def sum_annotation(found: SumNode) -> Annotation:
    """The exact annotation of a residual Add or an average pool's window sum (no weights:
    the data-type bound is the exact width)."""
    lo, hi = found.exact_range()
    dtype = found.exact_datatype()
    return Annotation(layer_name=found.name, accumulator_datatype=dtype, accumulator_range=(lo, hi), tile_size=0,
                      input_datatype=found.input_datatype, weight_datatype="",
                      datatype_bound_bits=DataType[dtype].bitwidth(), accumulator_kind=found.kind,
                      terms=found.terms)


def check_annotation(layer, annotation: Annotation) -> None:
    """GraphError naming the layer unless its annotated accumulator DataType holds the exact
    range of its weights (computed by :mod:`axe_deploy.core.accumulator`) and the annotated range."""
    where = f"layer '{layer.layer_name}'"
    try:
        dt = DataType[annotation.accumulator_datatype]
    except KeyError:
        raise GraphError(f"{where}: annotated accumulator {annotation.accumulator_datatype!r} is not a QONNX "
                         f"DataType; run the annotate step again") from None
    lo, hi = annotation.accumulator_range
    info = layer_accumulator(layer, annotation.tile_size)
    if lo > info.lo or hi < info.hi:
        raise GraphError(f"{where}: annotated accumulator range [{lo}, {hi}] is narrower than the exact range "
                         f"[{info.lo}, {info.hi}] of its weights; run the annotate step again")
    if not (dt.is_integer() and dt.min() <= lo and hi <= dt.max()):
        raise GraphError(f"{where}: annotated accumulator {dt.name} does not hold its range [{lo}, {hi}] "
                         f"(needs {info.datatype}); run the annotate step again")


def copy_annotations(src: ModelWrapper, dst: ModelWrapper) -> None:
    """Copy annotations onto the compute nodes of another export of the same network
    (the QCDQ graph), matched in graph order; both must have the same compute nodes.
    Annotated sums (Add, average pools) are matched by node name and op."""
    a = [n for n in src.graph.node if n.op_type in COMPUTE_OPS]
    b = [n for n in dst.graph.node if n.op_type in COMPUTE_OPS]
    if [n.op_type for n in a] != [n.op_type for n in b]:
        raise GraphError(f"QONNX and QCDQ graphs differ in compute nodes: "
                         f"{[n.op_type for n in a]} vs {[n.op_type for n in b]}")
    for na, nb in zip(a, b):
        annotation = Annotation.of(na)
        if annotation:
            annotation.write(nb)
    by_name = {n.name: n for n in dst.graph.node if n.op_type == "Add" or n.op_type in POOL_OPS}
    for na in src.graph.node:
        annotation = Annotation.of(na) if na.op_type == "Add" or na.op_type in POOL_OPS else None
        if annotation is None:
            continue
        nb = by_name.get(na.name)
        if nb is None or nb.op_type != na.op_type:
            raise GraphError(f"{na.op_type} node '{na.name}' is annotated in the QONNX graph but has no "
                             f"{na.op_type} node of that name in the QCDQ graph; export both from one model")
        annotation.write(nb)
