"""Layer specs, integer references, ROM layouts and folding of the hardware backend (no tools)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses
import itertools

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from axe_deploy.hw.folding import choose_folding, target_cycles_from_fps
from axe_deploy.hw.spec import (MaxPoolLayer, MVAULayer, SlidingWindowLayer, chain_reference,
                                check_chain, estimate_cycles, mvau_reference)
from axe_deploy.hw.testing import random_mvau
from axe_deploy.hw.verilog import (pack_words, threshold_words, unpack_words, verilog_name,
                                   weight_words)


def _layer(**kw):
    base = dict(name="fc", MW=4, MH=6, SIMD=2, PE=3, input_bits=4, input_signed=False,
                weight_bits=4, acc_bits=10, acc_signed=True,
                weights=np.zeros((6, 4), dtype=np.int64), thresholds=None)
    base.update(kw)
    return MVAULayer(**base)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 9), st.integers(1, 7), st.integers(1, 8),
       st.booleans(), st.integers(2, 6), st.sampled_from([None, 1, 3, 15]))
def test_mvau_reference_is_thresholded_dot_product(seed, MW, MH, ib, signed, wb, n_thr):
    rng = np.random.default_rng(seed)
    layer = random_mvau(rng, "fc", MW, MH, input_bits=ib, input_signed=signed, weight_bits=wb,
                        n_thresholds=n_thr)
    lo, hi = (-(2 ** (ib - 1)), 2 ** (ib - 1) - 1) if signed else (0, 2**ib - 1)
    x = rng.integers(lo, hi + 1, size=(5, MW))
    y = mvau_reference(layer, x)
    for n, m in itertools.product(range(5), range(MH)):
        acc = sum(int(x[n, k]) * int(layer.weights[m, k]) for k in range(MW))
        want = acc if n_thr is None else sum(int(t) <= acc for t in layer.thresholds[m])
        assert y[n, m] == want
    assert layer.output_bits == (layer.acc_bits if n_thr is None else {1: 1, 3: 2, 15: 4}[n_thr])
    assert layer.output_signed == (layer.acc_signed if n_thr is None else False)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.booleans(),
       st.lists(st.integers(-600, 600), min_size=1, max_size=6))
def test_clamped_thresholds_compare_exactly_on_every_register_value(P, signed, thr):
    thr = sorted(thr)
    layer = _layer(MH=1, PE=1, MW=1, SIMD=1, acc_bits=P, acc_signed=signed,
                   weights=np.zeros((1, 1), dtype=np.int64), thresholds=np.array([thr]))
    clamped = threshold_words(layer)[0]
    lo, hi = (-(2 ** (P - 1)), 2 ** (P - 1) - 1) if signed else (0, 2**P - 1)
    # the stored values fit the comparator's P+1 bits (signed, or unsigned for an unsigned acc)
    if signed:
        assert clamped.min() >= -(2**P) and clamped.max() <= 2**P - 1
    else:
        assert clamped.min() >= 0 and clamped.max() <= 2 ** (P + 1) - 1
    for acc in range(lo, hi + 1):
        assert sum(t <= acc for t in thr) == sum(t <= acc for t in clamped)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 5), st.integers(1, 7), st.integers(1, 40),
       st.booleans())
def test_pack_words_roundtrip(seed, n, lanes, bits, signed):
    rng = np.random.default_rng(seed)
    lo, hi = (-(2 ** (bits - 1)), 2 ** (bits - 1)) if signed else (0, 2**bits)
    v = rng.integers(lo, hi, size=(n, lanes))
    words = pack_words(v, bits)
    assert all(len(w) == -(-lanes * bits // 4) for w in words)
    assert np.array_equal(unpack_words(words, lanes, bits, signed), v.reshape(-1))


def test_pack_words_layout():
    # lane 0 in the low bits, two's complement: [-1, 2] at 4 bits -> 0x2f
    assert pack_words(np.array([[-1, 2]]), 4) == ["2f"]
    assert pack_words(np.array([[1, 1, 1]]), 3) == ["049"]


def test_weight_rom_layout():
    w = np.arange(6 * 4).reshape(6, 4) % 7 - 3
    layer = _layer(weights=w)
    words = weight_words(layer)  # SF=2, NF=2: address nf*SF + sf, lane p*SIMD + s
    assert words.shape == (4, 6)
    for nf, sf, p, s in itertools.product(range(2), range(2), range(3), range(2)):
        assert words[nf * 2 + sf, p * 2 + s] == w[nf * 3 + p, sf * 2 + s]


def test_spec_errors_name_the_layer():
    with pytest.raises(ValueError, match="layer 'fc'.*PE=4 does not divide 6"):
        _layer(PE=4)
    with pytest.raises(ValueError, match="SIMD=3 does not divide 4"):
        _layer(SIMD=3)
    with pytest.raises(ValueError, match="do not fit INT4"):
        _layer(weights=np.full((6, 4), 8))
    with pytest.raises(ValueError, match="shape"):
        _layer(weights=np.zeros((4, 6)))
    with pytest.raises(ValueError, match="non-decreasing"):
        _layer(thresholds=np.tile([3, 1], (6, 1)))
    with pytest.raises(ValueError, match="not integers"):
        _layer(weights=np.full((6, 4), 0.5))
    with pytest.raises(ValueError, match="ram_style"):
        _layer(ram_style="ultra")
    with pytest.raises(ValueError, match="outside"):
        mvau_reference(_layer(), np.full((1, 4), 16))
    with pytest.raises(ValueError, match="stride"):
        SlidingWindowLayer("swg", 8, 8, 2, 2, 1, 4, False, stride=3)
    with pytest.raises(ValueError, match="PE=3 does not divide 4"):
        MaxPoolLayer("pool", 4, 4, 4, 3, 4, False)


def test_check_chain_reports_the_mismatched_pair():
    a = _layer(name="a", thresholds=np.zeros((6, 3), dtype=np.int64))  # 6 outputs, UINT2
    b = _layer(name="b", MW=6, SIMD=2, input_bits=4, weights=np.zeros((6, 6), dtype=np.int64))
    with pytest.raises(ValueError, match="layer 'a' gives .* layer 'b' takes"):
        check_chain([a, b])
    with pytest.raises(ValueError, match="duplicate layer names"):
        check_chain([a, a])


def _conv_loops(x, w, K, stride, pad):
    n, H, W, C = x.shape
    OC = w.shape[0]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    OH, OW = (H + 2 * pad - K) // stride + 1, (W + 2 * pad - K) // stride + 1
    y = np.zeros((n, OH, OW, OC), dtype=np.int64)
    for i, oh, ow, o in itertools.product(range(n), range(OH), range(OW), range(OC)):
        for c, kh, kw in itertools.product(range(C), range(K), range(K)):
            y[i, oh, ow, o] += xp[i, oh * stride + kh, ow * stride + kw, c] * w[o, c, kh, kw]
    return y


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6), st.integers(1, 6), st.integers(1, 3),
       st.integers(1, 3), st.integers(1, 2), st.integers(0, 2))
def test_sliding_window_and_mvau_make_a_convolution(seed, H, W, C, K, stride, pad):
    stride, pad = min(stride, K), min(pad, K - 1)
    assume(H + 2 * pad >= K and W + 2 * pad >= K)
    rng = np.random.default_rng(seed)
    swg = SlidingWindowLayer("swg", H, W, C, K, 1, 4, True, stride, pad)
    w = rng.integers(-8, 8, size=(3, C, K, K))  # PyTorch [OC, C, kh, kw]
    mvau = MVAULayer("conv", K * K * C, 3, 1, 1, 4, True, 4, 20, True,
                     w.transpose(0, 2, 3, 1).reshape(3, -1), None, num_vectors=swg.OH * swg.OW)
    x = rng.integers(-8, 8, size=(2, H, W, C))
    y = chain_reference([swg, mvau], x.reshape(2, -1))
    assert np.array_equal(y, _conv_loops(x, w, K, stride, pad).reshape(2, -1))


def test_maxpool_reference_floor_mode():
    x = np.arange(5 * 3 * 2).reshape(1, 5, 3, 2) * np.array([1, -1])
    pool = MaxPoolLayer("pool", 5, 3, 2, 1, 8, True)
    y = pool.reference(x.reshape(1, -1)).reshape(2, 1, 2)
    for oh, c in itertools.product(range(2), range(2)):
        assert y[oh, 0, c] == x[0, 2 * oh:2 * oh + 2, 0:2, c].max()


def test_estimate_cycles():
    assert estimate_cycles(_layer()) == 2 * 2
    assert estimate_cycles(_layer(PE=1, SIMD=1, num_vectors=9)) == 9 * 4 * 6
    swg = SlidingWindowLayer("swg", 8, 8, 4, 3, 2, 4, False, 1, 1)
    assert estimate_cycles(swg) == 8 * 8 * 9 * 2
    assert estimate_cycles(MaxPoolLayer("p", 8, 8, 4, 2, 4, False)) == 8 * 8 * 2


def test_choose_folding_is_the_cheapest_that_meets_the_target():
    rng = np.random.default_rng(0)
    layers = [random_mvau(rng, "a", 12, 8), random_mvau(rng, "b", 8, 6),
              SlidingWindowLayer("s", 4, 4, 6, 3, 1, 4, False)]
    for target in [1000, 96, 40, 24, 12, 3]:
        if target < 4 * 4 * 9:
            layers = layers[:2]
        folded = choose_folding(layers, target_cycles=target)
        for orig, f in zip(layers, folded):
            assert estimate_cycles(f) <= target
            if isinstance(orig, MVAULayer):
                best = min(pe * simd for pe in range(1, orig.MH + 1)
                           for simd in range(1, orig.MW + 1)
                           if orig.MH % pe == 0 and orig.MW % simd == 0
                           and orig.MW * orig.MH // (pe * simd) <= target)
                assert f.PE * f.SIMD == best
    assert target_cycles_from_fps(1e5, 100.0) == 1000
    a, b = choose_folding(layers, target_fps=1e6, clock_mhz=24.0)  # 24 cycles
    assert estimate_cycles(a) <= 24 and estimate_cycles(b) <= 24


def test_choose_folding_overrides_and_errors():
    rng = np.random.default_rng(1)
    layers = [random_mvau(rng, "a", 12, 8), random_mvau(rng, "b", 8, 6)]
    a, b = choose_folding(layers, target_cycles=1, overrides={"a": (4, 3), "b": (6, 8)})
    assert (a.PE, a.SIMD, b.PE, b.SIMD) == (4, 3, 6, 8)
    with pytest.raises(ValueError, match="layer 'a': PE=5 does not divide 8"):
        choose_folding(layers, overrides={"a": (5, 1)})
    with pytest.raises(ValueError, match="name no layer: \\['c'\\]"):
        choose_folding(layers, overrides={"c": (1, 1)})
    slow = dataclasses.replace(layers[0], num_vectors=2)
    with pytest.raises(ValueError, match=r"layer 'a': even the fastest folding \(PE=8, SIMD=12\) "
                                         r"takes 2 cycles per image > target 1"):
        choose_folding([slow], target_cycles=1)
    with pytest.raises(ValueError, match="either target_cycles, or target_fps"):
        choose_folding(layers, target_cycles=10, target_fps=1.0, clock_mhz=100.0)


def test_verilog_names():
    assert verilog_name("/fc1/MatMul:0") == "_fc1_MatMul_0"
    assert verilog_name("0conv") == "l_0conv"
