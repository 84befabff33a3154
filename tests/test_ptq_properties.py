"""The accumulator guarantee as a property: whatever the layer, data, bits, P and tiles,
every algorithm returns weights whose exact worst case fits the signed P-bit register."""

import itertools

import numpy as np
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axe_deploy.core import accumulator
from axe_deploy.ptq import ALGORITHMS, quantize_layer, smallest_feasible_bits

torch.set_num_threads(1)
SETTINGS = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def input_range(bits, signed):
    """[x_min, x_max] of the integer inputs, written out here rather than taken from the code under test."""
    return (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)


def exact_range(q, x_min, x_max, T):
    """(lowest, highest) worst-case partial sum over all rows and tiles of T inputs, in Python
    ints (no int64 that could wrap): independent of axe_deploy.core.accumulator."""
    lows, highs = [], []
    for row in q.tolist():
        for t0 in range(0, len(row), T):
            tile = [int(w) for w in row[t0:t0 + T]]
            highs.append(sum(w * (x_max if w > 0 else x_min) for w in tile))
            lows.append(sum(w * (x_min if w > 0 else x_max) for w in tile))
    return min(lows), max(highs)


def register_bits(lo, hi, signed):
    """Smallest register width that holds [lo, hi], by counting up."""
    bits = 1
    while not ((-(2 ** (bits - 1)) <= lo and hi <= 2 ** (bits - 1) - 1) if signed else (0 <= lo and hi <= 2**bits - 1)):
        bits += 1
    return bits


def weights(dist, M, K, rng):
    if dist == "gaussian":
        return rng.standard_normal((M, K))
    if dist == "heavy":
        return rng.standard_t(2, (M, K))
    if dist == "sparse":
        return rng.standard_normal((M, K)) * (rng.random((M, K)) < 0.1)
    return np.abs(rng.standard_normal((M, K)))  # all positive


@st.composite
def cases(draw, max_k=300, max_input_bits=8):
    K = draw(st.integers(1, max_k) if max_k <= 8 else st.one_of(st.integers(1, 8), st.integers(9, max_k)))
    tile = draw(st.one_of(st.none(), st.integers(1, K)))
    input_bits = draw(st.integers(1, max_input_bits))
    signed = draw(st.booleans())
    weight_bits = draw(st.integers(2, 8))
    generous = accumulator.datatype_bound_bits(min(K, tile or K), input_bits, weight_bits, signed) + 1
    P = draw(st.integers(smallest_feasible_bits(input_bits, signed), generous))
    algorithm = draw(st.sampled_from(ALGORITHMS))
    options = {}
    if algorithm != "rtn":
        options = dict(rescale=draw(st.booleans()), centre=draw(st.booleans()))
    if algorithm in ("gpfq", "optq"):
        options.update(act_order=draw(st.booleans()), passes=draw(st.integers(0, 2)),
                       soft_scale=draw(st.sampled_from([0.0, 1.0, 1.25, 3.0])))
    elif algorithm == "spfq":
        options.update(order=draw(st.integers(1, 3)))
    return dict(K=K, M=draw(st.integers(1, 4)), tile=tile, input_bits=input_bits, signed=signed,
                weight_bits=weight_bits, P=P, algorithm=algorithm, options=options,
                dist=draw(st.sampled_from(["gaussian", "heavy", "sparse", "positive"])),
                clip=draw(st.sampled_from([0.3, 1.0, 1.5])), seed=draw(st.integers(0, 2**16)))


def run(c, n=48):
    rng = np.random.default_rng(c["seed"])
    W = weights(c["dist"], c["M"], c["K"], rng)
    L = 2 ** (c["weight_bits"] - 1) - 1
    s = np.maximum(np.abs(W).max(axis=1), 1e-3) * c["clip"] / L  # clip < 1 saturates the alphabet
    lo, hi = input_range(c["input_bits"], c["signed"])
    X = rng.standard_normal((n, c["K"])) * (hi - lo) / 4 + (0 if c["signed"] else (hi - lo) / 3)
    Xq = np.clip(np.round(X), lo, hi)
    q, info = quantize_layer(W, s, X, Xq, weight_bits=c["weight_bits"], input_bits=c["input_bits"],
                             input_signed=c["signed"], algorithm=c["algorithm"], accumulator_bits=c["P"],
                             tile_size=c["tile"], seed=c["seed"], **c["options"])
    q = q.numpy()
    assert q.shape == W.shape and np.abs(q).max() <= L
    assert info.scale.shape == (c["M"],) and bool(torch.all(torch.isfinite(info.scale) & (info.scale > 0)))
    return q, info, lo, hi


@SETTINGS
@given(cases())
def test_every_tile_fits_the_register(c):
    q, info, lo, hi = run(c)
    t_lo, t_hi = exact_range(q, lo, hi, c["tile"] or c["K"])
    assert -(2 ** (c["P"] - 1)) <= t_lo and t_hi <= 2 ** (c["P"] - 1) - 1, (t_lo, t_hi)
    assert info.exact_bits <= c["P"] and np.all(info.budget_use <= 1)
    row_lo, row_hi = exact_range(q, lo, hi, c["K"])
    assert info.outer_bits == register_bits(row_lo, row_hi, info.accumulator.signed)
    assert info.accumulator.signed == (row_lo < 0)


@settings(max_examples=150, deadline=None)
@given(cases(max_k=4, max_input_bits=3))
def test_brute_force_over_all_inputs(c):
    q, _, lo, hi = run(c)
    K, T = c["K"], c["tile"] or c["K"]
    inputs = np.array(list(itertools.product(range(lo, hi + 1), repeat=K)))  # every input vector
    for t0 in range(0, K, T):
        sums = inputs[:, t0:t0 + T] @ q[:, t0:t0 + T].T
        assert sums.min() >= -(2 ** (c["P"] - 1)) and sums.max() <= 2 ** (c["P"] - 1) - 1
