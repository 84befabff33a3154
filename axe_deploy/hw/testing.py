"""Random layer specs for tests and benchmarks of the hardware backend.

``random_mvau`` draws integer weights and gives the layer its exact accumulator width
(from ``axe_deploy.core.accumulator``, as the annotation would); its thresholds are drawn over
the worst-case accumulator range widened on both sides, so some are always or never
reached, and some lie outside the register's range.
"""

from __future__ import annotations

import numpy as np

from ..core.accumulator import analyze
from .spec import MVAULayer


def random_mvau(rng: np.random.Generator, name: str, MW: int, MH: int, *, SIMD: int = 1,
                PE: int = 1, input_bits: int = 4, input_signed: bool = False,
                weight_bits: int = 4, n_thresholds: int | None = 3, nonnegative: bool = False,
                acc_bits: int | None = None, num_vectors: int = 1, tile_size: int = 0,
                outer_bits: int | None = None) -> MVAULayer:
    """A random MVAU; ``n_thresholds=None`` for a raw-accumulator (last) layer,
    ``nonnegative`` weights (with unsigned inputs: an unsigned accumulator), ``acc_bits``
    to override the exact width (e.g. deliberately too narrow); ``tile_size`` > 0 for
    multi-stage accumulation (``acc_bits`` the inner, ``outer_bits`` the outer width)."""
    lo_w = 0 if nonnegative else -(2 ** (weight_bits - 1))
    w = rng.integers(lo_w, 2 ** (weight_bits - 1), size=(MH, MW))
    info = analyze(w, input_bits=input_bits, input_signed=input_signed, weight_bits=weight_bits,
                   tile_size=tile_size)
    thr = None
    if n_thresholds is not None:
        P = info.outer_bits  # the register the thresholds see
        reg_lo, reg_hi = (-(2 ** (P - 1)), 2 ** (P - 1) - 1) if info.signed else (0, 2**P - 1)
        # past the worst case and past the register's range on both sides
        lo, hi = min(info.outer_lo, reg_lo) - 3, max(info.outer_hi, reg_hi) + 3
        thr = np.sort(rng.integers(lo, hi + 1, size=(MH, n_thresholds)), axis=1)
    return MVAULayer(name, MW, MH, SIMD, PE, input_bits, input_signed, weight_bits,
                     acc_bits if acc_bits is not None else info.exact_bits, info.signed, w, thr,
                     num_vectors=num_vectors, tile_size=info.tile_size,
                     outer_bits=(outer_bits or info.outer_bits) if info.tile_size else 0)

