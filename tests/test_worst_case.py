"""Worst-case vectors reach each row's (and tile's) exact accumulator range; in RTL the
register reaches exactly the annotated endpoints without overflow, and one bit narrower
overflows; the flow's checks record verdicts."""

import dataclasses

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from axe_deploy.core import accumulator

from axe_deploy.flow import checks
from axe_deploy.hw.testing import random_mvau
from axe_deploy.hw.worst_case import partial_sums, run_worst_case, worst_case_vectors


@settings(max_examples=150, deadline=None)
@given(M=st.integers(1, 6), K=st.integers(1, 40), bits=st.integers(1, 8), signed=st.booleans(),
       weight_bits=st.integers(2, 8), T=st.sampled_from([0, 1, 3, 8, 16, 64]), seed=st.integers(0, 2**32 - 1))
def test_worst_case_vectors_reach_exact_row_and_tile_extremes(M, K, bits, signed, weight_bits, T, seed):
    rng = np.random.default_rng(seed)
    q = rng.integers(-(2 ** (weight_bits - 1)), 2 ** (weight_bits - 1), size=(M, K))
    x_min, x_max = accumulator.input_bounds(bits, signed)
    wc = worst_case_vectors(q, x_min, x_max, tile_size=T)
    assert wc.vectors.min() >= x_min and wc.vectors.max() <= x_max
    assert len(wc.vectors) <= 2 * M and len(np.unique(wc.vectors, axis=0)) == len(wc.vectors)
    sums = partial_sums(q, wc.vectors, wc.tile_size)  # [n, M, tiles]
    # every row and tile reaches exactly its minimum and maximum on some vector ...
    assert np.array_equal(sums.min(axis=0), wc.lo) and np.array_equal(sums.max(axis=0), wc.hi)
    # ... which are the exact ranges the annotation is computed from
    if 0 < T < K:
        lo, hi = accumulator.tile_ranges(q, x_min, x_max, T)
    else:
        lo, hi = (r[:, None] for r in accumulator.row_ranges(q, x_min, x_max))
    assert np.array_equal(wc.lo, lo) and np.array_equal(wc.hi, hi)
    info = accumulator.analyze(q, input_bits=bits, input_signed=signed, weight_bits=weight_bits, tile_size=T)
    assert (sums.min(), sums.max()) == (info.lo, info.hi)
    # no other input goes further (a brute-force sample of random inputs)
    x = rng.integers(x_min, x_max + 1, size=(64, K))
    other = partial_sums(q, x, wc.tile_size)
    assert (other >= wc.lo).all() and (other <= wc.hi).all()


def test_partial_sums_by_hand():
    q = np.array([[1, -2, 3, -4, 5]])
    x = np.array([[1, 1, 1, 1, 1], [2, 0, 1, 0, 0]])
    assert partial_sums(q, x).tolist() == [[[3]], [[5]]]
    assert partial_sums(q, x, 2).tolist() == [[[-1, -1, 5]], [[2, 3, 0]]]  # tiles [1,-2] [3,-4] [5]


def _layers():
    rng = np.random.default_rng(4)
    return [random_mvau(rng, "a", 12, 6, SIMD=4, PE=3, input_bits=5, n_thresholds=3),
            random_mvau(rng, "b", 6, 4, SIMD=2, PE=2, input_bits=3, input_signed=True, n_thresholds=None),
            random_mvau(rng, "c", 8, 4, SIMD=8, PE=1, input_bits=4, nonnegative=True, n_thresholds=7)]


def _ranges(layers):
    return {l.name: (int(lo), int(hi)) for l in layers for lo, hi in [_exact_range(l)]}


def _exact_range(layer):
    info = accumulator.analyze(layer.weights, input_bits=layer.input_bits, input_signed=layer.input_signed,
                               weight_bits=layer.weight_bits)
    assert info.exact_bits == layer.acc_bits
    return info.lo, info.hi


def test_rtl_reaches_annotated_range_and_one_bit_narrower_overflows(tmp_path):
    layers = _layers()
    assert [l.acc_signed for l in layers] == [True, True, False]
    run = run_worst_case(layers, tmp_path, _ranges(layers), simulator="icarus")
    for layer, got in zip(layers, run.layers):
        assert got.passed, got.detail
        assert got.observed_range == got.annotated_range == _exact_range(layer)
        assert got.wrong_outputs == 0 and got.overflows == 0
        # one bit narrower: the shadow counter counts and the register wraps
        assert got.narrower_bits == layer.acc_bits - 1
        assert got.narrower_overflows > 0 and got.narrower_wrong_outputs > 0
    assert run.simulator == "icarus" and run.cycles > 0


def test_rtl_worst_case_fails_a_too_narrow_register_and_a_wrong_annotation(tmp_path):
    layers = _layers()[:1]
    narrow = [dataclasses.replace(layers[0], acc_bits=layers[0].acc_bits - 1)]
    got = run_worst_case(narrow, tmp_path / "narrow", _ranges(layers), simulator="icarus").layers[0]
    assert not got.passed and got.overflows > 0 and got.wrong_outputs > 0
    assert "overflows" in got.detail and "!= annotated" in got.detail
    lo, hi = _exact_range(layers[0])
    got = run_worst_case(layers, tmp_path / "wide", {"a": (lo - 1, hi)}, simulator="icarus").layers[0]
    assert not got.passed and got.overflows == 0 and "!= annotated" in got.detail


def test_narrow_signed_inputs_use_the_quantizer_range(tmp_path):
    """A narrow signed quantizer gives [-(2^(N-1) - 1), 2^(N-1) - 1]: the annotation assumes
    that range, and so must the worst case (the data type's -2^(N-1) would exceed it)."""
    rng = np.random.default_rng(9)
    layer = random_mvau(rng, "n", 6, 4, SIMD=3, PE=2, input_bits=2, input_signed=True, n_thresholds=None)
    info = accumulator.analyze(layer.weights, input_bits=2, input_signed=True, weight_bits=4, input_narrow=True)
    layer = dataclasses.replace(layer, acc_bits=info.exact_bits)
    annotated = {"n": (info.lo, info.hi)}
    narrow = dataclasses.replace(layer, input_narrow=True)  # what lowering gives for inputNarrow=1
    got = run_worst_case([narrow], tmp_path / "narrow", annotated, simulator="icarus").layers[0]
    assert got.passed and got.observed_range == (info.lo, info.hi), got.detail
    got = run_worst_case([layer], tmp_path / "full", annotated, simulator="icarus").layers[0]
    assert not got.passed and got.observed_range != (info.lo, info.hi)


def test_checks_record_and_summarize():
    report = {}
    assert checks.summary_line(report) is None and checks.failures(report) == {}
    assert checks.record(report, "a", True, "fine") is True
    assert checks.summary_line(report) == "checks: all 1 passed (a)"
    assert checks.record(report, "b", np.bool_(False), "40/360 vectors bit-exact") is False
    assert report["checks"]["b"] == {"passed": False, "detail": "40/360 vectors bit-exact"}
    assert type(report["checks"]["b"]["passed"]) is bool  # JSON-serializable
    assert checks.failures(report) == {"b": "40/360 vectors bit-exact"}
    line = checks.summary_line(report)
    assert "\n" not in line and line == "FAILED 1 of 2 checks: b: 40/360 vectors bit-exact"
