"""Multi-stage accumulation in hardware: tiled MVAUs (inner register of the annotated inner
width, outer register of the outer width) and reorders, bit-exact in RTL against the
two-level integer reference, inner and outer overflows counted separately."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from axe_deploy.flow import config
from axe_deploy.core.accumulator import analyze, datatype_name, min_bits
from axe_deploy.flow.checks import failures
from axe_deploy.flow.runner import run_flow
from axe_deploy.hw.folding import choose_folding
from axe_deploy.hw.sim import lint, simulate
from axe_deploy.hw.spec import ReorderLayer, chain_reference, estimate_cycles, wrap
from axe_deploy.hw.testing import random_mvau
from axe_deploy.hw.worst_case import worst_case_vectors
from axe_deploy.hw.verilog import write_rtl

needs_icarus = pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog not installed")


def _tiled_mlp(rng):
    """A reorder, two tiled layers (tiles of 4 and 3 folds, a short last tile) and a
    one-stage one."""
    r = ReorderLayer("fc0_reorder", 20, 4, False, rng.permutation(20))
    a = random_mvau(rng, "fc0", 20, 6, SIMD=2, PE=3, input_bits=4, n_thresholds=3, tile_size=8)
    b = random_mvau(rng, "fc1", 6, 4, SIMD=1, PE=2, input_bits=2, n_thresholds=7, tile_size=3)
    c = random_mvau(rng, "fc2", 4, 3, SIMD=2, PE=1, input_bits=3, n_thresholds=None)
    return [r, a, b, c]


def test_two_level_reference_equals_the_exact_sum_when_nothing_overflows():
    rng = np.random.default_rng(0)
    layer = random_mvau(rng, "fc", 40, 5, input_bits=4, n_thresholds=None, tile_size=16)
    info = analyze(layer.weights, input_bits=4, input_signed=False, weight_bits=4, tile_size=16)
    assert (layer.acc_bits, layer.outer_bits) == (info.exact_bits, info.outer_bits)
    assert layer.n_tiles == 3 and layer.result_bits == info.outer_bits
    x = np.concatenate([worst_case_vectors(layer.weights, 0, 15, 16).vectors, rng.integers(0, 16, (8, 40))])
    assert np.array_equal(layer.reference(x), x @ layer.weights.T)
    # one bit narrower inner register: the reference wraps every tile sum like the register
    narrow = dataclasses.replace(layer, acc_bits=layer.acc_bits - 1)
    tiles = [wrap(x[:, s:s + 16] @ layer.weights[:, s:s + 16].T, narrow.acc_bits, True) for s in (0, 16, 32)]
    assert np.array_equal(narrow.reference(x), wrap(sum(tiles), narrow.outer_bits, True))
    assert not np.array_equal(narrow.reference(x), x @ layer.weights.T)


@settings(max_examples=200, deadline=None)
@given(v=st.integers(-2**40, 2**40), bits=st.integers(1, 40), signed=st.booleans())
def test_wrap_is_the_register_value(v, bits, signed):
    got = int(wrap(np.array([v]), bits, signed)[0])
    lo = -(2 ** (bits - 1)) if signed else 0
    assert lo <= got < lo + 2**bits and (got - v) % 2**bits == 0


def test_tiled_layer_errors_name_the_fix():
    rng = np.random.default_rng(1)
    layer = random_mvau(rng, "fc", 24, 4, SIMD=4, input_bits=4, n_thresholds=None, tile_size=8)
    with pytest.raises(ValueError, match=r"layer 'fc': SIMD=3 does not divide tile_size=8.*whole folds"):
        dataclasses.replace(layer, SIMD=3)
    with pytest.raises(ValueError, match=r"outer_bits=.* must be in \[acc_bits"):
        dataclasses.replace(layer, outer_bits=layer.acc_bits - 1)
    with pytest.raises(ValueError, match="tile_size=24 must be in"):
        dataclasses.replace(layer, tile_size=24)
    with pytest.raises(ValueError, match="not a permutation"):
        ReorderLayer("r", 4, 4, False, [0, 1, 1, 2])
    with pytest.raises(ValueError, match="layer 'r': even the fastest folding .one element a cycle.* 32 cycles"):
        choose_folding([ReorderLayer("r", 8, 4, False, np.arange(8), num_vectors=4)], target_cycles=10)
    # folding only picks SIMD dividing T: tiles stay whole folds
    for target in (1, 2, 5, 12, 40, 96):
        try:
            (folded,) = choose_folding([layer], target_cycles=target)
        except ValueError:
            continue
        assert 8 % folded.SIMD == 0 and estimate_cycles(folded) <= target


@needs_icarus
@pytest.mark.parametrize("stall", [False, True])
def test_tiled_chain_bit_exact_with_no_inner_or_outer_overflow(tmp_path, stall):
    rng = np.random.default_rng(2)
    layers = _tiled_mlp(rng)
    wc = worst_case_vectors(layers[1].weights, 0, 15, 8).vectors
    wc = wc[:, np.argsort(layers[0].order)]  # in stream order: the reorder puts it back
    x = np.concatenate([wc, rng.integers(0, 16, (4, 20))])
    design = write_rtl(layers, tmp_path)
    res = simulate(design, x, simulator="icarus", stall=stall)
    assert not res.timed_out
    assert np.array_equal(res.outputs, chain_reference(layers, x))
    assert res.overflows == res.outer_overflows == {"fc0": 0, "fc1": 0, "fc2": 0}
    if not stall:
        assert res.interval == max(estimate_cycles(layer) for layer in layers)
    if shutil.which("verilator"):
        assert lint(design) == ""


@needs_icarus
@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), data=st.data())
def test_random_tiled_layers_with_reorder_bit_exact(tmp_path_factory, seed, data):
    rng = np.random.default_rng(seed)
    mw = data.draw(st.sampled_from([4, 6, 8, 12]))
    mh = data.draw(st.sampled_from([1, 2, 4]))
    simd = data.draw(st.sampled_from([d for d in range(1, mw) if mw % d == 0]))
    tile = data.draw(st.sampled_from([t for t in range(simd, mw, simd)]))
    vectors = data.draw(st.integers(1, 3))
    signed = data.draw(st.booleans())
    layer = random_mvau(rng, "fc", mw, mh, SIMD=simd, PE=data.draw(st.sampled_from([1, mh])),
                        input_bits=3, input_signed=signed, tile_size=tile, num_vectors=vectors,
                        n_thresholds=data.draw(st.sampled_from([None, 3])))
    layers = [ReorderLayer("fc_reorder", mw, 3, signed, rng.permutation(mw), num_vectors=vectors), layer]
    x = rng.integers(-4 if signed else 0, 4 if signed else 8, (3, layers[0].in_elems))
    res = simulate(write_rtl(layers, tmp_path_factory.mktemp("t")), x, simulator="icarus",
                   stall=data.draw(st.booleans()))
    assert np.array_equal(res.outputs, chain_reference(layers, x))
    assert res.total_overflows == 0


def _narrow_in_rtl(design, module: str, param: str) -> int:
    """Rewrite one parameter of a generated wrapper one bit narrower; returns the new width."""
    path = design.folder / f"{module}.v"
    text = path.read_text()
    width = int(re.search(rf"\.{param}\((\d+)\)", text).group(1)) - 1
    path.write_text(re.sub(rf"\.{param}\(\d+\)", f".{param}({width})", text))
    return width


@needs_icarus
def test_one_bit_narrower_inner_register_overflows_on_worst_case_inputs(tmp_path):
    """The tile bound is tight: the generated RTL with its inner register one bit narrower
    than annotated is caught by the shadow check on vectors that drive each tile to its
    extremes (and the outer register, left as annotated, does not overflow)."""
    rng = np.random.default_rng(3)
    layer = random_mvau(rng, "fc", 32, 4, SIMD=4, PE=2, input_bits=4, n_thresholds=None, tile_size=8)
    x = worst_case_vectors(layer.weights, 0, 15, 8).vectors
    exact = simulate(write_rtl([layer], tmp_path / "exact"), x, simulator="icarus")
    assert np.array_equal(exact.outputs, x @ layer.weights.T)
    assert exact.overflows == exact.outer_overflows == {"fc": 0}

    design = write_rtl([layer], tmp_path / "narrow")
    inner = _narrow_in_rtl(design, design.modules[0], "ACC_BITS")
    assert inner == layer.acc_bits - 1
    res = simulate(design, x, simulator="icarus")
    assert res.overflows["fc"] > 0 and res.outer_overflows["fc"] == 0
    # what the narrowed hardware computes is the two-level reference with that inner width
    assert np.array_equal(res.outputs, dataclasses.replace(layer, acc_bits=inner).reference(x))
    assert not np.array_equal(res.outputs, x @ layer.weights.T)

    outer = write_rtl([layer], tmp_path / "narrow_outer")
    _narrow_in_rtl(outer, outer.modules[0], "OUTER_BITS")
    res = simulate(outer, x, simulator="icarus")
    assert res.overflows["fc"] == 0 and res.outer_overflows["fc"] > 0


SIMULATOR = shutil.which("verilator") or shutil.which("iverilog")
FLOWS = Path(__file__).parents[1] / "flows"
TO_SIM = ["build_models", "quantize", "export", "annotate", "validate", "lower", "fold", "rtl", "simulate", "report"]


def _check_tiled_build(report, tiled_layers):
    sim = report["hardware"]["rtl_sim"]
    assert sim["bit_exact_vectors"] == sim["vectors"] > 0
    assert sim["inner_overflows"] == sim["outer_overflows"] == sim["overflows"] == 0
    annotated = {l["name"]: l for l in report["layers"]}
    mvaus = {l["name"]: l for l in report["hardware"]["layers"] if l["kind"] == "MVAU"}
    assert sorted(n for n, l in mvaus.items() if l["tile_size"]) == sorted(tiled_layers)
    for name, l in mvaus.items():  # the registers built are the annotated ones, exactly
        assert l["accumulator_datatype"] == annotated[name]["accumulator_datatype"]
        assert l["outer_accumulator_datatype"] == annotated[name]["outer_accumulator_datatype"]
        if l["tile_size"]:
            assert l["tile_size"] % l["SIMD"] == 0
    assert report["dataflow"]["executor_argmax_equal_onnxruntime"] == 1.0
    assert failures(report) == {} and "rtl_worst_case" in report["checks"]  # incl. worst-case tiles
    worst = {l["name"]: l for l in report["hardware"]["rtl_worst_case"]["layers"]}
    for name in tiled_layers:  # inner register one bit narrower: caught on the extreme tiles
        assert worst[name]["tile_size"] and worst[name]["narrower_overflows"] > 0 == worst[name]["overflows"]


@pytest.mark.slow
@pytest.mark.skipif(SIMULATOR is None, reason="neither verilator nor iverilog installed")
def test_tiled_mlp_flow_through_rtl(tmp_path):
    cfg = config.load(FLOWS / "digits_mlp.toml", [
        "quant.tile_size=16", "quant.accumulator_bits=10", "quant.layers={}", "hardware.sim_vectors=16",
        "flow.steps=" + json.dumps(TO_SIM)])
    report = run_flow(cfg, tmp_path / "mlp", progress=lambda s: None)
    _check_tiled_build(report, ["fc1", "fc2", "fc3"])
    for l in report["layers"]:  # each tile register: the exact width of its range, within the target
        assert l["accumulator_datatype"] == datatype_name(min_bits(*l["accumulator_range"], True), True)
        assert min_bits(*l["accumulator_range"], True) <= 10
    assert [l["kind"] for l in report["hardware"]["layers"]] == ["MVAU"] * 3  # no reorder: graph order


@pytest.mark.slow
@pytest.mark.skipif(SIMULATOR is None, reason="neither verilator nor iverilog installed")
def test_tiled_cnn_flow_through_rtl(tmp_path):
    steps = TO_SIM[:-1] + ["handoff", "report"]  # the handoff too: FINN's graph has no reorder
    cfg = config.load(FLOWS / "digits_cnn_tiled.toml", ["hardware.sim_vectors=4", "flow.steps=" + json.dumps(steps)])
    report = run_flow(cfg, tmp_path / "cnn", progress=lambda s: None)
    _check_tiled_build(report, ["conv2", "fc"])
    kinds = [l["kind"] for l in report["hardware"]["layers"]]
    assert kinds == ["SlidingWindow", "MVAU", "SlidingWindow", "Reorder", "MVAU", "MaxPool", "Reorder", "MVAU"]
    # judged against the same run: AXE's tiles cost at most a point of what the unconstrained OPTQ keeps
    assert report["metrics"]["quant_accuracy"] >= report["unconstrained"]["accuracy"] - 0.01
    assert (tmp_path / "cnn" / "finn" / "folding_config.json").is_file()
