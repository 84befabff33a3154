"""Exact integer thresholds for ``Quant(ReLU(r·(acc + b)))``.

A quantized layer computes y = s_x·s_w·(acc + b) per channel (acc the integer dot
product, b the bias on the accumulator's scale) and the next activation quantizer
out = clip(round_half_even(y / s_a), 0, 2^N − 1). With r = s_x·s_w/s_a > 0, out ≥ k
(k = 1 .. 2^N − 1) iff (acc + b)·r > k − ½, or = k − ½ with k even (ties go to even).
So out = #{k : acc ≥ T_k} with integer thresholds T_k, computed here with exact
rationals from the float32 scales, not by float rounding. ReLU needs no threshold of its
own: every k − ½ is positive.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np


def quant_thresholds(ratio: Fraction, bias: Fraction, levels: int, first: int = 1) -> list[int]:
    """Thresholds T_first..T_(first+levels-1) of one channel: out = first − 1 + #{k : acc >= T_k}
    (``first`` = 1 for unsigned outputs; the minimum + 1 for signed ones)."""
    if ratio <= 0:
        raise ValueError(f"scale ratio must be positive, got {ratio}")
    out = []
    for k in range(first, first + levels):
        c = (Fraction(2 * k - 1, 2)) / ratio - bias  # acc + b = (k - ½)/r at the tie
        out.append(math.ceil(c) if k % 2 == 0 else math.floor(c) + 1)
    return out


def layer_thresholds(s_x: float, s_w: np.ndarray, s_a: float, bias: np.ndarray, bits: int,
                     out_range: tuple[int, int] | None = None) -> np.ndarray:
    """int64 [M, levels] thresholds of a layer with per-channel weight scales ``s_w`` and
    the real-valued ``bias`` that the graph adds to the layer's output (b = bias/(s_x·s_w)
    exactly, so a float bias off the accumulator grid is handled too). ``out_range``: the
    activation's integer range [lo, hi] (default unsigned [0, 2^bits − 1]); the output is
    lo + the number of thresholds <= acc."""
    lo, hi = out_range if out_range is not None else (0, 2**bits - 1)
    levels = hi - lo
    rows = []
    for sw, b in zip(np.asarray(s_w, dtype=np.float64).ravel(), np.asarray(bias, dtype=np.float64).ravel()):
        acc_scale = Fraction(float(s_x)) * Fraction(float(sw))
        rows.append(quant_thresholds(acc_scale / Fraction(float(s_a)), Fraction(float(b)) / acc_scale, levels, lo + 1))
    return np.array(rows, dtype=np.int64).reshape(len(rows), levels)


def apply_thresholds(acc: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """out[n, m] = number of thresholds[m, :] <= acc[n, m] (the MVAU's activation)."""
    return (acc[:, :, None] >= thresholds[None, :, :]).sum(axis=2)
