"""Sliding-window generator and max-pool in RTL, alone and in a stitched CNN, bit-exact."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from axe_deploy.hw.sim import lint, simulate
from axe_deploy.hw.spec import MaxPoolLayer, SlidingWindowLayer, chain_reference, estimate_cycles
from axe_deploy.hw.testing import random_mvau
from axe_deploy.hw.verilog import write_rtl

pytestmark = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
fixture_ok = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@settings(fixture_ok, max_examples=40)
@given(seed=st.integers(0, 2**32 - 1), H=st.integers(1, 6), W=st.integers(1, 6),
       C=st.sampled_from([1, 2, 4]), K=st.integers(1, 3), stride=st.integers(1, 3),
       pad=st.integers(0, 2), signed=st.booleans(), stall=st.booleans(), data=st.data())
def test_sliding_window_bit_exact(tmp_path_factory, seed, H, W, C, K, stride, pad, signed,
                                  stall, data):
    stride, pad = min(stride, K), min(pad, K - 1)
    assume(H + 2 * pad >= K and W + 2 * pad >= K)
    simd = data.draw(st.sampled_from([d for d in (1, 2, 4) if C % d == 0]))
    swg = SlidingWindowLayer("swg", H, W, C, K, simd, 3, signed, stride, pad)
    rng = np.random.default_rng(seed)
    x = rng.integers(-4 if signed else 0, 4 if signed else 8, size=(3, swg.in_elems))
    res = simulate(write_rtl([swg], tmp_path_factory.mktemp("swg")), x, simulator="icarus",
                   stall=stall)
    assert np.array_equal(res.outputs, chain_reference([swg], x))


@settings(fixture_ok, max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), H=st.integers(2, 7), W=st.integers(2, 7),
       C=st.sampled_from([1, 2, 3, 4]), signed=st.booleans(), stall=st.booleans(), data=st.data())
def test_maxpool_bit_exact(tmp_path_factory, seed, H, W, C, signed, stall, data):
    pe = data.draw(st.sampled_from([d for d in (1, 2, 3, 4) if C % d == 0]))
    pool = MaxPoolLayer("pool", H, W, C, pe, 4, signed)
    rng = np.random.default_rng(seed)
    x = rng.integers(-8 if signed else 0, 8 if signed else 16, size=(3, pool.in_elems))
    res = simulate(write_rtl([pool], tmp_path_factory.mktemp("pool")), x, simulator="icarus",
                   stall=stall)
    assert np.array_equal(res.outputs, chain_reference([pool], x))


def _cnn(rng):
    """conv 3x3 pad 1 (2 -> 4 ch) -> 2x2 pool -> conv 2x2 stride 2 pad 1 (4 -> 3 ch)."""
    s0 = SlidingWindowLayer("c0_swg", 6, 5, 2, 3, 2, 4, False, 1, 1)
    c0 = random_mvau(rng, "c0", 18, 4, SIMD=2, PE=2, input_bits=4, n_thresholds=3,
                     num_vectors=s0.OH * s0.OW)
    p0 = MaxPoolLayer("p0", 6, 5, 4, 2, 2, False)
    s1 = SlidingWindowLayer("c1_swg", 3, 2, 4, 2, 1, 2, False, 2, 1)
    c1 = random_mvau(rng, "c1", 16, 3, SIMD=2, PE=3, input_bits=2, n_thresholds=None,
                     num_vectors=s1.OH * s1.OW)
    return [s0, c0, p0, s1, c1]


@pytest.mark.parametrize("stall", [False, True])
def test_cnn_bit_exact_at_the_estimated_rate(tmp_path, stall):
    rng = np.random.default_rng(5)
    layers = _cnn(rng)
    x = rng.integers(0, 16, size=(6, layers[0].in_elems))
    design = write_rtl(layers, tmp_path)
    res = simulate(design, x, simulator="icarus", stall=stall)
    assert np.array_equal(res.outputs, chain_reference(layers, x))
    assert res.overflows == {"c0": 0, "c1": 0}
    if not stall:
        assert res.interval == max(estimate_cycles(layer) for layer in layers)
    if shutil.which("verilator"):
        assert lint(design) == ""
