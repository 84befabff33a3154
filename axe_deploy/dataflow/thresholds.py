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


def quant_thresholds(ratio: Fraction, bias: Fraction, levels: int) -> list[int]:
    """Thresholds T_1..T_levels of one channel: out = #{k : acc >= T_k}."""
    if ratio <= 0:
        raise ValueError(f"scale ratio must be positive, got {ratio}")
    out = []
    for k in range(1, levels + 1):
        c = (Fraction(2 * k - 1, 2)) / ratio - bias  # acc + b = (k - ½)/r at the tie
        out.append(math.ceil(c) if k % 2 == 0 else math.floor(c) + 1)
    return out


def layer_thresholds(s_x: float, s_w: np.ndarray, s_a: float, bias: np.ndarray, bits: int) -> np.ndarray:
    """int64 [M, 2^bits − 1] thresholds of a layer with per-channel weight scales ``s_w`` and
    the real-valued ``bias`` that the graph adds to the layer's output (b = bias/(s_x·s_w)
    exactly, so a float bias off the accumulator grid is handled too)."""
    levels = 2**bits - 1
    rows = []
    for sw, b in zip(np.asarray(s_w, dtype=np.float64).ravel(), np.asarray(bias, dtype=np.float64).ravel()):
        acc_scale = Fraction(float(s_x)) * Fraction(float(sw))
        rows.append(quant_thresholds(acc_scale / Fraction(float(s_a)), Fraction(float(b)) / acc_scale, levels))
    return np.array(rows, dtype=np.int64).reshape(len(rows), levels)


def apply_thresholds(acc: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """out[n, m] = number of thresholds[m, :] <= acc[n, m] (the MVAU's activation)."""
    return (acc[:, :, None] >= thresholds[None, :, :]).sum(axis=2)
