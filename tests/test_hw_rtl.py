"""Stitched MVAU chains in RTL: bit-exact against the integer reference (Icarus, and one
Verilator build), lint-clean, cycles as estimated, overflows flagged."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axe_deploy.core.accumulator import worst_case_inputs
from axe_deploy.hw.sim import lint, simulate, simulate_many
from axe_deploy.hw.spec import chain_reference, estimate_cycles, estimate_latency
from axe_deploy.hw.testing import random_mvau
from axe_deploy.hw.verilog import write_rtl

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")
needs_verilator = pytest.mark.skipif(shutil.which("verilator") is None,
                                     reason="verilator not installed")


def _inputs(rng, layer, n):
    lo, hi = ((-(2 ** (layer.input_bits - 1)), 2 ** (layer.input_bits - 1) - 1)
              if layer.input_signed else (0, 2**layer.input_bits - 1))
    return rng.integers(lo, hi + 1, size=(n, layer.in_elems))


def _mlp(rng, dims, folds, in_bits=8, in_signed=False, act_bits=2, **spec):
    """Chain of random MVAUs: thresholds with 2^act_bits - 1 levels, raw last layer;
    ``spec`` (e.g. pipeline_stages, res_type) set on every layer."""
    layers, bits, signed = [], in_bits, in_signed
    for i, ((mw, mh), (pe, simd)) in enumerate(zip(zip(dims, dims[1:]), folds)):
        last = i == len(dims) - 2
        layer = random_mvau(rng, f"fc{i}", mw, mh, SIMD=simd, PE=pe, input_bits=bits,
                            input_signed=signed, n_thresholds=None if last else 2**act_bits - 1)
        layers.append(dataclasses.replace(layer, **spec))
        bits, signed = act_bits, False
    return layers


# (dims, (PE, SIMD) per layer, input signed): narrow/wide converters, equal lanes, no folding
CASES = [
    ([6, 12, 4, 3], [(3, 2), (2, 4), (1, 2)], False),   # 3 -> 4 (general converter), 2 -> 2
    ([8, 8, 6], [(8, 8), (3, 1)], True),                  # fully parallel, then 8 -> 1
    ([4, 6, 6, 2], [(1, 1), (2, 6), (2, 3)], False),      # 1 -> 6 (widen), 2 -> 3 (general)
    ([9, 4, 8], [(2, 3), (4, 4)], True),                  # 2 -> 4 (widen)
]


@needs_icarus
@pytest.mark.parametrize("stall", [False, True])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_chain_bit_exact_and_at_the_estimated_rate(tmp_path, case, stall):
    dims, folds, signed = CASES[case]
    rng = np.random.default_rng(case)
    layers = _mlp(rng, dims, folds, in_signed=signed)
    x = _inputs(rng, layers[0], 12)
    res = simulate(write_rtl(layers, tmp_path), x, simulator="icarus", stall=stall)
    assert not res.timed_out
    assert np.array_equal(res.outputs, chain_reference(layers, x))
    assert res.overflows == {layer.name: 0 for layer in layers}
    if not stall:  # FIFOs in front of each MVAU: the chain runs at its slowest layer's rate
        assert res.interval == max(estimate_cycles(layer) for layer in layers)


@needs_icarus
@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n_layers=st.integers(2, 3), signed=st.booleans(),
       act_bits=st.integers(1, 3), data=st.data())
def test_random_chains_bit_exact(tmp_path_factory, seed, n_layers, signed, act_bits, data):
    rng = np.random.default_rng(seed)
    dims = [data.draw(st.sampled_from([1, 2, 3, 4, 6, 8])) for _ in range(n_layers + 1)]
    folds = []
    for mw, mh in zip(dims, dims[1:]):
        folds.append((data.draw(st.sampled_from([d for d in range(1, mh + 1) if mh % d == 0])),
                      data.draw(st.sampled_from([d for d in range(1, mw + 1) if mw % d == 0]))))
    layers = _mlp(rng, dims, folds, in_bits=data.draw(st.integers(1, 8)), in_signed=signed,
                  act_bits=act_bits)
    layers = [dataclasses.replace(layer, pipeline_stages=data.draw(st.integers(0, 8)),
                                  res_type=data.draw(st.sampled_from(["auto", "lut", "dsp"])))
              for layer in layers]
    x = _inputs(rng, layers[0], 6)
    res = simulate(write_rtl(layers, tmp_path_factory.mktemp("rtl")), x, simulator="icarus",
                   stall=data.draw(st.booleans()))
    assert np.array_equal(res.outputs, chain_reference(layers, x))
    assert res.total_overflows == 0


@needs_icarus
@pytest.mark.parametrize("tile_size", [0, 8])
def test_every_pipeline_depth_bit_exact_at_the_estimated_latency(tmp_path, tile_size):
    """pipeline_stages 0 .. all an MVAU can place (and one more, not built): bit-exact,
    with and without stalls; latency as estimated (one cycle a stage), interval unchanged."""
    rng = np.random.default_rng(5 + tile_size)
    base = random_mvau(rng, "fc", 16, 6, SIMD=4, PE=2, input_bits=5, input_signed=True,
                       n_thresholds=3, tile_size=tile_size)
    assert base.adder_tree_levels == 2
    layers = [dataclasses.replace(base, pipeline_stages=k, res_type=("auto", "lut", "dsp")[k % 3])
              for k in range(9)]
    assert [l.built_pipeline_stages for l in layers] == [0, 1, 2, 3, 4, 5, 6, 7, 7]
    designs = [write_rtl([l], tmp_path, top=f"axe_top{k}") for k, l in enumerate(layers)]
    x = _inputs(rng, base, 8)
    ref = chain_reference([base], x)
    unpipelined = estimate_latency(layers[0])
    for stall in (False, True):
        for layer, res in zip(layers, simulate_many(designs, [x] * len(designs), "icarus", stall)):
            assert np.array_equal(res.outputs, ref) and res.total_overflows == 0
            if not stall:
                assert res.latency == estimate_latency(layer) == unpipelined + layer.built_pipeline_stages
                assert res.interval == estimate_cycles(layer)


@needs_icarus
def test_unsigned_accumulator_and_wide_signed_inputs(tmp_path):
    rng = np.random.default_rng(7)
    a = random_mvau(rng, "pos", 8, 4, SIMD=4, PE=2, input_bits=8, nonnegative=True, n_thresholds=7)
    b = random_mvau(rng, "neg", 4, 3, SIMD=2, PE=3, input_bits=3, n_thresholds=None)
    assert not a.acc_signed and b.acc_signed
    x = _inputs(rng, a, 10)
    res = simulate(write_rtl([a, b], tmp_path), x, simulator="icarus")
    assert np.array_equal(res.outputs, chain_reference([a, b], x))


@needs_icarus
@pytest.mark.parametrize("stages", [0, 5])
def test_overflow_is_flagged_when_the_accumulator_is_too_narrow(tmp_path, stages):
    rng = np.random.default_rng(3)
    exact = random_mvau(rng, "fc", 16, 4, SIMD=4, PE=2, input_bits=4, n_thresholds=None)
    exact = dataclasses.replace(exact, pipeline_stages=stages)
    x_hi, x_lo = worst_case_inputs(exact.weights, 0, 15)
    x = np.concatenate([x_hi, x_lo, _inputs(rng, exact, 4)])
    ref = chain_reference([exact], x)
    ok = simulate(write_rtl([exact], tmp_path / "exact"), x, simulator="icarus")
    assert np.array_equal(ok.outputs, ref) and ok.total_overflows == 0

    narrow = dataclasses.replace(exact, acc_bits=exact.acc_bits - 2)
    bad = simulate(write_rtl([narrow], tmp_path / "narrow"), x, simulator="icarus")
    P = narrow.acc_bits
    wrapped = (ref + 2 ** (P - 1)) % 2**P - 2 ** (P - 1)
    assert np.array_equal(bad.outputs, wrapped)  # the register wraps, as hardware does
    lost = int((wrapped != ref).sum())
    assert lost > 0 and bad.overflows["fc"] >= lost


@needs_icarus
@pytest.mark.parametrize("signed_acc", [True, False])
def test_accumulators_exactly_on_thresholds(tmp_path, signed_acc):
    """Thresholds set to accumulator values the inputs produce: every row sees a tie (out
    counts it: acc >= T), a value one below and one above a threshold."""
    rng = np.random.default_rng(21)
    layer = random_mvau(rng, "thr", 8, 6, SIMD=4, PE=2, input_bits=4, n_thresholds=3,
                        nonnegative=not signed_acc)
    assert layer.acc_signed is signed_acc
    x = _inputs(rng, layer, 5)
    acc = x @ layer.weights.T
    thr = np.sort(np.stack([acc[0], acc[1] + 1, acc[2] - 1], axis=1), axis=1)
    layer = dataclasses.replace(layer, thresholds=thr)
    for k, offset in enumerate([0, -1, 1]):  # vector 0 on, 1 just below, 2 just above a threshold
        assert (acc[k][:, None] == thr + offset).any(axis=1).all()
    res = simulate(write_rtl([layer], tmp_path), x, simulator="icarus")
    want = (acc[:, :, None] >= thr[None]).sum(axis=2)
    assert np.array_equal(res.outputs, want) and np.array_equal(want, chain_reference([layer], x))


@needs_icarus
@needs_verilator
def test_verilator_agrees_and_designs_lint_clean(tmp_path):
    rng = np.random.default_rng(11)
    for k, (dims, folds, signed) in enumerate(CASES):
        design = write_rtl(_mlp(rng, dims, folds, in_signed=signed), tmp_path / f"lint{k}")
        assert lint(design) == ""
        for stages, res_type in [(0, "lut"), (2, "dsp"), (8, "auto")]:
            design = write_rtl(_mlp(rng, dims, folds, in_signed=signed, pipeline_stages=stages,
                                    res_type=res_type), tmp_path / f"lint{k}_{stages}")
            assert lint(design) == ""
    dims, folds, signed = CASES[0]
    layers = _mlp(rng, dims, folds, in_signed=signed)
    x = _inputs(rng, layers[0], 30)
    design = write_rtl(layers, tmp_path / "v")
    res = simulate(design, x, simulator="verilator", stall=True)
    ref = simulate(design, x, simulator="icarus", stall=True)
    assert res.simulator == "verilator"
    assert np.array_equal(res.outputs, chain_reference(layers, x))
    assert np.array_equal(res.done_cycles, ref.done_cycles)  # cycle-identical simulators


@needs_icarus
def test_simulate_rejects_bad_input(tmp_path):
    rng = np.random.default_rng(0)
    design = write_rtl(_mlp(rng, [4, 2], [(1, 1)], in_bits=4), tmp_path)
    with pytest.raises(ValueError, match=r"integers in \[0, 15\]"):
        simulate(design, np.full((1, 4), 16), simulator="icarus")
    with pytest.raises(ValueError, match=r"expected \[n >= 1, 4\]"):
        simulate(design, np.zeros((1, 5), dtype=int), simulator="icarus")
