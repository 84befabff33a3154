"""`make demo` on a machine without the hardware tools: tools are checked before any step
runs, the software steps still run, one line names the skipped steps and the install
command, report.json records them; never a traceback."""

import json
from pathlib import Path

from click.testing import CliRunner

from axe_deploy import config, tools
from axe_deploy.cli import main
from axe_deploy.flow import run_flow

DEFAULT = Path(__file__).parents[1] / "flows" / "digits_mlp.toml"
SOFTWARE_AND_HW = ["build_models", "quantize", "export", "annotate", "validate", "lower", "fold", "rtl",
                   "simulate", "synthesize", "report"]


def test_missing_tools_name_the_steps(monkeypatch):
    cfg = config.load(DEFAULT)
    have = {"verilator"}
    monkeypatch.setattr(tools.shutil, "which", lambda p: f"/bin/{p}" if p in have else None)
    assert tools.missing_tool_steps(SOFTWARE_AND_HW, cfg) == {"synthesize": "yosys"}
    cfg["hardware"]["simulator"] = "icarus"  # asked for explicitly: verilator does not stand in
    assert tools.missing_tool_steps(SOFTWARE_AND_HW, cfg) == {"simulate": "iverilog+vvp", "synthesize": "yosys"}
    have = {"iverilog", "vvp", "yosys"}
    assert tools.missing_tool_steps(SOFTWARE_AND_HW, cfg) == {}
    assert tools.missing_tool_steps(["build_models", "report"], cfg) == {}
    notice = tools.skip_notice({"simulate": "verilator or iverilog+vvp", "synthesize": "yosys"})
    assert "\n" not in notice and "simulate, synthesize" in notice and tools.INSTALL_COMMAND in notice


def test_without_tools_the_software_steps_run_and_the_skip_is_recorded(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no simulator, no yosys
    lines = []
    out = tmp_path / "b"
    cfg = config.load(DEFAULT, ["flow.steps=" + json.dumps(SOFTWARE_AND_HW)])
    report = run_flow(cfg, out, progress=lines.append)
    skipped = {"simulate": "verilator or iverilog+vvp", "synthesize": "yosys"}
    assert report["skipped_steps"] == skipped
    assert json.loads((out / "report.json").read_text())["skipped_steps"] == skipped
    assert list(report["timings_s"]) == [s for s in SOFTWARE_AND_HW if s not in skipped]
    assert "rtl_sim" not in report["hardware"] and (out / "rtl" / "axe_top.v").is_file()
    assert lines[0].startswith("[axe-deploy] skipped steps simulate, synthesize")  # before any step
    from axe_deploy.cli import summary_table
    assert summary_table(report).splitlines()[-1] == tools.skip_notice(skipped)


def test_cli_without_tools_exits_cleanly(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    steps = json.dumps(["build_models", "quantize", "export", "annotate", "validate", "simulate", "report"])
    result = CliRunner().invoke(main, ["run", str(DEFAULT), "--out", str(tmp_path / "c"), "--set",
                                       f"flow.steps={steps}"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines()[-2].startswith("skipped steps simulate")
