"""Accumulator widths: the one place where they are computed.

For a layer with integer weights ``q`` (M rows = output channels, K inputs) and
integer inputs in ``[x_min, x_max]``, the exact worst case of each row's dot product is

    hi = sum_{q>0} q * x_max + sum_{q<0} q * x_min
    lo = sum_{q>0} q * x_min + sum_{q<0} q * x_max

and a P-bit register holds it iff the range fits the register's range. With a tile
size T > 0 (multi-stage accumulation) every consecutive chunk of T inputs along K has
its own inner accumulator; tile sums are added in an outer accumulator, whose exact
range is the sum of the tile ranges (the worst-case input is chosen per element, so it
is also the whole row's range).

Everything else (annotator, validator, lowering, RTL) reads the widths from the graph
annotation written from these results; nothing recomputes them another way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


def check_bits(name: str, bits, lo: int, hi: int) -> int:
    """``bits`` as an int if it is an integer in [lo, hi], else ValueError naming ``name``."""
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {bits!r}")
    if not lo <= bits <= hi:
        raise ValueError(f"{name}={bits} is out of range: use {lo}..{hi}")
    return int(bits)


def input_bounds(bits: int, signed: bool, narrow: bool = False) -> tuple[int, int]:
    """Integer range of an N-bit input: [0, 2^N - 1] or [-2^(N-1) (+1 if narrow), 2^(N-1) - 1]."""
    bits = check_bits("input bit width", bits, 1, 64)
    if signed:
        return -(2 ** (bits - 1)) + int(narrow), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


# int64 holds every partial sum below this bound exactly; above it the sums use Python ints.
_INT64_SAFE = 2**62


def _as_int(q) -> np.ndarray:
    """``q`` [M, K] as exact integers: int64, or Python ints (dtype object) when an entry
    is too large for int64. NaN, infinite and non-integer entries are errors."""
    q = np.asarray(q)
    if q.ndim != 2:
        raise ValueError(f"integer weights must be [M, K], got shape {q.shape}")
    if q.dtype == object:
        if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in q.flat):
            raise ValueError("weights passed to the accumulator analysis are not integers")
        return np.vectorize(int, otypes=[object])(q) if q.size else q
    if q.dtype.kind == "f":
        if not np.all(np.isfinite(q)):
            raise ValueError(f"weights passed to the accumulator analysis have {int((~np.isfinite(q)).sum())} "
                             f"NaN or infinite entries")
        if not np.array_equal(np.rint(q), q):
            raise ValueError("weights passed to the accumulator analysis are not integers")
    elif q.dtype.kind not in "iub":
        raise ValueError(f"weights passed to the accumulator analysis have dtype {q.dtype}, not integers")
    if q.size == 0 or np.abs(q.astype(np.float64)).max() < _INT64_SAFE:
        return q.astype(np.int64)
    return np.vectorize(int, otypes=[object])(q)


def _exact_dtype(q: np.ndarray, x_min: int, x_max: int) -> np.ndarray:
    """``q`` in a dtype in which every dot product with inputs in [x_min, x_max] is exact:
    int64 when max|q| · K · max|x| stays below 2^62, Python ints otherwise."""
    if q.dtype == object or q.size == 0:
        return q
    bound = int(np.abs(q).max()) * q.shape[1] * max(abs(int(x_min)), abs(int(x_max)))
    return q if bound < _INT64_SAFE else q.astype(object)


def row_ranges(q, x_min: int, x_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact worst-case (lo, hi) of each row's dot product, shape [M]: int64 arrays, or
    Python ints (dtype object) where int64 could wrap."""
    q = _exact_dtype(_as_int(q), x_min, x_max)
    x_min, x_max = int(x_min), int(x_max)
    zero = q.dtype.type(0) if q.dtype != object else 0
    pos = np.where(q > 0, q, zero).sum(axis=1)
    neg = np.where(q < 0, q, zero).sum(axis=1)
    hi = pos * x_max + neg * x_min
    lo = pos * x_min + neg * x_max
    return lo, hi


def split_tiles(a: np.ndarray, tile_size: int) -> np.ndarray:
    """[rows, K] -> [rows, ceil(K/T), T]: consecutive tiles of T elements, the last one
    zero-padded (a zero adds nothing to a dot product)."""
    if tile_size <= 0:
        raise ValueError(f"tile size must be > 0, got {tile_size}")
    rows, K = a.shape
    n_tiles = -(-K // tile_size)
    padded = np.zeros((rows, n_tiles * tile_size), dtype=a.dtype)
    padded[:, :K] = a
    return padded.reshape(rows, n_tiles, tile_size)


def tile_ranges(q, x_min: int, x_max: int, tile_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact (lo, hi) per row and tile, shape [M, ceil(K/T)]; the last tile may be shorter."""
    tiles = split_tiles(_as_int(q), tile_size)
    M, n_tiles, _ = tiles.shape
    lo, hi = row_ranges(tiles.reshape(M * n_tiles, tile_size), x_min, x_max)
    return lo.reshape(M, n_tiles), hi.reshape(M, n_tiles)


def worst_case_inputs(q, x_min: int, x_max: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-row inputs [M, K] that reach ``hi`` and ``lo`` exactly (x_max where q > 0, else x_min)."""
    q = _as_int(q)
    x_for_hi = np.where(q > 0, x_max, x_min).astype(np.int64)
    x_for_lo = np.where(q > 0, x_min, x_max).astype(np.int64)
    return x_for_hi, x_for_lo


def min_bits(lo: int, hi: int, signed: bool = True) -> int:
    """Smallest register width that holds every integer of [lo, hi]."""
    lo, hi = int(lo), int(hi)
    if lo > hi:
        raise ValueError(f"empty range [{lo}, {hi}]")
    if not signed:
        if lo < 0:
            raise ValueError(f"range [{lo}, {hi}] has negatives: it needs a signed register")
        return max(1, hi.bit_length())
    # Signed P bits hold [-2^(P-1), 2^(P-1) - 1]; bit_length of v >= 0 is the P-1 it needs,
    # of ~lo = -lo - 1 (>= 0 for lo < 0) likewise.
    need_hi = hi.bit_length() if hi >= 0 else 0
    need_lo = (~lo).bit_length() if lo < 0 else 0
    return max(need_hi, need_lo) + 1


def fits(lo: int, hi: int, bits: int, signed: bool = True) -> bool:
    """Whether [lo, hi] fits a ``bits``-wide register."""
    if signed:
        return -(2 ** (bits - 1)) <= lo and hi <= 2 ** (bits - 1) - 1
    return 0 <= lo and hi <= 2**bits - 1


def datatype_bound_bits(K: int, input_bits: int, weight_bits: int, input_signed: bool) -> int:
    """Width a flow must assume from the data types alone (A2Q, Colbert et al.):

    P >= alpha + log2(1 + 2^-alpha) + 1, alpha = log2(K) + N + b_w - 1 - [inputs signed].
    """
    alpha = math.log2(K) + input_bits + weight_bits - 1 - int(input_signed)
    return math.ceil(alpha + math.log2(1 + 2.0**-alpha) + 1 - 1e-12)


def datatype_name(bits: int, signed: bool = True) -> str:
    """QONNX DataType name of an integer register."""
    return f"{'INT' if signed else 'UINT'}{bits}"


def check_levels(q, levels: int, name: str = "layer") -> None:
    """RuntimeError naming ``name`` unless every |q| <= ``levels`` (exact, in integers)."""
    q = _as_int(q)
    worst = int(np.abs(q).max()) if q.size else 0
    if worst > levels:
        raise RuntimeError(f"{name}: a weight of magnitude {worst} is outside the alphabet "
                           f"[-{levels}, {levels}]; the quantizer failed, please report it")


def check_budget(acc: AccumulatorInfo, bits: int, name: str = "layer") -> None:
    """RuntimeError naming ``name`` unless every row's (every tile's) exact worst-case dot
    product, :func:`analyze`'s ``acc``, fits a signed ``bits``-wide register."""
    if not fits(acc.lo, acc.hi, bits):
        raise RuntimeError(f"{name}: exact accumulator range [{acc.lo}, {acc.hi}] needs {min_bits(acc.lo, acc.hi)} "
                           f"bits, more than the {bits}-bit budget that AXE enforces; please report it")


@dataclass(frozen=True)
class AccumulatorInfo:
    """What a layer's accumulator must hold, for the annotation and the report.

    ``lo``/``hi`` are the layer's (inner, per-tile when ``tile_size`` > 0) accumulator
    range over all rows; ``outer_lo``/``outer_hi`` the whole-row range, which is what the
    outer accumulator holds (equal to ``lo``/``hi`` for one stage).
    """

    M: int
    K: int
    input_bits: int
    input_signed: bool
    weight_bits: int
    tile_size: int
    lo: int
    hi: int
    outer_lo: int
    outer_hi: int
    signed: bool
    exact_bits: int
    outer_bits: int
    datatype_bound_bits: int

    @property
    def datatype(self) -> str:
        return datatype_name(self.exact_bits, self.signed)

    @property
    def outer_datatype(self) -> str:
        return datatype_name(self.outer_bits, self.signed)


def analyze(q, *, input_bits: int, input_signed: bool, weight_bits: int,
            tile_size: int = 0, input_narrow: bool = False) -> AccumulatorInfo:
    """Exact accumulator ranges and minimal widths of one layer.

    The register is unsigned only when no worst case is negative (non-negative weights
    on unsigned inputs); otherwise signed. ``tile_size`` 0 means one stage.
    """
    q = _as_int(q)
    M, K = q.shape
    x_min, x_max = input_bounds(input_bits, input_signed, input_narrow)
    row_lo, row_hi = row_ranges(q, x_min, x_max)
    if tile_size and tile_size < K:
        t_lo, t_hi = tile_ranges(q, x_min, x_max, tile_size)
        lo, hi = int(t_lo.min()), int(t_hi.max())
    else:
        tile_size = 0
        lo, hi = int(row_lo.min()), int(row_hi.max())
    outer_lo, outer_hi = int(row_lo.min()), int(row_hi.max())
    signed = outer_lo < 0
    return AccumulatorInfo(
        M=M, K=K, input_bits=input_bits, input_signed=input_signed, weight_bits=weight_bits,
        tile_size=tile_size, lo=lo, hi=hi, outer_lo=outer_lo, outer_hi=outer_hi,
        signed=signed, exact_bits=min_bits(lo, hi, signed),
        outer_bits=min_bits(outer_lo, outer_hi, signed),
        datatype_bound_bits=datatype_bound_bits(K, input_bits, weight_bits, input_signed),
    )
