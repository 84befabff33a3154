"""Layer specs of a dataflow accelerator, their integer reference semantics and cycle estimates.

This is the interface between the ONNX lowering and the hardware backend: the lowering
builds a list of specs, everything below (folding, Verilog, simulation, synthesis) reads
only these. Streams are channels-last; every layer takes ``in_lanes`` elements per input
beat and gives ``out_lanes`` per output beat, element 0 of a beat in the low bits.

Per image a layer takes ``in_elems`` and gives ``out_elems`` integers; ``reference`` maps
``[n, in_elems] -> [n, out_elems]`` in int64, and the stitched RTL must equal
``chain_reference`` bit for bit.

Conv layout contract: a convolution is ``SlidingWindowLayer`` + ``MVAULayer`` with
``num_vectors = OH*OW``; the window of output pixel (oh, ow) is emitted in (kh, kw, c)
order, so the MVAU's weight columns must be ordered (kh, kw, c), i.e. a PyTorch
``[OC, C, kh, kw]`` weight becomes ``w.transpose(0, 2, 3, 1).reshape(OC, -1)``. Padding
is done by the sliding-window module (integer 0 outside the image), not by the lowering.

Multi-stage accumulation (``MVAULayer.tile_size`` T > 0): the MVAU's weight columns are
in the order the annotation tiles (consecutive chunks of T along K, docs/reference.md); where
the stream brings the inputs in another order (a convolution's (kh, kw, c) windows, a
channels-last flatten), a ``ReorderLayer`` in front of the MVAU permutes every vector
into the tile order, so each tile's inputs reach the MVAU as consecutive folds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Union

import numpy as np

# Cycles a layer's last output beat leaves after its last input beat's issue, per layer
# kind (register stages of the RTL modules); an MVAU adds its optional pipeline stages.
MVAU_PIPELINE_DEPTH = 3  # operands, accumulators, output register
TILED_MVAU_PIPELINE_DEPTH = 4  # one more register stage: tile sum into the outer accumulator
# An MVAU's optional stages, in the order pipeline_stages adds them (axe_mvau.v's PIPE):
# operands (behind the weight ROM), compare (accumulators and thresholds), products, a
# second operand and product register (placement room around a DSP multiplier), then one
# after each adder tree level at most.
MVAU_FIXED_OPTIONAL_STAGES = ("operands", "compare", "products", "operands 2", "products 2")
# 8: those five and three in the adder tree (after every level up to SIMD 8, every second
# level up to SIMD 128). On an ECP5 (benchmarks/fpga_place_route.py) what is left are the
# routes to and from the spread-out MULT18X18D blocks (combinational here): nextpnr seeds
# 1/2/3 give 106/97/110 MHz for the digits MLP, 84/101/105 MHz for the CNN.
DEFAULT_PIPELINE_STAGES = 8
RES_TYPES = ("auto", "lut", "dsp")  # FINN's resType: the multipliers' resource
SWG_PIPELINE_DEPTH = 2
POOL_PIPELINE_DEPTH = 1
REORDER_PIPELINE_DEPTH = 1  # plus one vector: it is written whole before it is read
MAX_ACC_BITS = 62  # the simulation's shadow accumulator and the reference are 64-bit


def _register_range(bits: int, signed: bool) -> tuple[int, int]:
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def wrap(values: np.ndarray, bits: int, signed: bool) -> np.ndarray:
    """``values`` (int64) reduced into a ``bits``-wide register, as two's complement
    hardware does: identity where they fit."""
    v = np.asarray(values, dtype=np.int64) & ((1 << bits) - 1)
    return v - (v >> (bits - 1) << bits) if signed else v


def _check_divides(name: str, what: str, fold: int, total: int) -> None:
    if fold < 1 or total % fold:
        raise ValueError(f"layer '{name}': {what}={fold} does not divide {total}; "
                         f"choose a divisor of {total}")


@dataclass
class MVAULayer:
    """Matrix-vector-activation unit: ``thresholds(W @ x)`` for each of ``num_vectors``
    vectors of MW integers per image.

    ``acc_bits``/``acc_signed`` come from the graph annotation and are the register width
    that is built, exactly. ``tile_size`` T > 0 (multi-stage accumulation): every tile of
    T consecutive columns is summed in an inner register of ``acc_bits`` (the annotated
    inner width), each tile sum is added into an outer register of ``outer_bits`` (the
    annotated outer width), and the outer register is what the thresholds see; SIMD must
    divide T, so that tiles are whole folds. ``thresholds`` [MH, n_thr] (non-decreasing per row): output =
    number of thresholds <= accumulator, unsigned, ``ceil(log2(n_thr + 1))`` bits;
    thresholds may lie outside the register's range. ``None``: the accumulator is the
    output (last layer). ``num_vectors``: vectors per image (OH*OW for a convolution).
    ``ram_style`` of the weight and threshold ROMs (FINN's attribute): "block",
    "distributed", or "auto" (block RAM from 9 Kbit, half a RAMB18, up; else the
    synthesis tool's choice). ``res_type`` of the multipliers (FINN's resType): "lut",
    "dsp" or "auto" (the synthesis tool's choice).
    ``pipeline_stages``: optional register stages of the MVAU's datapath, taken in the
    order of ``MVAU_FIXED_OPTIONAL_STAGES``, then inside the SIMD adder tree (one per
    level at most, ceil(log2 SIMD) levels); more than the layer can place are not built
    (``built_pipeline_stages``). Each built stage adds a cycle of latency, never interval.
    """

    name: str
    MW: int
    MH: int
    SIMD: int
    PE: int
    input_bits: int
    input_signed: bool
    weight_bits: int
    acc_bits: int
    acc_signed: bool
    weights: np.ndarray
    thresholds: np.ndarray | None
    num_vectors: int = 1
    ram_style: str = "auto"
    act_val: int = 0  # FINN's ActVal: added to the threshold count (signed activations: its minimum)
    tile_size: int = 0
    outer_bits: int = 0
    input_narrow: bool = False  # signed inputs never take -2^(N-1) (their producer's narrow range)
    # the annotated exact range of the register the output shows (the outer one when tiled);
    # None where the layer was not made from an annotated graph
    annotated_range: tuple[int, int] | None = None
    pipeline_stages: int = DEFAULT_PIPELINE_STAGES
    res_type: str = "auto"

    def __post_init__(self):
        self.weights = np.asarray(self.weights)
        if self.weights.shape != (self.MH, self.MW):
            raise ValueError(f"layer '{self.name}': weights have shape {self.weights.shape}, "
                             f"expected [MH, MW] = [{self.MH}, {self.MW}]")
        w = self.weights.astype(np.int64)
        if not np.array_equal(w, self.weights):
            raise ValueError(f"layer '{self.name}': weights are not integers")
        self.weights = w
        lo, hi = _register_range(self.weight_bits, True)
        if w.size and (w.min() < lo or w.max() > hi):
            raise ValueError(f"layer '{self.name}': weights in [{w.min()}, {w.max()}] do not "
                             f"fit INT{self.weight_bits} [{lo}, {hi}]")
        if not 1 <= self.acc_bits <= MAX_ACC_BITS:
            raise ValueError(f"layer '{self.name}': acc_bits={self.acc_bits} outside "
                             f"[1, {MAX_ACC_BITS}]")
        if self.input_bits < 1 or self.weight_bits < 1 or self.num_vectors < 1:
            raise ValueError(f"layer '{self.name}': input_bits, weight_bits and num_vectors "
                             "must be >= 1")
        _check_divides(self.name, "SIMD", self.SIMD, self.MW)
        _check_divides(self.name, "PE", self.PE, self.MH)
        if self.tile_size:
            if not 0 < self.tile_size < self.MW:
                raise ValueError(f"layer '{self.name}': tile_size={self.tile_size} must be in "
                                 f"(0, MW={self.MW}); a tile of the whole row is one stage (0)")
            if self.tile_size % self.SIMD:
                raise ValueError(f"layer '{self.name}': SIMD={self.SIMD} does not divide "
                                 f"tile_size={self.tile_size}; tiles must be whole folds: choose "
                                 f"SIMD dividing {self.tile_size}")
            if not self.acc_bits <= self.outer_bits <= MAX_ACC_BITS:
                raise ValueError(f"layer '{self.name}': outer_bits={self.outer_bits} must be in "
                                 f"[acc_bits={self.acc_bits}, {MAX_ACC_BITS}]")
        elif self.outer_bits:
            raise ValueError(f"layer '{self.name}': outer_bits={self.outer_bits} without a "
                             "tile_size; one stage has one register (acc_bits)")
        if self.pipeline_stages < 0:
            raise ValueError(f"layer '{self.name}': pipeline_stages={self.pipeline_stages} must be >= 0")
        if self.res_type not in RES_TYPES:
            raise ValueError(f"layer '{self.name}': res_type '{self.res_type}' is not one of "
                             f"{', '.join(repr(r) for r in RES_TYPES)}")
        if self.ram_style not in ("auto", "block", "distributed"):
            raise ValueError(f"layer '{self.name}': ram_style '{self.ram_style}' is not one of "
                             "'auto', 'block', 'distributed'")
        if self.thresholds is not None:
            t = np.asarray(self.thresholds)
            if t.ndim != 2 or t.shape[0] != self.MH or t.shape[1] < 1:
                raise ValueError(f"layer '{self.name}': thresholds have shape {t.shape}, "
                                 f"expected [MH={self.MH}, n_thr >= 1]")
            t64 = t.astype(np.int64)
            if not np.array_equal(t64, t):
                raise ValueError(f"layer '{self.name}': thresholds are not integers")
            if np.any(np.diff(t64, axis=1) < 0):
                raise ValueError(f"layer '{self.name}': thresholds must be non-decreasing "
                                 "along each row")
            self.thresholds = t64

    @property
    def n_thresholds(self) -> int:
        return 0 if self.thresholds is None else self.thresholds.shape[1]

    @property
    def adder_tree_levels(self) -> int:
        return (self.SIMD - 1).bit_length()

    @property
    def built_pipeline_stages(self) -> int:
        """The optional stages the RTL builds: ``pipeline_stages``, at most all it can place."""
        return min(self.pipeline_stages, len(MVAU_FIXED_OPTIONAL_STAGES) + self.adder_tree_levels)

    @property
    def result_bits(self) -> int:
        """Width of the register the thresholds (or the output) see: the outer one when tiled."""
        return self.outer_bits if self.tile_size else self.acc_bits

    @property
    def n_tiles(self) -> int:
        return -(-self.MW // self.tile_size) if self.tile_size else 1

    @property
    def output_bits(self) -> int:
        if self.thresholds is None:
            return self.result_bits
        if self.act_val < 0:  # the signed register that holds [act_val, act_val + n_thr]
            hi = self.act_val + self.n_thresholds
            return max((-self.act_val - 1).bit_length(), hi.bit_length() if hi > 0 else 0) + 1
        return max(1, math.ceil(math.log2(self.act_val + self.n_thresholds + 1)))

    @property
    def output_signed(self) -> bool:
        return self.acc_signed if self.thresholds is None else self.act_val < 0

    in_lanes = property(lambda self: self.SIMD)
    out_lanes = property(lambda self: self.PE)
    in_elems = property(lambda self: self.num_vectors * self.MW)
    out_elems = property(lambda self: self.num_vectors * self.MH)

    def reference(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64).reshape(-1, self.MW)
        return mvau_reference(self, x).reshape(-1, self.out_elems)


@dataclass
class SlidingWindowLayer:
    """Sliding-window generator (im2col in hardware, line buffers): an H x W x C image in,
    for each output pixel (oh, ow) the K x K window in (kh, kw, c) order out. ``pad``
    zero rows/columns on every side are produced by the module; SIMD channels a beat."""

    name: str
    H: int
    W: int
    C: int
    K: int
    SIMD: int
    bits: int
    signed: bool
    stride: int = 1
    pad: int = 0

    def __post_init__(self):
        if min(self.H, self.W, self.C, self.K, self.stride, self.bits) < 1 or self.pad < 0:
            raise ValueError(f"layer '{self.name}': sizes must be >= 1 and pad >= 0")
        if self.stride > self.K:
            raise ValueError(f"layer '{self.name}': stride {self.stride} > kernel {self.K} "
                             "is not supported")
        if self.OH < 1 or self.OW < 1:
            raise ValueError(f"layer '{self.name}': kernel {self.K} does not fit the "
                             f"{self.H}x{self.W} image with pad {self.pad}")
        _check_divides(self.name, "SIMD", self.SIMD, self.C)

    OH = property(lambda self: (self.H + 2 * self.pad - self.K) // self.stride + 1)
    OW = property(lambda self: (self.W + 2 * self.pad - self.K) // self.stride + 1)
    input_bits = property(lambda self: self.bits)
    input_signed = property(lambda self: self.signed)
    output_bits = property(lambda self: self.bits)
    output_signed = property(lambda self: self.signed)
    in_lanes = property(lambda self: self.SIMD)
    out_lanes = property(lambda self: self.SIMD)
    in_elems = property(lambda self: self.H * self.W * self.C)
    out_elems = property(lambda self: self.OH * self.OW * self.K * self.K * self.C)

    def reference(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64).reshape(-1, self.H, self.W, self.C)
        p, k, s = self.pad, self.K, self.stride
        xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)))
        rows = [xp[:, oh * s:oh * s + k, ow * s:ow * s + k, :].reshape(len(x), -1)
                for oh in range(self.OH) for ow in range(self.OW)]
        return np.stack(rows, axis=1).reshape(len(x), -1)


@dataclass
class MaxPoolLayer:
    """2 x 2 max-pool, stride 2, floor mode (an odd last row/column is dropped, as in
    PyTorch's default); PE channels a beat, channels-last in and out."""

    name: str
    H: int
    W: int
    C: int
    PE: int
    bits: int
    signed: bool

    def __post_init__(self):
        if min(self.H, self.W) < 2 or min(self.C, self.bits) < 1:
            raise ValueError(f"layer '{self.name}': a 2x2 pool needs H, W >= 2 and C, bits >= 1")
        _check_divides(self.name, "PE", self.PE, self.C)

    OH = property(lambda self: self.H // 2)
    OW = property(lambda self: self.W // 2)
    input_bits = property(lambda self: self.bits)
    input_signed = property(lambda self: self.signed)
    output_bits = property(lambda self: self.bits)
    output_signed = property(lambda self: self.signed)
    in_lanes = property(lambda self: self.PE)
    out_lanes = property(lambda self: self.PE)
    in_elems = property(lambda self: self.H * self.W * self.C)
    out_elems = property(lambda self: self.OH * self.OW * self.C)

    def reference(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64).reshape(-1, self.H, self.W, self.C)
        x = x[:, :2 * self.OH, :2 * self.OW, :]
        x = x.reshape(len(x), self.OH, 2, self.OW, 2, self.C).max(axis=(2, 4))
        return x.reshape(len(x), -1)


@dataclass
class ReorderLayer:
    """Permutes every vector of N elements: out[j] = in[order[j]], one element a beat in
    and out. In front of a tiled MVAU it brings the stream into the order the accumulator
    tiles follow (``num_vectors`` vectors an image, as the MVAU's)."""

    name: str
    N: int
    bits: int
    signed: bool
    order: np.ndarray
    num_vectors: int = 1

    def __post_init__(self):
        self.order = np.asarray(self.order, dtype=np.int64)
        if self.N < 1 or self.bits < 1 or self.num_vectors < 1:
            raise ValueError(f"layer '{self.name}': N, bits and num_vectors must be >= 1")
        if not np.array_equal(np.sort(self.order), np.arange(self.N)):
            raise ValueError(f"layer '{self.name}': order is not a permutation of range({self.N})")

    input_bits = property(lambda self: self.bits)
    input_signed = property(lambda self: self.signed)
    output_bits = property(lambda self: self.bits)
    output_signed = property(lambda self: self.signed)
    in_lanes = property(lambda self: 1)
    out_lanes = property(lambda self: 1)
    in_elems = property(lambda self: self.num_vectors * self.N)
    out_elems = property(lambda self: self.num_vectors * self.N)

    def reference(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.int64)
        return x.reshape(-1, self.N)[:, self.order].reshape(len(x), -1)


Layer = Union[MVAULayer, SlidingWindowLayer, MaxPoolLayer, ReorderLayer]


def mvau_reference(layer: MVAULayer, x_int: np.ndarray) -> np.ndarray:
    """Reference semantics of one MVAU: ``x_int`` [n, MW] -> [n, MH] int64.

    One stage: the accumulator is the exact int64 dot product (what a register of
    ``acc_bits`` holds when nothing overflows). Tiled: the hardware's two-level sums, each
    tile's sum in the inner register (``acc_bits``), added into the outer register
    (``outer_bits``), both wrapping as two's complement registers do, so the reference
    equals the RTL even where a register is too narrow. With thresholds the output is the
    number of thresholds <= the (outer) accumulator.
    """
    x = np.asarray(x_int)
    if x.ndim != 2 or x.shape[1] != layer.MW:
        raise ValueError(f"layer '{layer.name}': input has shape {x.shape}, "
                         f"expected [n, {layer.MW}]")
    x64 = x.astype(np.int64)
    if not np.array_equal(x64, x):
        raise ValueError(f"layer '{layer.name}': input is not integer")
    lo, hi = _register_range(layer.input_bits, layer.input_signed)
    if x64.size and (x64.min() < lo or x64.max() > hi):
        raise ValueError(f"layer '{layer.name}': input in [{x64.min()}, {x64.max()}] outside "
                         f"the {layer.input_bits}-bit "
                         f"{'signed' if layer.input_signed else 'unsigned'} range [{lo}, {hi}]")
    if layer.tile_size:
        acc = np.zeros((len(x64), layer.MH), dtype=np.int64)
        for start in range(0, layer.MW, layer.tile_size):
            cols = slice(start, start + layer.tile_size)
            inner = wrap(x64[:, cols] @ layer.weights[:, cols].T, layer.acc_bits, layer.acc_signed)
            acc = wrap(acc + inner, layer.outer_bits, layer.acc_signed)
    else:
        acc = x64 @ layer.weights.T
    if layer.thresholds is None:
        return acc
    return layer.act_val + (acc[:, :, None] >= layer.thresholds[None, :, :]).sum(axis=2).astype(np.int64)


def chain_reference(layers: list[Layer], x: np.ndarray) -> np.ndarray:
    """Run a checked chain of layers on ``x`` [n, in_elems] -> [n, out_elems] (int64)."""
    check_chain(layers)
    y = np.asarray(x, dtype=np.int64).reshape(len(x), -1)
    for layer in layers:
        y = layer.reference(y)
    return y


def check_chain(layers: list[Layer]) -> None:
    """Raise unless each layer's output stream is the next one's input stream
    (elements per image, bits, signedness) and layer names are unique."""
    if not layers:
        raise ValueError("empty layer list")
    names = [layer.name for layer in layers]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise ValueError(f"duplicate layer names {sorted(dup)}; layer names must be unique")
    for a, b in zip(layers, layers[1:]):
        got = (a.out_elems, a.output_bits, a.output_signed)
        want = (b.in_elems, b.input_bits, b.input_signed)
        if got != want:
            raise ValueError(f"layer '{a.name}' gives (elements per image, bits, signed) = {got} "
                             f"but layer '{b.name}' takes {want}")


def estimate_cycles(layer: Layer) -> int:
    """Initiation interval of one image in cycles: MW/SIMD * MH/PE per vector for an MVAU,
    one per element for a reorder, the larger of input and output beats for a sliding window, input beats for a pool.
    The throughput of a chain is clock / max over its layers (with FIFOs between them)."""
    if isinstance(layer, MVAULayer):
        return layer.num_vectors * (layer.MW // layer.SIMD) * (layer.MH // layer.PE)
    if isinstance(layer, ReorderLayer):
        return layer.in_elems
    beats_in = layer.in_elems // layer.in_lanes
    if isinstance(layer, SlidingWindowLayer):
        return max(beats_in, layer.out_elems // layer.out_lanes)
    return beats_in


def estimate_latency(layer: Layer) -> int:
    """Cycles from a layer's first input beat to its last output beat of one image, both
    counted, when nothing stalls: the initiation interval plus the pipeline depth of its
    module. Exact (the simulated latency of the layer alone) for an MVAU, a max-pool and a
    reorder; a lower bound for a sliding window, which also waits for rows to fill."""
    if isinstance(layer, MVAULayer):
        depth = TILED_MVAU_PIPELINE_DEPTH if layer.tile_size else MVAU_PIPELINE_DEPTH
        depth += layer.built_pipeline_stages
    elif isinstance(layer, ReorderLayer):
        depth = REORDER_PIPELINE_DEPTH + layer.N
    else:
        depth = {SlidingWindowLayer: SWG_PIPELINE_DEPTH, MaxPoolLayer: POOL_PIPELINE_DEPTH}[type(layer)]
    return estimate_cycles(layer) + depth
