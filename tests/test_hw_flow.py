"""The default flow through the hardware steps: RTL simulated bit-exact, synthesized, handed off."""

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from axe_deploy import config
from axe_deploy.cli import main
from axe_deploy.flow import run_flow

DEFAULT = Path(__file__).parents[1] / "flows" / "digits_mlp.toml"
TOOLS = [t for t in ("verilator", "yosys") if shutil.which(t) is None]
needs_tools = pytest.mark.skipif(bool(TOOLS), reason=f"missing {TOOLS}: run docker/install-system-tools.sh as root")


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("hw") / "digits_mlp"
    cfg = config.load(DEFAULT, ["hardware.sim_vectors=24", "hardware.compare_widths=false",
                                "hardware.target_cycles=4096"])
    return out, run_flow(cfg, out, progress=lambda s: None)


@needs_tools
def test_rtl_is_bit_exact_with_annotated_widths(build):
    out, report = build
    hw = report["hardware"]
    sim = hw["rtl_sim"]
    assert sim["vectors"] == 24 and sim["bit_exact_vectors"] == 24 and sim["overflows"] == 0
    assert sim["cycles_measured"]["interval"] == sim["cycles_estimated"] <= 4096
    annotated = [l["accumulator_datatype"] for l in report["layers"]]
    assert [l["accumulator_datatype"] for l in hw["layers"]] == annotated
    for l in hw["layers"]:
        assert l["MW"] % l["SIMD"] == 0 and l["MH"] % l["PE"] == 0
        assert l["luts"] > 0 and l["ffs"] > 0
    assert report["dataflow"]["executor_argmax_equal_onnxruntime"] == 1.0
    assert (out / "rtl" / "axe_top.v").is_file()


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
