"""Decoders V = c (I_p (x) v) / ||v||_2 and the bit accounting of the condensed codes.

A vector of m codes is cut into p = m / lambda blocks; each block is condensed to one
number <v, block>. For order-r Sigma-Delta, v holds the coefficients of
(1 + z + ... + z^(lt - 1))^r with lambda = r (lt - 1) + 1: then v^T D^r u involves only
r + 1 entries of the state u, so the quantization error of a block is at most
(2^r - 1) ||u||_inf / ||v||_2 after normalisation. For the beta quantizer
v = (beta^-1, ..., beta^-lambda) telescopes the block error to beta^-lambda |u_lambda|.

Normalisations c: sqrt(2/p) makes <V z(x), V z(y)> an unbiased estimate of the kernel for
random Fourier features z; sqrt(pi/2)/p makes ||V A x||_1 an unbiased estimate of ||x||_2
for a Gaussian A (E|g| = sqrt(2/pi) for g ~ N(0, 1)).
"""

from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import polynomial as P

from .quantizers import check_beta, check_bits, check_order


def _check_block(block) -> int:
    if isinstance(block, bool) or not isinstance(block, (int, np.integer)) or block < 1:
        raise ValueError(f"block must be a positive integer, got {block!r}")
    return int(block)


def valid_blocks(m: int, order: int = 1) -> list[int]:
    """Block lengths lambda > 1 that divide m and have the form order * (t - 1) + 1."""
    return [lam for lam in range(2, m + 1) if m % lam == 0 and (lam - 1) % order == 0]


def check_block(block, m: int, order: int = 1) -> int:
    """block as an int dividing m, of the form order * (t - 1) + 1 (any lambda >= 1 for order 1)."""
    block = _check_block(block)
    if m % block or (block - 1) % order:
        hint = valid_blocks(m, order)[:6]
        fix = f"valid: {hint}..." if hint else f"none > 1: choose m as a multiple of {order + 1} or {2 * order + 1}"
        raise ValueError(f"block must divide m = {m} and be r*(t-1)+1 for order r = {order}; got {block} ({fix})")
    return block


def choose_block(m: int, order: int, target: float) -> int:
    """The valid block length closest to target (ties to the smaller one)."""
    valid = valid_blocks(m, order)
    if not valid:
        raise ValueError(
            f"m = {m} has no block length lambda > 1 of the form r*(t-1)+1 for order r = {order} dividing it: "
            f"choose m as a multiple of {order + 1} or {2 * order + 1}, or pass block"
        )
    return min(valid, key=lambda lam: (abs(lam - target), lam))


def sigma_delta_vector(order: int, block: int) -> np.ndarray:
    """Integer v of length lambda = block: coefficients of (1 + ... + z^(lt-1))^order."""
    order, block = check_order(order), _check_block(block)
    if (block - 1) % order:
        raise ValueError(
            f"block must be r*(t-1)+1 for order r = {order} (e.g. {order + 1}, {2 * order + 1}, "
            f"{3 * order + 1}), got {block}"
        )
    lt = (block - 1) // order + 1
    return np.rint(P.polypow(np.ones(lt), order)).astype(np.int64)


def beta_vector(beta: float, block: int, bits: int = 1) -> np.ndarray:
    """v = (beta^-1, ..., beta^-lambda)."""
    beta, block = check_beta(beta, check_bits(bits)), _check_block(block)
    return beta ** -np.arange(1.0, block + 1)


def condense(codes, v) -> np.ndarray:
    """(I_p (x) v) applied along the last axis: (..., m) -> (..., m / len(v))."""
    codes = np.asarray(codes)
    lam, m = len(v), codes.shape[-1]
    if m % lam:
        raise ValueError(f"the code length m = {m} must be a multiple of the block length {lam}")
    blocks = codes.reshape(*codes.shape[:-1], m // lam, lam)
    if np.issubdtype(np.asarray(v).dtype, np.integer) and np.issubdtype(codes.dtype, np.integer):
        return blocks.astype(np.int64) @ v
    return blocks @ np.asarray(v, dtype=np.float64)


def decode(values, v, c: float) -> np.ndarray:
    """V values with V = c (I_p (x) v) / ||v||_2."""
    return condense(values, v) * (c / np.linalg.norm(np.asarray(v, dtype=np.float64)))


def decoder_matrix(v, p: int, c: float) -> np.ndarray:
    """V as a dense p x (p lambda) matrix (for checks and small problems)."""
    v = np.asarray(v, dtype=np.float64)
    return c * np.kron(np.eye(p), v) / np.linalg.norm(v)


def block_values(v, bits: int) -> int:
    """Number of distinct values of <v, a> over codes a in the b-bit alphabet.

    Integer v: exact, by a reachable-sums sweep over [-n||v||_1, n||v||_1], n = 2^b - 1.
    Other v (beta): (2^b)^lambda, the generic count (distinct for transcendental beta).
    """
    n = 2 ** check_bits(bits) - 1
    v = np.asarray(v)
    if not np.issubdtype(v.dtype, np.integer):
        return (n + 1) ** len(v)
    v = np.abs(v)
    reach = np.zeros(n * int(v.sum()) + 1, dtype=bool)
    reach[0] = True  # sums of v_i k_i with k_i in 0..n; <v, a> = 2 sum - n ||v||_1
    for vi in v:
        new = reach.copy()
        for k in range(1, n + 1):
            new[k * vi :] |= reach[: len(reach) - k * vi]
        reach = new
    return int(reach.sum())


def bits_per_vector(m: int, bits: int, v=None) -> int:
    """Storage of one condensed vector: ceil(p log2(values per block)); m*bits if v is None."""
    bits = check_bits(bits)
    if v is None:
        return m * bits
    p = m // len(v)
    return math.ceil(p * math.log2(block_values(v, bits)) - 1e-9)
