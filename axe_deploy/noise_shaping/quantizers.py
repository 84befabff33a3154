"""Scalar and noise-shaping quantizers of vectors y in [-1, 1]^m (last axis), batched.

Alphabet. A b-bit quantizer uses the 2K = 2^b midrise levels spaced delta = 2/(2K - 1)
apart and spanning [-1, 1]: level = a / (2K - 1) for an odd integer code
a in {-(2K - 1), ..., -1, 1, ..., 2K - 1}. All quantizers return these integer codes.

Noise shaping. An order-r scheme with causal filter h (h_0 = 0, 1 - h(z) = (1 - z)^r g(z))
runs, for j = 1..m,

    w_j = (h * v)_j + y_j,    q_j = Q(w_j),    v_j = w_j - q_j,

so that y - q = D^r u with u = g * v (D the first difference). If |y_j| <= mu with
mu = (2K - ||h||_1) / (2K - 1), then |w_j| <= K delta, |v_j| <= delta/2 and
||u||_inf <= ||g||_1 delta/2 for every input: the scheme is stable. The quantizers below
take y in [-1, 1] and quantize mu * y; decoders divide by mu (`input_scale`).
The greedy rule (g = 1, h = 1 - (1 - z)^r) needs 2K > 2^r - 1; the 1-bit stable filters
of orders 2 and 3 trade a smaller ||h||_1 for a longer g. `sigma_delta_rule` picks, among
the stable rules, the one with the smallest bound ||u||_inf / mu on the decoded error.

Distributed noise shaping (beta): in blocks of length lambda, with the state reset at the
start of each block, w_j = beta u_{j-1} + y_j, q_j = Q(w_j), u_j = w_j - q_j; stable for
|y| <= mu = (2K - beta) / (2K - 1), so inputs are scaled by that factor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.polynomial import polynomial as P
from scipy.signal import lfilter

MAX_BITS = 8
MAX_ORDER = 3

# 1-bit stable filters h as {lag: coefficient}: 1 - h(z) has a zero of order r at z = 1
# and ||h||_1 < 2 (4/3 and 1.46), so that mu = 2 - ||h||_1 > 0 with a single bit.
_STABLE_FILTERS = {
    2: {1: 7 / 6, 7: -1 / 6},
    3: {1: 175 / 144, 7: -25 / 108, 25: 7 / 432},
}


def check_bits(bits) -> int:
    if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be an integer in 1..{MAX_BITS}, got {bits!r}")
    return int(bits)


def check_order(order, allowed=range(1, MAX_ORDER + 1)) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order not in allowed:
        raise ValueError(f"order must be one of {list(allowed)}, got {order!r}")
    return int(order)


def check_unit_range(y, name: str = "y") -> np.ndarray:
    """y as a float64 array with at least one axis and every entry in [-1, 1]."""
    y = np.asarray(y, dtype=np.float64)
    if y.ndim == 0:
        raise ValueError(f"{name} must have at least one axis, got a scalar")
    if not np.all(np.abs(y) <= 1.0):  # also rejects NaN
        worst = "NaN" if np.isnan(y).any() else f"max |{name}| = {np.abs(y).max()}"
        raise ValueError(f"{name} must lie in [-1, 1] (scale it first); found {worst}")
    return y


def code_dtype(bits: int):
    return np.int8 if bits <= 7 else np.int16


def levels(bits: int) -> np.ndarray:
    """The 2^b levels a / (2^b - 1), a odd, in increasing order."""
    n = 2 ** check_bits(bits) - 1
    return np.arange(-n, n + 1, 2) / n


def _nearest_index(w: np.ndarray, bits: int) -> np.ndarray:
    # index i of level -1 + i*delta nearest to w, ties upwards, clipped to the alphabet
    n = 2**bits - 1
    return np.clip(np.floor((w + 1.0) * (n / 2.0) + 0.5), 0, n)


def round_quantize(y, bits: int = 1) -> np.ndarray:
    """Memoryless round-to-nearest level; returns odd integer codes (sign(y) for 1 bit)."""
    bits = check_bits(bits)
    y = check_unit_range(y)
    return (2 * _nearest_index(y, bits) - (2**bits - 1)).astype(code_dtype(bits))


def stochastic_quantize(y, bits: int = 1, rng=None) -> np.ndarray:
    """Unbiased stochastic rounding to the two neighbouring levels: E[level(code)] = y."""
    bits = check_bits(bits)
    y = check_unit_range(y)
    rng = np.random.default_rng(rng)
    n = 2**bits - 1
    t = (y + 1.0) * (n / 2.0)
    low = np.clip(np.floor(t), 0, n - 1)
    i = low + (rng.random(y.shape) < t - low)
    return (2 * i - n).astype(code_dtype(bits))


@dataclass(frozen=True)
class SigmaDeltaRule:
    """One stable order-r rule: taps of h, FIR g with 1 - h = (1 - z)^r g, radius mu."""

    order: int
    bits: int
    kind: str  # "greedy" or "stable"
    taps: dict
    g: np.ndarray
    mu: float

    @property
    def state_bound(self) -> float:
        """Guaranteed bound on ||u||_inf for every input in [-1, 1]: ||g||_1 delta / 2."""
        return float(np.abs(self.g).sum()) / (2**self.bits - 1)


def _rule(order: int, bits: int, kind: str, taps: dict) -> SigmaDeltaRule | None:
    h = np.zeros(max(taps) + 1)
    for lag, c in taps.items():
        h[lag] = c
    one_minus_h = -h
    one_minus_h[0] += 1.0
    g, rem = P.polydiv(one_minus_h, P.polypow([1.0, -1.0], order))
    assert np.abs(rem).max() < 1e-9, "filter does not satisfy 1 - h = (1 - z)^r g"
    two_k = 2**bits
    mu = (two_k - np.abs(h).sum()) / (two_k - 1)
    return SigmaDeltaRule(order, bits, kind, dict(taps), g, float(mu)) if mu > 0 else None


def sigma_delta_rule(order: int = 1, bits: int = 1) -> SigmaDeltaRule:
    """The stable order-r, b-bit rule with the smallest bound ||u||_inf / mu."""
    order, bits = check_order(order), check_bits(bits)
    d_r = P.polypow([1.0, -1.0], order)
    greedy = {k: -float(d_r[k]) for k in range(1, order + 1)}
    candidates = [_rule(order, bits, "greedy", greedy)]
    if order in _STABLE_FILTERS:
        candidates.append(_rule(order, bits, "stable", _STABLE_FILTERS[order]))
    candidates = [c for c in candidates if c is not None]
    return min(candidates, key=lambda c: c.state_bound / c.mu)


def sigma_delta(y, order: int = 1, bits: int = 1, return_state: bool = False):
    """Order-r Sigma-Delta codes of mu*y along the last axis (see module doc).

    y: array (..., m) in [-1, 1]. Returns int codes a (same shape), level = a / (2^b - 1),
    and with return_state the state u (float, same shape) with mu*y - level = D^r u,
    ||u||_inf <= rule.state_bound. Sequential in m, vectorised over the leading axes.
    """
    rule = sigma_delta_rule(order, bits)
    y = check_unit_range(y)
    shape = y.shape
    ys = np.ascontiguousarray(np.moveaxis(rule.mu * y.reshape(-1, shape[-1]), -1, 0))
    m, lag = shape[-1], max(rule.taps)
    n = 2**bits - 1
    v = np.zeros((lag + m, ys.shape[1]))
    codes = np.empty(ys.shape, dtype=code_dtype(bits))
    # v is the filtered state (|v| <= delta/2); u = g * v is recovered after the loop
    (t0, c0), *taps = rule.taps.items()
    for j in range(m):
        w = ys[j] + c0 * v[lag + j - t0]
        for t, c in taps:
            w += c * v[lag + j - t]
        a = np.where(w >= 0.0, 1.0, -1.0) if n == 1 else 2.0 * _nearest_index(w, bits) - n
        codes[j] = a
        v[lag + j] = w - a if n == 1 else w - a / n
    codes = np.moveaxis(codes, 0, -1).reshape(shape)
    if not return_state:
        return codes
    u = lfilter(rule.g, [1.0], v[lag:], axis=0)
    return codes, np.moveaxis(u, 0, -1).reshape(shape)


def check_beta(beta, bits: int) -> float:
    two_k = 2**bits
    if not isinstance(beta, (int, float, np.floating, np.integer)) or isinstance(beta, bool) or not 1 < beta < two_k:
        raise ValueError(f"beta must be a number in the open interval (1, 2^bits) = (1, {two_k}), got {beta!r}")
    return float(beta)


def beta_mu(beta: float, bits: int) -> float:
    """Stability radius (2K - beta) / (2K - 1) of the beta quantizer."""
    return (2**bits - beta) / (2**bits - 1)


def beta_quantize(y, beta: float, block: int, bits: int = 1, return_state: bool = False):
    """Distributed noise-shaping codes of mu*y, blocks of length lambda along the last axis.

    y: array (..., m) in [-1, 1] with m a multiple of block. Returns int codes and, with
    return_state, u with mu*y_j - level_j = u_j - beta u_{j-1} inside each block (u = 0
    before a block), ||u||_inf <= 1/(2^b - 1). Sequential in lambda only.
    """
    bits = check_bits(bits)
    beta = check_beta(beta, bits)
    y = check_unit_range(y)
    m = y.shape[-1]
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1 or m % block:
        raise ValueError(f"block must be a positive integer dividing the length m = {m}, got {block!r}")
    n = 2**bits - 1
    # position in the block first, so that each step reads and writes contiguous rows
    yb = np.ascontiguousarray(np.moveaxis(y.reshape(-1, block), -1, 0)) * beta_mu(beta, bits)
    codes = np.empty(yb.shape, dtype=code_dtype(bits))
    u = np.empty(yb.shape)
    prev = np.zeros(yb.shape[1])
    for j in range(block):
        w = beta * prev + yb[j]
        a = 2.0 * _nearest_index(w, bits) - n
        codes[j] = a
        prev = u[j] = w - a / n
    codes = np.moveaxis(codes, 0, -1).reshape(y.shape)
    return (codes, np.moveaxis(u, 0, -1).reshape(y.shape)) if return_state else codes
