"""The accumulator module against brute force over every input vector of small layers."""

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from axe_deploy.core import accumulator


@st.composite
def small_layers(draw):
    K = draw(st.integers(1, 4))
    M = draw(st.integers(1, 3))
    w_bits = draw(st.integers(2, 5))
    in_bits = draw(st.integers(1, 3))
    signed = draw(st.booleans())
    wmax = 2 ** (w_bits - 1) - 1
    q = np.array(draw(st.lists(st.integers(-wmax, wmax), min_size=M * K, max_size=M * K))).reshape(M, K)
    return q, w_bits, in_bits, signed


def brute_force(q, x_min, x_max):
    xs = np.array(list(itertools.product(range(x_min, x_max + 1), repeat=q.shape[1])))
    acc = xs @ q.T  # [all inputs, M]
    return acc.min(axis=0), acc.max(axis=0)


@settings(max_examples=150, deadline=None)
@given(small_layers())
def test_row_ranges_equal_brute_force(layer):
    q, _, in_bits, signed = layer
    x_min, x_max = accumulator.input_bounds(in_bits, signed)
    lo, hi = accumulator.row_ranges(q, x_min, x_max)
    b_lo, b_hi = brute_force(q, x_min, x_max)
    assert np.array_equal(lo, b_lo) and np.array_equal(hi, b_hi)
    x_hi, x_lo = accumulator.worst_case_inputs(q, x_min, x_max)
    assert np.array_equal((x_hi * q).sum(1), hi) and np.array_equal((x_lo * q).sum(1), lo)


@settings(max_examples=150, deadline=None)
@given(small_layers(), st.integers(1, 4))
def test_tile_ranges_equal_brute_force_per_tile(layer, T):
    q, w_bits, in_bits, signed = layer
    x_min, x_max = accumulator.input_bounds(in_bits, signed)
    t_lo, t_hi = accumulator.tile_ranges(q, x_min, x_max, T)
    for t, start in enumerate(range(0, q.shape[1], T)):
        b_lo, b_hi = brute_force(q[:, start:start + T], x_min, x_max)
        assert np.array_equal(t_lo[:, t], b_lo) and np.array_equal(t_hi[:, t], b_hi)
    info = accumulator.analyze(q, input_bits=in_bits, input_signed=signed, weight_bits=w_bits, tile_size=T)
    b_lo, b_hi = brute_force(q, x_min, x_max)
    # the outer accumulator holds the whole row: the sum of the tile ranges
    assert (info.outer_lo, info.outer_hi) == (int(b_lo.min()), int(b_hi.max()))


@settings(max_examples=300, deadline=None)
@given(st.integers(-(2**40), 2**40), st.integers(0, 2**40))
def test_min_bits_is_minimal(lo, width):
    hi = lo + width
    P = accumulator.min_bits(lo, hi)
    assert accumulator.fits(lo, hi, P)
    assert P == 1 or not accumulator.fits(lo, hi, P - 1)
    if lo >= 0:
        U = accumulator.min_bits(lo, hi, signed=False)
        assert accumulator.fits(lo, hi, U, signed=False) and (U == 1 or not accumulator.fits(lo, hi, U - 1, signed=False))


@settings(max_examples=150, deadline=None)
@given(small_layers())
def test_exact_width_never_exceeds_datatype_bound(layer):
    q, w_bits, in_bits, signed = layer
    info = accumulator.analyze(q, input_bits=in_bits, input_signed=signed, weight_bits=w_bits)
    assert info.exact_bits <= info.datatype_bound_bits


def test_datatype_bound_is_tight_for_the_worst_weights():
    # K all-max weights on unsigned inputs reach K·(2^(b-1)-1)·(2^N-1); the bound must hold it.
    K, N, b = 64, 8, 4
    q = np.full((1, K), 2 ** (b - 1) - 1)
    info = accumulator.analyze(q, input_bits=N, input_signed=False, weight_bits=b)
    assert info.hi == K * 7 * 255 and info.lo == 0
    assert info.datatype_bound_bits == 19
    assert info.exact_bits == 17 and not info.signed and info.datatype == "UINT17"


def test_known_values():
    assert accumulator.min_bits(-128, 127) == 8
    assert accumulator.min_bits(-129, 0) == 9
    assert accumulator.min_bits(0, 128) == 9
    assert accumulator.min_bits(0, 255, signed=False) == 8
    assert accumulator.input_bounds(4, True) == (-8, 7)
    assert accumulator.input_bounds(4, True, narrow=True) == (-7, 7)
    alpha = math.log2(16) + 4 + 4 - 1 - 1
    assert accumulator.datatype_bound_bits(16, 4, 4, True) == math.ceil(alpha + math.log2(1 + 2**-alpha) + 1)


@pytest.mark.parametrize("bad", [np.array([[0.5, 1.0]]), np.ones(3)])
def test_rejects_non_integer_or_misshapen_weights(bad):
    with pytest.raises(ValueError):
        accumulator.row_ranges(bad, 0, 15)
