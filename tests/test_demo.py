"""`make demo` on a machine without the hardware tools: tools are checked before any step
runs, the software steps still run, one line names the skipped steps and the install
command, report.json records them; never a traceback."""

import json
from pathlib import Path

from click.testing import CliRunner

from axe_deploy.flow import config

from axe_deploy.hw import tools
from axe_deploy.cli.main import main

DEFAULT = Path(__file__).parents[1] / "flows" / "digits_mlp.toml"
SOFTWARE_AND_HW = ["build_models", "quantize", "export", "annotate", "validate", "lower", "fold", "rtl",
                   "simulate", "synthesize", "report"]


def test_missing_tools_name_the_steps(monkeypatch):
    cfg = config.load(DEFAULT)
    have = {"verilator"}
    monkeypatch.setattr(tools.shutil, "which", lambda p: f"/bin/{p}" if p in have else None)
    assert tools.missing_tool_steps(SOFTWARE_AND_HW, cfg.hardware.simulator) == {"synthesize": "yosys"}
    cfg.hardware.simulator = "icarus"  # asked for explicitly: verilator does not stand in
    assert tools.missing_tool_steps(SOFTWARE_AND_HW, cfg.hardware.simulator) == {"simulate": "iverilog+vvp", "synthesize": "yosys"}
    have = {"iverilog", "vvp", "yosys"}
    assert tools.missing_tool_steps(SOFTWARE_AND_HW, cfg.hardware.simulator) == {}
    assert tools.missing_tool_steps(["build_models", "report"], cfg.hardware.simulator) == {}
    notice = tools.skip_notice({"simulate": "verilator or iverilog+vvp", "synthesize": "yosys"})
    assert "\n" not in notice and "simulate, synthesize" in notice and tools.INSTALL_COMMAND in notice


def test_without_tools_the_software_steps_run_and_the_skip_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no simulator, no yosys
    out = tmp_path / "b"
    result = CliRunner().invoke(main, ["run", str(DEFAULT), "--out", str(out), "--set",
                                       "flow.steps=" + json.dumps(SOFTWARE_AND_HW)])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    skipped = {"simulate": "verilator or iverilog+vvp", "synthesize": "yosys"}
    notice = tools.skip_notice(skipped)
    lines = result.output.splitlines()
    # said before any step runs, and again as the summary's last line
    assert lines.index(f"[axe-deploy] {notice}") < lines.index("[axe-deploy] build_models ...")
    assert lines[-2:] == [notice, f"wrote {out}/"]
    report = json.loads((out / "report.json").read_text())
    assert report["skipped_steps"] == skipped
    assert list(report["timings_s"]) == [s for s in SOFTWARE_AND_HW if s not in skipped]
    assert "rtl_sim" not in report["hardware"] and (out / "rtl" / "axe_top.v").is_file()


def test_summary_ends_with_the_headline():
    from axe_deploy.cli.main import summary_table
    layers = [{"name": "fc1", "op": "Gemm", "M": 4, "K": 64, "weight_datatype": "INT4", "input_datatype": "UINT8",
               "tile_size": 0, "accumulator_datatype": "INT13", "accumulator_range": [-4080, 4080],
               "datatype_bound_bits": 19, "exact_bits": 13, "overflow_free": True, "target_accumulator_bits": 13},
              {"name": "fc2", "op": "Gemm", "M": 4, "K": 256, "weight_datatype": "INT4", "input_datatype": "UINT4",
               "tile_size": 32, "accumulator_datatype": "INT10", "outer_accumulator_datatype": "INT13",
               "accumulator_range": [-510, 510], "datatype_bound_bits": 17, "exact_bits": 10,
               "overflow_free": True, "target_accumulator_bits": 10}]
    report = {"flow": "f", "model": "m", "layers": layers, "timings_s": {},
              "metrics": {"float_accuracy": 0.9694, "quant_accuracy": 0.9639, "qonnx_accuracy": 0.9639,
                          "onnxruntime_accuracy": 0.9639, "qonnx_max_abs_diff": 0.0, "onnxruntime_max_abs_diff": 0.0},
              "unconstrained": {"accuracy": 0.9694, "accumulator_bits": {"fc1": 16, "fc2": 15}},
              "hardware": {"synth": {"mvau_luts": 4074}, "synth_acc32": {"mvau_luts": 5900},
                           "synth_unconstrained": {"mvau_luts": 4397}, "lut_ratio_vs_acc32": 4074 / 5900,
                           "lut_ratio_vs_unconstrained": 4074 / 4397}}
    assert summary_table(report).splitlines()[-3:] == [
        "accuracy: float 0.9694 / unconstrained 0.9694 / AXE 0.9639",
        "accumulators, unconstrained -> AXE: fc1 INT16 -> INT13, fc2 INT15 -> INT10+INT13 (T=32)",
        "MVAU LUTs: AXE 4074 vs 32-bit 5900 (0.69x) vs unconstrained 4397 (0.93x)"]


def test_sweep_ignores_the_default_flows_per_layer_targets():
    """The default flow sets a target P per layer; a sweep sets P (and T) itself."""
    from axe_deploy.flow import sweep
    cfg = config.load(DEFAULT, ["quant.calibration_samples=256"])
    assert cfg.quant.layers["fc1"]["accumulator_bits"] == 13
    point = sweep.run_point(cfg, "rtn", None, 0, 0)
    # round-to-nearest, unconstrained: P is its exact width, above the flow's per-layer targets
    assert point["exact_bits"] == point["P"] > max(s["accumulator_bits"] for s in cfg.quant.layers.values())
