"""The build state lives in memory: no step reads a file that another step of the same
build wrote, onnxruntime runs once per build on the test inputs, and ``--from``/``--to``
resume an earlier build without keeping its stale verdicts."""

from __future__ import annotations

import builtins
import io
import json
from pathlib import Path

import pytest

from axe_deploy.flow import config, runner
from axe_deploy.flow import state as state_module
from axe_deploy.hw import tools

pytestmark = pytest.mark.slow


class FileLedger:
    """Which step wrote each file of the build folder, and which step then read it."""

    def __init__(self):
        self.step = None
        self.writer: dict[Path, str] = {}
        self.crossings: list[tuple[str, str, str]] = []  # (file, writer, reader)

    def track(self, opener):
        def tracked(file, mode="r", *args, **kwargs):
            if isinstance(file, (str, Path)) and self.step is not None:
                path = Path(file).resolve()
                if any(c in mode for c in "wax+"):
                    self.writer[path] = self.step
                elif path in self.writer and self.writer[path] != self.step:
                    self.crossings.append((str(path), self.writer[path], self.step))
            return opener(file, mode, *args, **kwargs)
        return tracked

    def wrap(self, name, step):
        def run(state, cfg):
            self.step = name
            try:
                return step(state, cfg)
            finally:
                self.step = None
        return run


def _flow() -> config.FlowConfig:
    cfg = config.load(Path(__file__).parents[1] / "flows" / "digits_mlp.toml")
    cfg.hardware.sim_vectors, cfg.hardware.compare_widths = 8, False
    return cfg


def test_no_step_reads_another_steps_file_and_onnxruntime_runs_once(tmp_path, monkeypatch):
    ledger = FileLedger()
    for name, step in list(runner.STEPS.items()):
        monkeypatch.setitem(runner.STEPS, name, ledger.wrap(name, step))
    monkeypatch.setattr(builtins, "open", ledger.track(builtins.open))
    monkeypatch.setattr(io, "open", ledger.track(io.open))
    # qonnx's executor runs single standard nodes in onnxruntime too: count whole-graph runs
    runs = []
    real_run = state_module.run_onnxruntime

    def counting_run(model, x, *args, **kwargs):
        runs.append((ledger.step, len(x)))
        return real_run(model, x, *args, **kwargs)

    monkeypatch.setattr(state_module, "run_onnxruntime", counting_run)
    cfg = _flow()
    report = runner.run_flow(cfg, tmp_path / "b", progress=lambda s: None)
    ran = list(report["timings_s"])
    assert ran == [s for s in runner.DEFAULT_STEPS if s not in report.get("skipped_steps", [])]
    assert len(ledger.writer) > 0, "the ledger saw no file written: it does not track the build"
    assert ledger.crossings == [], f"files read back by another step: {ledger.crossings}"
    assert runs == [("validate", report["metrics"]["test_samples"])], f"onnxruntime runs (step, inputs): {runs}"
    for name in ("model.qonnx.onnx", "model.qcdq.onnx", "model.dataflow.onnx", "report.json"):
        assert (tmp_path / "b" / name).is_file()


def test_from_to_resumes_an_earlier_build(tmp_path):
    out = tmp_path / "b"
    cfg = _flow()
    cfg.flow.steps = ["build_models", "quantize", "export", "annotate", "validate", "lower", "fold", "rtl",
                            "simulate", "report"]
    if "simulate" in tools.missing_tool_steps(cfg.flow.steps, cfg.hardware.simulator):
        pytest.skip("no RTL simulator: " + tools.skip_notice(["simulate"]))
    first = runner.run_flow(cfg, out, progress=lambda s: None)
    assert first["checks"]["rtl_bit_exact"]["passed"]
    # new folding, RTL again, no simulation: the earlier RTL verdicts no longer hold
    cfg.hardware.folding = {"fc1": {"PE": 2, "SIMD": 2}}
    second = runner.run_flow(cfg, out, progress=lambda s: None, first="fold", last="rtl")
    assert second["resumed_from"] == "fold"
    assert list(second["timings_s"]) == ["fold", "rtl"]
    assert "rtl_bit_exact" not in second["checks"] and "rtl_worst_case" not in second["checks"]
    assert second["checks"]["executor_vs_onnxruntime"] == first["checks"]["executor_vs_onnxruntime"]
    fc1 = next(l for l in second["hardware"]["layers"] if l["name"] == "fc1")
    assert (fc1["PE"], fc1["SIMD"]) == (2, 2)
    assert json.loads((out / "report.json").read_text())["resumed_from"] == "fold"
    assert (out / "rtl").is_dir() and (out / "model.qonnx.onnx").is_file()
    # and the simulation of the new RTL from there on
    third = runner.run_flow(cfg, out, progress=lambda s: None, first="simulate")
    assert third["checks"]["rtl_bit_exact"]["passed"]
    assert third["hardware"]["rtl_sim"]["cycles_estimated"] == third["hardware"]["cycles_per_inference_estimated"]


def test_from_before_lower_is_refused_for_a_model_flow(tmp_path):
    with pytest.raises(config.FlowConfigError, match="starts at 'lower' or later"):
        runner.run_flow(_flow(), tmp_path / "b", progress=lambda s: None, first="validate")
    assert not (tmp_path / "b").exists()
    with pytest.raises(config.FlowConfigError, match="not a step of this flow"):
        runner.run_flow(_flow(), tmp_path / "b", progress=lambda s: None, first="place")
