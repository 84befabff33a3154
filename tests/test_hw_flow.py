"""The default flow through the hardware steps: RTL simulated bit-exact, synthesized, handed off."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from axe_deploy.flow import config
from axe_deploy.cli.main import main
from axe_deploy.flow.runner import run_flow

DEFAULT = Path(__file__).parents[1] / "flows" / "digits_mlp.toml"
TOOLS = [t for t in ("verilator", "yosys") if shutil.which(t) is None]
needs_tools = pytest.mark.skipif(bool(TOOLS), reason=f"missing {TOOLS}: run docker/install-system-tools.sh as root")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("hw") / "digits_mlp"
    cfg = config.load(DEFAULT, ["hardware.sim_vectors=0", "hardware.compare_widths=false",
                                "hardware.target_cycles=4096"])
    return out, run_flow(cfg, out, progress=lambda s: None)


@needs_tools
def test_rtl_is_bit_exact_with_annotated_widths(build):
    out, report = build
    hw = report["hardware"]
    sim = hw["rtl_sim"]  # the whole test split
    assert sim["vectors"] == report["metrics"]["test_samples"] == 360
    assert sim["bit_exact_vectors"] == 360 and sim["overflows"] == 0
    assert sim["cycles_measured"]["interval"] == sim["cycles_estimated"] <= 4096
    annotated = [l["accumulator_datatype"] for l in report["layers"]]
    assert [l["accumulator_datatype"] for l in hw["layers"]] == annotated
    for l in hw["layers"]:
        assert l["MW"] % l["SIMD"] == 0 and l["MH"] % l["PE"] == 0
        assert l["luts"] > 0 and l["ffs"] > 0
    assert report["dataflow"]["executor_argmax_equal_onnxruntime"] == 1.0
    # the executor's outputs are exact; onnxruntime's float32 Gemms are held to the flow's atol
    assert report["dataflow"]["executor_max_abs_diff_vs_onnxruntime"] <= report["config"]["validate"]["atol"]
    assert (out / "rtl" / "axe_top.v").is_file()


@needs_tools
def test_every_check_passed_and_worst_case_reaches_annotated_ranges(build):
    out, report = build
    assert json.loads((out / "report.json").read_text())["checks"] == report["checks"]
    assert {name: c["passed"] for name, c in report["checks"].items()} == {
        name: True for name in ("qonnx_vs_torch", "onnxruntime_vs_torch", "integer_overflow",
                                "executor_vs_onnxruntime", "rtl_bit_exact", "rtl_overflows", "rtl_worst_case")}
    worst = report["hardware"]["rtl_worst_case"]["layers"]
    assert [w["name"] for w in worst] == ["fc1", "fc2", "fc3"]
    for w, layer in zip(worst, report["layers"]):
        # the register reaches exactly the annotated endpoints, every row its exact extremes
        assert w["observed_range"] == w["annotated_range"] == layer["accumulator_range"]
        assert w["accumulator_bits"] == layer["exact_bits"] and w["wrong_outputs"] == w["overflows"] == 0
        assert w["vectors"] >= 2 and w["narrower_bits"] == layer["exact_bits"] - 1
        assert w["narrower_overflows"] > 0 and w["narrower_wrong_outputs"] > 0  # one bit fewer overflows


@needs_tools
def test_finn_and_vivado_handoff_files(build):
    out, report = build
    finn = out / "finn"
    folding = json.loads((finn / "folding_config.json").read_text())
    hw = report["hardware"]["layers"]
    assert [folding[f"MVAU_hls_{i}"]["PE"] for i in range(len(hw))] == [l["PE"] for l in hw]
    assert [folding[f"MVAU_hls_{i}"]["SIMD"] for i in range(len(hw))] == [l["SIMD"] for l in hw]
    # FINN would name fc3 (no activation, INT4 weights) MVAU_rtl_2 on its own: the handoff fixes the style
    special = json.loads((finn / "specialize_layers_config.json").read_text())["Defaults"]["preferred_impl_style"]
    assert special[special.index("hls") + 1][0] == "MVAU"
    cfg = json.loads((finn / "dataflow_build_config.json").read_text())
    steps = cfg["steps"]
    assert steps[0] == "step_qonnx_to_finn" and cfg["specialize_layers_config_file"] == "specialize_layers_config.json"
    assert steps.index("axe_finn_steps.step_axe_check_accumulators") == steps.index("step_minimize_bit_width") + 1
    acc = json.loads((finn / "accumulators.json").read_text())["layers"]
    assert [a["accumulator_datatype"] for a in acc] == [l["accumulator_datatype"] for l in report["layers"]]
    assert [a["accumulator_range"] for a in acc] == [l["accumulator_range"] for l in report["layers"]]
    assert "synth_design" in (out / "vivado" / "build.tcl").read_text()
    assert report["hardware"]["vivado"]["ran"] is (shutil.which("vivado") is not None)


def test_folding_that_does_not_divide_is_refused(tmp_path):
    out = tmp_path / "b"
    result = CliRunner().invoke(main, ["run", str(DEFAULT), "--out", str(out),
                                       "--set", 'hardware.folding.fc1={PE=3, SIMD=1}',
                                       "--set", 'flow.steps=["build_models","quantize","export","annotate","lower","fold"]'])
    assert result.exit_code != 0
    assert "fc1" in result.output and "PE=3" in result.output and "divide" in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_failed_check_exits_3_with_a_one_line_reason_and_a_complete_build(tmp_path):
    """A tolerance no export meets: the qonnx/onnxruntime checks fail, the folder is written."""
    out = tmp_path / "b"
    steps = '["build_models","quantize","export","annotate","validate","report"]'
    result = CliRunner().invoke(main, ["run", str(DEFAULT), "--out", str(out), "--set", "validate.atol=1e-12",
                                       "--set", f"flow.steps={steps}"])
    assert result.exit_code == 3, result.output
    report = json.loads((out / "report.json").read_text())
    m = report["metrics"]
    # which comparisons miss 1e-12 depends on the float kernels (qonnx can equal Brevitas
    # exactly); onnxruntime's QCDQ graph computes in another order and always misses it
    expected = [n for n, d in (("qonnx_vs_torch", m["qonnx_max_abs_diff"]),
                               ("onnxruntime_vs_torch", m["onnxruntime_max_abs_diff"])) if d > 1e-12]
    assert "onnxruntime_vs_torch" in expected
    assert [n for n, c in report["checks"].items() if not c["passed"]] == expected
    failed = [line for line in result.output.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and f"{len(expected)} of 3 checks" in failed[0]
    assert f"{expected[0]}: " in failed[0] and "> atol 1e-12" in failed[0]
    assert report["checks"]["integer_overflow"]["passed"] is True
    assert (out / "model.qonnx.onnx").is_file() and (out / "model.qcdq.onnx").is_file()
