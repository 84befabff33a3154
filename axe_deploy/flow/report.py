"""The report step and the warnings the summary shows above the checks."""

from __future__ import annotations

import json

from axe_deploy.flow.state import DATAFLOW_FILE, QCDQ_FILE, QONNX_FILE, BuildState

REPORT_FILE = "report.json"
MODEL_ARTIFACTS = {QONNX_FILE: "qonnx", QCDQ_FILE: "qcdq", DATAFLOW_FILE: "dataflow"}

# A quantized model this much worse than the float one gets a warning in report.json and
# the summary: 5 points of accuracy, or 5 % more perplexity (metrics where lower is better).
ACCURACY_DROP_WARNING = 0.05
LOWER_IS_BETTER_RATIO_WARNING = 1.05


def metric_warnings(report: dict) -> list[str]:
    """Warnings about the quantized metric against the float one (empty when it held up)."""
    m, ev = report.get("metrics"), report.get("evaluation")
    if m:
        name, higher, ref, got = "accuracy", True, m["float_accuracy"], m["quant_accuracy"]
    elif ev:
        name, higher, ref, got = ev["metric"], ev["higher_is_better"], ev["float"], ev["quantized"]
    else:
        return []
    if ref is None or got is None:  # a foreign graph has no float model to compare with
        return []
    fix = "raise quant.accumulator_bits or the bit widths, or try another quant.algorithm"
    if higher and ref - got > ACCURACY_DROP_WARNING:
        return [f"quantized {name} {got:.4f} is {100 * (ref - got):.1f} points below float {ref:.4f} "
                f"(more than {100 * ACCURACY_DROP_WARNING:.0f}); {fix}"]
    if not higher and got > LOWER_IS_BETTER_RATIO_WARNING * ref:
        return [f"quantized {name} {got:.4f} is {100 * (got / ref - 1):.1f}% above float {ref:.4f} "
                f"(more than {100 * (LOWER_IS_BETTER_RATIO_WARNING - 1):.0f}%); {fix}"]
    return []


def handoff_warnings(report: dict) -> list[str]:
    """A handoff that was not written is said in the summary, not only in report.json."""
    return [f"{why}; the other outputs are complete" for why in
            (v.get("skipped") for v in report.get("handoff", {}).values() if isinstance(v, dict)) if why]


def step_report(state: BuildState, cfg: dict) -> BuildState:
    """Complete the report: warnings, the PTQ record, the artifacts. The runner writes it
    (report.json) when the build ends, with every step's time."""
    state.report["warnings"] = metric_warnings(state.report) + handoff_warnings(state.report)
    if state.ptq:
        state.report["ptq"] = [
            {"name": name, "algorithm": i.algorithm, "weight_bits": i.weight_bits, "input_bits": i.input_bits,
             "input_signed": i.input_signed, "tile_size": i.tile_size or 0, "target_accumulator_bits": i.accumulator_bits,
             "exact_bits": i.exact_bits, "outer_bits": i.outer_bits, "seconds": round(i.seconds, 3)}
            for name, i in state.ptq.items() if i is not None]
    models = {MODEL_ARTIFACTS[name]: name for name in state.models()}
    state.report["artifacts"] = dict(models, **state.artifacts, report=REPORT_FILE)
    return state


def write_report(state: BuildState) -> None:
    (state.out / REPORT_FILE).write_text(json.dumps(state.report, indent=2) + "\n")
