"""Bad input, table by table: every case stops with a one-line error that names the thing
and the fix (or gives the correct result), never a traceback, and writes or deletes nothing.

CLI cases run ``axe-deploy run`` and compare the whole temporary folder before and after;
API cases call the functions the flow is made of.
"""

import fcntl
import json
import math
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.core import accumulator

from axe_deploy import zoo
from axe_deploy.graph.annotate import AnnotateAccumulators
from axe_deploy.graph.annotation import PREFIX
from axe_deploy.cli.main import main, summary_table
from axe_deploy.dataflow.lower import lower
from axe_deploy.flow.report import handoff_warnings, metric_warnings
from axe_deploy.graph.foreign import read_graph
from axe_deploy.graph.layers import GraphError, quant_layers
from axe_deploy.flow.outdir import MARKER, build_folder
from axe_deploy.ptq import LayerStats, quantize_layer
from axe_deploy.ptq.optq import optq

ROOT = Path(__file__).parents[1]
DEFAULT = ROOT / "flows" / "digits_mlp.toml"
torch.set_num_threads(1)


def snapshot(root: Path) -> dict:
    """Every path under ``root`` with its content: equal snapshots mean nothing was written or deleted."""
    return {str(p.relative_to(root)): p.read_bytes() if p.is_file() else "dir" for p in sorted(root.rglob("*"))}


def one_line_error(result) -> str:
    """The CLI's error: exit 1, no traceback, exactly one 'Error:' line; returns it."""
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    errors = [l for l in result.output.splitlines() if l.startswith("Error:")]
    assert len(errors) == 1, result.output
    return errors[0]


# --- CLI: the output folder ---------------------------------------------------------------

def _project(tmp):  # a folder that is a repository root
    (tmp / "proj" / ".git").mkdir(parents=True)
    (tmp / "proj" / "code.py").write_text("keep me")
    return tmp / "proj"


def _full(tmp):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("keep me")
    return tmp / "mine"


def _holds_a_project(tmp):  # a folder with a repository somewhere below it
    (tmp / "projects" / "proj" / ".git").mkdir(parents=True)
    (tmp / "projects" / "proj" / "code.py").write_text("keep me")
    return tmp / "projects"


def _file(tmp):
    (tmp / "afile.txt").write_text("keep me")
    return tmp / "afile.txt" / "build"


OUT_CASES = {
    "cwd": (lambda tmp: ".", ["--force"], ["working directory", "not even with --force"]),
    "home": (lambda tmp: "~", ["--force"], ["home folder", "not even with --force"]),
    "root": (lambda tmp: "/", ["--force"], ["filesystem root"]),
    "repository": (_project, ["--force"], ["repository root"]),
    "parent_of_cwd": (lambda tmp: "..", ["--force"], ["contains it"]),
    "holds_a_repository": (_holds_a_project, ["--force"], ["contains the repository", "projects/proj"]),
    "not_a_build": (_full, [], ["not empty", "not an axe-deploy build", "--force"]),
    "under_a_file": (_file, [], ["afile.txt", "is a file"]),
    "unwritable": (lambda tmp: "/proc/axe-deploy-test/build", [], ["/proc", "cannot create"]),
    "unwritable_parent": (lambda tmp: "/proc/build", [], ["cannot create files in /proc"]),
    "empty_name": (lambda tmp: "", [], ["--out is empty"]),
    "name_too_long": (lambda tmp: str(tmp / ("a" * 300) / "build"), [], ["File name too long"]),
}


@pytest.mark.parametrize("case", list(OUT_CASES))
def test_cli_refuses_output_folder(case, tmp_path, monkeypatch):
    make_out, extra, fragments = OUT_CASES[case]
    work = tmp_path / "work"
    work.mkdir()
    (work / "project_file.py").write_text("keep me")
    monkeypatch.chdir(work)
    monkeypatch.setenv("HOME", str(tmp_path))
    out = make_out(tmp_path)
    before = snapshot(tmp_path)
    result = CliRunner().invoke(main, ["run", str(DEFAULT), "--out", str(out), *extra])
    line = one_line_error(result)
    for fragment in fragments:
        assert fragment in line
    assert snapshot(tmp_path) == before


def test_cli_refuses_a_folder_another_run_is_writing(tmp_path):
    out = tmp_path / "build"
    lock = os.open(tmp_path / ".build.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        before = snapshot(tmp_path)
        result = CliRunner().invoke(main, ["run", str(DEFAULT), "--out", str(out)])
        line = one_line_error(result)
        assert "another axe-deploy run is writing" in line and str(out) in line
        assert snapshot(tmp_path) == before
    finally:
        os.close(lock)


def test_force_replaces_a_foreign_folder_and_a_build_is_replaced_without_it(tmp_path):
    """What the refusals leave allowed: a previous build (marker) is replaced, another
    folder only with --force; the build folder is complete either way."""
    def body(tmp):
        (tmp / "report.json").write_text("{}")
    mine = _full(tmp_path)
    with build_folder(mine, force=True) as tmp:
        body(tmp)
    assert sorted(p.name for p in mine.iterdir()) == [MARKER, "report.json"]
    with build_folder(mine) as tmp:  # now a build: no --force needed
        (tmp / "other.json").write_text("{}")
    assert sorted(p.name for p in mine.iterdir()) == [MARKER, "other.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no lock or temporary folder left


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_removes_the_temporary_folder(tmp_path, sig):
    out = tmp_path / "build"
    (tmp_path / "keep.txt").write_text("keep me")
    script = textwrap.dedent(f"""
        import time
        from axe_deploy.flow.outdir import build_folder
        with build_folder({str(out)!r}) as tmp:
            (tmp / "half-written").write_text("x")
            print(tmp, flush=True)
            time.sleep(60)
    """)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)
    tmp = Path(proc.stdout.readline().strip())
    assert tmp.is_dir() and tmp.parent == tmp_path
    proc.send_signal(sig)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


# --- CLI: flow values that used to crash later ----------------------------------------------

FLOW_CASES = {
    "weight_bits_9_with_export": (["quant.weight_bits=9"], ["quant.weight_bits", "export step", "2..8"]),
    "input_bits_16_with_export": (["quant.input_bits=16"], ["quant.input_bits", "export step", "2..8"]),
    "layer_weight_bits_12": (['quant.layers."fc1".weight_bits=12'], ['quant.layers."fc1".weight_bits', "2..8"]),
    "input_bits_17": (["quant.input_bits=17"], ["quant.input_bits", "<= 16"]),
    "act_bits_1": (["quant.act_bits=1"], ["quant.act_bits", ">= 2"]),
    "weight_bits_4_5": (["quant.weight_bits=4.5"], ["quant.weight_bits", "expects integer"]),
    "simulator_iverilog": (["hardware.simulator=iverilog"], ["hardware.simulator", "icarus"]),
    "negative_seed": (["flow.seed=-1"], ["flow.seed", ">= 0"]),
}


@pytest.mark.parametrize("case", list(FLOW_CASES))
def test_cli_refuses_flow_value(case, tmp_path):
    overrides, fragments = FLOW_CASES[case]
    args = [a for o in overrides for a in ("--set", o)]
    result = CliRunner().invoke(main, ["run", str(DEFAULT), "--out", str(tmp_path / "build"), *args])
    line = one_line_error(result)
    for fragment in fragments:
        assert fragment in line
    assert list(tmp_path.iterdir()) == []


def test_flow_file_comments_name_allowed_simulators():
    for flow in (ROOT / "flows").glob("*.toml"):
        assert "iverilog" not in flow.read_text(), flow


# --- API: the PTQ core -------------------------------------------------------------------------

def layer(M=4, K=16, n=64, seed=0):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((M, K))
    X = np.round(rng.random((n, K)) * 15)
    return torch.tensor(W), torch.tensor(np.abs(W).max(axis=1) / 7), torch.tensor(X)


def _nan_inputs(alg):
    W, s, X = layer()
    X[3, 5] = float("nan")
    return lambda: quantize_layer(W, s, X, X, weight_bits=4, input_bits=4, input_signed=False, algorithm=alg)


def _call(weight=None, scale=None, x=None, **kw):
    W, s, X = layer()
    args = dict(weight_bits=4, input_bits=4, input_signed=False, algorithm="gpfq")
    args.update(kw)
    return lambda: quantize_layer(W if weight is None else weight, s if scale is None else scale,
                                  X if x is None else x, X if x is None else x, **args)


def _huge_weight_tiny_scale():
    W, s, _ = layer()
    W[0, 0], s[0] = 1e10, 1e-30
    return _call(weight=W, scale=s)


def _outlier_inputs():
    _, _, X = layer()
    X[0, :5] = 1e20
    return _call(x=X, accumulator_bits=12)


def _optq_nan_h():
    W, s, X = layer()
    H = X.T @ X
    H[2, 2] = float("nan")
    return lambda: optq(W / s[:, None], H, 7)


PTQ_CASES = {
    "nan_inputs_gpfq": (_nan_inputs("gpfq"), ["x_quant", "1 NaN"]),
    "nan_inputs_spfq": (_nan_inputs("spfq"), ["x_quant", "1 NaN"]),
    "nan_inputs_optq": (_nan_inputs("optq"), ["x_quant", "1 NaN"]),
    "nan_h_optq": (_optq_nan_h(), ["OPTQ", "H", "1 NaN"]),
    "nan_weight": (lambda: _call(weight=torch.full((4, 16), float("nan")))(), ["weight", "NaN"]),
    "inf_scale": (lambda: _call(scale=torch.tensor([1.0, float("inf"), 1.0, 1.0]))(), ["scale", "infinite"]),
    "float16_statistics": (_call(dtype=torch.float16), ["float16", "float32 or torch.float64"]),
    "huge_weight_tiny_scale": (_huge_weight_tiny_scale(), ["weight / scale overflows"]),
    "outliers_1e20": (_outlier_inputs(), ["overflows torch.float32", "float64"]),
    "weight_bits_4_5": (_call(weight_bits=4.5), ["weight_bits must be an integer", "4.5"]),
    "weight_bits_62": (_call(weight_bits=62), ["weight_bits=62 is out of range", "2..24"]),
    "input_bits_0": (_call(input_bits=0), ["input_bits=0 is out of range"]),
    "accumulator_bits_12_5": (_call(accumulator_bits=12.5), ["accumulator_bits must be an integer"]),
    "infeasible_P": (_call(accumulator_bits=4), ["infeasible", "accumulator_bits >= 5"]),
    "tile_size_0": (_call(tile_size=0), ["tile_size", "out of range"]),
    "spfq_order_1_5": (_call(algorithm="spfq", order=1.5), ["SPFQ order", "1.5"]),
}


@pytest.mark.parametrize("case", list(PTQ_CASES))
def test_ptq_core_refuses(case):
    call, fragments = PTQ_CASES[case]
    with pytest.raises(ValueError) as e:
        call()
    msg = str(e.value)
    assert "\n" not in msg and "positive definite" not in msg
    for fragment in fragments:
        assert fragment in msg, msg


def test_float64_statistics_take_the_outliers_within_budget():
    """The case float32 refuses runs in float64 and meets its budget exactly."""
    _, _, X = layer()
    X[0, :5] = 1e20
    q, info = _call(x=X, accumulator_bits=12, dtype=torch.float64)()
    lo, hi = accumulator.tile_ranges(q.numpy(), 0, 15, 16)
    assert -(2**11) <= int(lo.min()) and int(hi.max()) <= 2**11 - 1 and info.exact_bits <= 12


def test_stats_refuse_float16():
    with pytest.raises(ValueError, match="float16"):
        LayerStats(8, dtype=torch.float16)


# --- API: the accumulator analysis in exact integers ----------------------------------------

def python_int_bits(q, x_max):
    """Signed width of the worst-case dot products over unsigned inputs, in Python ints."""
    hi = max(sum(w * x_max for w in row if w > 0) for row in q)
    lo = min(sum(w * x_max for w in row if w < 0) for row in q)
    bits = 1
    while not (-(2 ** (bits - 1)) <= lo and hi <= 2 ** (bits - 1) - 1):
        bits += 1
    return bits, lo, hi


@pytest.mark.parametrize("q", [
    [[2**61 - 1] * 1000, [-(2**61)] * 1000],      # 62-bit weights: needs 80 bits, not 64
    [[-(2**63), 5, 7]],                           # the NaN -> int64 value: 72 bits, no wrap
    [[2**70, -3], [1, 1]],                        # beyond int64 altogether (Python ints in)
])
def test_analysis_is_exact_where_int64_would_wrap(q):
    arr = np.array(q, dtype=object) if max(abs(v) for r in q for v in r) >= 2**63 else np.array(q, dtype=np.int64)
    info = accumulator.analyze(arr, input_bits=8, input_signed=False, weight_bits=64)
    bits, lo, hi = python_int_bits(q, 255)
    assert (info.exact_bits, info.lo, info.hi) == (bits, lo, hi)
    assert info.exact_bits > 64 or q[0][0] == -(2**63)


@pytest.mark.parametrize("q, match", [
    ([[np.nan, 1.0]], "NaN or infinite"),
    ([[np.inf, 1.0]], "NaN or infinite"),
    ([[0.5, 1.0]], "not integers"),
])
def test_analysis_refuses_non_integer_weights(q, match):
    with pytest.raises(ValueError, match=match):
        accumulator.analyze(np.array(q), input_bits=4, input_signed=False, weight_bits=4)


def test_budget_and_level_checks():
    q = np.array([[7, 7, 2]])  # worst case 16 * 15 = 240: fits 9 bits, not 8
    acc = accumulator.analyze(q, input_bits=4, input_signed=False, weight_bits=4)
    accumulator.check_budget(acc, 9)
    with pytest.raises(RuntimeError, match=r"\[0, 240\] needs 9 bits, more than the 8-bit budget"):
        accumulator.check_budget(acc, 8)
    accumulator.check_levels(q, 7)
    with pytest.raises(RuntimeError, match="magnitude 8 is outside the alphabet"):
        accumulator.check_levels(np.array([[8, 0]]), 7)


# --- API: graph tools -------------------------------------------------------------------------

QONNX_DOMAIN = "qonnx.custom_op.general"
W_INT = np.array([[1, -2, 3], [4, 5, -6], [-7, 0, 1], [2, 2, 2]], dtype=np.float32)  # [K=4, M=3]


def tiny_graph(in_bits=4.0, w_bits=4.0, compute=True) -> ModelWrapper:
    """x -> Quant(unsigned) -> MatMul with Quant(signed) integer weights -> y."""
    inits = {"s_in": 1.0, "zp": 0.0, "b_in": in_bits, "s_w": 1.0, "b_w": w_bits, "fc.weight": W_INT}
    nodes = [helper.make_node("Quant", ["x", "s_in", "zp", "b_in"], ["xq"], name="in_quant", domain=QONNX_DOMAIN,
                              signed=0, narrow=0, rounding_mode="ROUND")]
    if compute:
        nodes += [helper.make_node("Quant", ["fc.weight", "s_w", "zp", "b_w"], ["wq"], name="w_quant",
                                   domain=QONNX_DOMAIN, signed=1, narrow=1, rounding_mode="ROUND"),
                  helper.make_node("MatMul", ["xq", "wq"], ["y"], name="fc")]
    else:
        nodes += [helper.make_node("Relu", ["xq"], ["y"], name="relu")]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3 if compute else 4])],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    return ModelWrapper(helper.make_model(graph))


def test_no_layers_with_a_target_is_an_error():
    with pytest.raises(GraphError, match="no Gemm, MatMul or Conv"):
        tiny_graph(compute=False).transform(AnnotateAccumulators(targets={"*": 12}))
    empty = ModelWrapper(helper.make_model(helper.make_graph([], "empty", [], [])))
    with pytest.raises(GraphError, match="no Gemm, MatMul or Conv"):
        empty.transform(AnnotateAccumulators(targets={"*": 12}))
    tiny_graph(compute=False).transform(AnnotateAccumulators())  # without a target: nothing to promise


def test_target_pattern_that_matches_no_layer_is_an_error():
    with pytest.raises(GraphError, match=r"target for 'fc9' matches no layer; the graph's layers: fc"):
        tiny_graph().transform(AnnotateAccumulators(targets={"fc9": 12}))


@pytest.mark.parametrize("which, bits", [("in", 0.0), ("in", -3.0), ("w", 0.0), ("w", 2.5), ("w", float("nan"))])
def test_quant_bit_width_below_one_names_the_node(which, bits):
    model = tiny_graph(**{f"{which}_bits": bits})
    with pytest.raises(GraphError, match=f"Quant node '{which}_quant'.*not an integer >= 1"):
        quant_layers(model)


def _annotated():
    return tiny_graph().transform(AnnotateAccumulators())


def _set(model, key, value):
    for p in model.graph.node[-1].metadata_props:
        if p.key == PREFIX + key:
            p.value = value
    return model


def test_lower_refuses_a_narrower_annotation():
    exact = accumulator.analyze(quant_layers(_annotated())[0].q, input_bits=4, input_signed=False, weight_bits=4)
    assert (exact.lo, exact.hi, exact.datatype) == (-105, 105, "INT8")  # 15 * 7 = 105 for rows of W_INT.T
    with pytest.raises(GraphError, match="annotated accumulator INT7 does not hold"):
        lower(_set(_annotated(), "accumulator_datatype", "INT7"))
    narrow = f"[{exact.lo + 1}, {exact.hi - 1}]"
    with pytest.raises(GraphError, match="narrower than the exact range"):
        lower(_set(_set(_annotated(), "accumulator_range", narrow), "accumulator_datatype", "INT8"))
    with pytest.raises(GraphError, match="annotated accumulator INT-3 does not hold"):
        lower(_set(_annotated(), "accumulator_datatype", "INT-3"))
    with pytest.raises(GraphError, match="malformed accumulator annotation"):
        lower(_set(_annotated(), "accumulator_range", "[1, "))


@pytest.mark.parametrize("damage", ["truncated", "empty", "text", "missing"])
def test_unreadable_onnx_names_the_file(tmp_path, damage):
    path = tmp_path / "model.qonnx.onnx"
    data = tiny_graph().model.SerializeToString()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "text":
        path.write_text("not a model\n" * 20)
    with pytest.raises(GraphError) as e:
        read_graph(path)
    assert str(path) in str(e.value) and "\n" not in str(e.value)
    onnx.save(tiny_graph().model, str(path))
    assert len(read_graph(path).graph.node) == 3


# --- API: the model cache ---------------------------------------------------------------------

@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated zip"])
def test_corrupt_cached_model_is_retrained_and_said_so(tmp_path, monkeypatch, capsys, content):
    from axe_deploy.zoo.digits import cached_float_model
    monkeypatch.setenv("AXE_DEPLOY_CACHE", str(tmp_path))
    path = tmp_path / "tiny-seed0.pt"
    path.write_bytes(content)
    x, y = np.random.default_rng(0).random((32, 64)).astype(np.float32), np.arange(32) % 10

    def make():
        return torch.nn.Linear(64, 10)
    model = cached_float_model("tiny", make, x, y, seed=0, retrain=False, epochs=1)
    err = capsys.readouterr().err
    assert str(path) in err and "retraining" in err
    loaded = make()
    assert zoo.load_cached(path, loaded)  # the cache entry was rewritten
    assert torch.equal(loaded.weight, model.weight)


def test_cached_model_of_another_shape_is_retrained(tmp_path, capsys):
    path = tmp_path / "m.pt"
    torch.save(torch.nn.Linear(3, 2).state_dict(), path)
    model = torch.nn.Linear(4, 2)
    before = model.weight.clone()
    assert not zoo.load_cached(path, model)
    assert torch.equal(model.weight, before)  # not half-loaded
    assert "do not match the model" in capsys.readouterr().err


# --- The summary warns when quantization collapses the metric ---------------------------------

@pytest.mark.parametrize("report, expected", [
    ({"metrics": {"float_accuracy": 0.97, "quant_accuracy": 0.10}}, ["accuracy 0.1000", "87.0 points below"]),
    ({"metrics": {"float_accuracy": 0.97, "quant_accuracy": 0.93}}, []),
    ({"evaluation": {"metric": "perplexity", "higher_is_better": False, "float": 10.0, "quantized": 10.6}},
     ["perplexity 10.6000", "6.0% above"]),
    ({"evaluation": {"metric": "perplexity", "higher_is_better": False, "float": 10.0, "quantized": 10.4}}, []),
])
def test_metric_warnings(report, expected):
    warnings = metric_warnings(report)
    assert len(warnings) == (1 if expected else 0)
    for fragment in expected:
        assert fragment in warnings[0]
    summary = summary_table(dict(flow="f", model="m", warnings=warnings))
    assert ("WARNING: quantized" in summary) == bool(expected)


@pytest.mark.slow
def test_collapse_at_9_bit_accumulators_is_reported(tmp_path):
    """The digits MLP at P = 9 falls to about chance: report.json and the summary say so."""
    sw = 'flow.steps=["build_models", "quantize", "export", "annotate", "validate", "report"]'
    result = CliRunner().invoke(main, ["run", str(DEFAULT), "--out", str(tmp_path / "b"), "--set", sw,
                                       "--set", "quant.algorithm=gpfq", "--set", "quant.accumulator_bits=9",
                                       "--set", "quant.layers={}"])  # without the default flow's per-layer P
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    assert report["metrics"]["quant_accuracy"] < 0.5 and len(report["warnings"]) == 1
    assert "WARNING: quantized accuracy" in result.output
    assert math.isclose(report["metrics"]["float_accuracy"] - report["metrics"]["quant_accuracy"],
                        float(report["warnings"][0].split(" is ")[1].split(" points")[0]) / 100, abs_tol=1e-3)


@pytest.mark.parametrize("handoff, expected", [
    ({"finn": {"files": ["build.py"]}, "hls4ml": {"skipped": "hls4ml handoff not written: Gemm node 'x'"}},
     ["WARNING: hls4ml handoff not written: Gemm node 'x'; the other outputs are complete"]),
    ({"finn": {"files": ["build.py"]}, "hls4ml": {"files": ["build.py"]}}, []),
])
def test_a_skipped_handoff_is_a_warning(handoff, expected):
    warnings = handoff_warnings({"handoff": handoff})
    summary = summary_table(dict(flow="f", model="m", warnings=warnings))
    assert [line for line in summary.splitlines() if line.startswith("WARNING")] == expected
