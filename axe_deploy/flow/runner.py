"""The flow: a readable table of named steps, each ``step(state, cfg) -> state``, and the
runner that checks a whole flow before it writes anything and then runs it.

The build happens in a temporary sibling of the output folder that replaces it only at the
end: the output folder is complete or absent. ``first``/``last`` (``axe-deploy run --from
STEP --to STEP``, FINN's start_step/stop_step) run a slice of the flow; a slice that starts
late resumes from the earlier build in the output folder, whose graphs it reads back and
whose outputs of the steps it reruns it drops.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy import zoo
from axe_deploy.dataflow.hw_bridge import hw_layers
from axe_deploy.dataflow.lower import lower
from axe_deploy.flow import compilers, hardware, software
from axe_deploy.flow.config import FlowConfig, FlowConfigError, check_export_bits, model_label
from axe_deploy.flow.outdir import MARKER, build_folder
from axe_deploy.flow.report import REPORT_FILE, step_report, write_report
from axe_deploy.flow.state import DATAFLOW_FILE, QCDQ_FILE, QONNX_FILE, BuildState
from axe_deploy.graph import foreign
from axe_deploy.hw import tools
from axe_deploy.hw.verilog import write_rtl
from axe_deploy.ptq.device import resolve_device
from axe_deploy.quant.bundle import load_model_function

STEPS = {
    # software
    "import_onnx": software.step_import_onnx,
    "build_models": software.step_build_models,
    "quantize": software.step_quantize,
    "export": software.step_export,
    "annotate": software.step_annotate,
    "validate": software.step_validate,
    "evaluate": software.step_evaluate,
    # hardware
    "lower": hardware.step_lower,
    "fold": hardware.step_fold,
    "rtl": hardware.step_rtl,
    "simulate": hardware.step_simulate,
    "synthesize": hardware.step_synthesize,
    "place_route": hardware.step_place_route,  # ECP5 bitstream with open tools (pip install -e '.[fpga]')
    "handoff": hardware.step_handoff,
    # compilers, opt-in
    "finn": compilers.step_finn,  # FINN's Vivado-free steps in FINN's venv
    "hls4ml": compilers.step_hls4ml,  # hls4ml's C model (pip install -e '.[hls4ml]')
    "report": step_report,
}
SOFTWARE_STEPS = ["build_models", "quantize", "export", "annotate", "validate", "report"]
DEFAULT_STEPS = SOFTWARE_STEPS[:-1] + ["lower", "fold", "rtl", "simulate", "synthesize", "handoff", "report"]
# A [model] onnx flow: the same steps from annotate on.
ONNX_STEPS = ["import_onnx"] + DEFAULT_STEPS[DEFAULT_STEPS.index("annotate"):]
MODEL_STEPS = ("build_models", "quantize", "export", "evaluate")  # need a PyTorch model
# What each step leaves in the build folder (the graphs are written by the runner at the end).
STEP_FILES = {"export": [QONNX_FILE, QCDQ_FILE], "import_onnx": [QONNX_FILE, QCDQ_FILE], "lower": [DATAFLOW_FILE],
              "rtl": ["rtl"], "simulate": ["rtl_worst_case"], "synthesize": ["rtl_variants"], "place_route": ["fpga"],
              "handoff": ["finn", "hls4ml", "vivado"], "report": [REPORT_FILE]}


def check_model_source(cfg: FlowConfig, where: str, steps: list[str]) -> None:
    """Before any step runs: the module imports and has the function; the onnx file reads,
    every layer is a quantized layer with integer inputs, and, when the flow lowers it,
    the annotated graph lowers (an unsupported op stops here, named with its node)."""
    m, flow_dir = cfg.model, Path(where).parent
    if m.module:
        load_model_function(m.module, flow_dir)
        return
    if not m.onnx:
        if "import_onnx" in steps:
            raise FlowConfigError(f"{where}: step 'import_onnx' needs 'model.onnx'")
        return
    needs_model = [s for s in steps if s in MODEL_STEPS]
    if needs_model:
        raise FlowConfigError(f"{where}: step(s) {needs_model} need a PyTorch model; a 'model.onnx' flow runs "
                              f"{', '.join(ONNX_STEPS)}")
    for key in ("inputs", "targets"):
        path = getattr(cfg.data, key)
        if path and not (flow_dir / path).is_file():
            raise FlowConfigError(f"{where}: 'data.{key}' = {path!r}: file not found "
                                  f"(paths are relative to the flow file)")
    model = software.annotate_accumulators(foreign.load_graph(flow_dir / m.onnx), cfg.quant)
    if "lower" in steps:
        lower(model)


def check_flow(cfg: FlowConfig, where: str) -> list[str]:
    """Everything that can be checked before a step runs; returns the step list."""
    steps = cfg.flow.steps or (ONNX_STEPS if cfg.model.onnx else DEFAULT_STEPS)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise FlowConfigError(f"{where}: unknown step(s) {unknown} in 'flow.steps'; "
                              f"known steps: {', '.join(STEPS)}")
    if "export" in steps:
        check_export_bits(cfg, where)
    check_model_source(cfg, where, steps)
    if not (cfg.model.module or cfg.model.onnx) and cfg.model.name not in zoo.names():
        raise FlowConfigError(f"{where}: unknown model '{cfg.model.name}' in 'model.name'; "
                              f"known models: {', '.join(zoo.names())}")
    try:
        resolve_device(cfg.quant.device)
    except ValueError as e:
        raise FlowConfigError(f"{where}: {e}") from None
    return steps


def slice_steps(steps: list[str], first: str | None, last: str | None, where: str) -> list[str]:
    """``steps`` from ``first`` to ``last`` (both included; None: the flow's own ends)."""
    for flag, name in (("--from", first), ("--to", last)):
        if name is not None and name not in steps:
            raise FlowConfigError(f"{where}: {flag} {name}: not a step of this flow; its steps: {', '.join(steps)}")
    i = steps.index(first) if first else 0
    j = steps.index(last) + 1 if last else len(steps)
    if i >= j:
        raise FlowConfigError(f"{where}: --from {first} comes after --to {last} in this flow")
    return steps[i:j]


def resume(state: BuildState, earlier: Path, cfg: FlowConfig, steps: list[str], run: list[str], where: str) -> BuildState:
    """The state an earlier build in ``earlier`` left for ``run``, a slice of the flow's
    ``steps``: its report and graphs read back, its outputs copied except those of the steps
    that run again, its checks kept only for the steps before the slice."""
    first = run[0]
    earliest = "annotate" if cfg.model.onnx else "lower"
    order = ONNX_STEPS if cfg.model.onnx else DEFAULT_STEPS
    too_early = first in MODEL_STEPS or (first in order and order.index(first) < order.index(earliest))
    if too_early:
        raise FlowConfigError(f"{where}: --from {first}: a resumed build starts at '{earliest}' or later (the "
                              f"quantized model is not kept in the build folder); run the whole flow instead")
    if not (earlier / MARKER).is_file() or not (earlier / REPORT_FILE).is_file():
        raise FlowConfigError(f"{where}: --from {first} resumes an earlier build, but --out {earlier} holds none "
                              f"(no {REPORT_FILE}); run the flow without --from first")
    rerun = {f for s in run for f in STEP_FILES.get(s, [])}
    for item in earlier.iterdir():
        if item.name not in rerun and item.name != MARKER:
            (shutil.copytree if item.is_dir() else shutil.copy2)(item, state.out / item.name)
    state.report.update({k: v for k, v in json.loads((earlier / REPORT_FILE).read_text()).items()
                         if k not in ("timings_s", "config")})
    state.report["resumed_from"] = first
    # a check of a step that runs again, or of one after it, says nothing about this build
    later = set(steps[steps.index(first):])
    owners = state.report.get("check_steps", {})
    state.report["checks"] = {k: v for k, v in state.report.get("checks", {}).items() if owners.get(k) not in later}
    state.unconstrained_bits = dict(state.report.get("unconstrained", {}).get("accumulator_bits", {}))
    if cfg.model.onnx:
        software.step_import_onnx(state, cfg)  # [data], and the graphs as the first run made them
    else:
        software.step_build_models(state, cfg)  # the test split; its quantized model is not used
    for name, attr in ((QONNX_FILE, "qonnx"), (QCDQ_FILE, "qcdq"), (DATAFLOW_FILE, "dataflow")):
        if name not in rerun and (earlier / name).is_file():
            setattr(state, attr, ModelWrapper(str(earlier / name)))
    if state.dataflow is not None:
        state.layers = hw_layers(state.dataflow)
        state.executor = hardware.run_executor(state.dataflow, state.test_data()[0])[1]
        if "rtl" not in run and any(s in run for s in ("simulate", "synthesize", "place_route", "handoff")):
            state.design = write_rtl(state.layers, state.out / "rtl")  # the same files; the design object
    return state


def run_flow(cfg: FlowConfig, out: str | Path, where: str = "flow", progress=print, force: bool = False,
             first: str | None = None, last: str | None = None) -> dict:
    """Run the flow (steps ``first`` to ``last``) into ``out``; returns the report. ``out`` is
    replaced only on success, and only if it is absent, empty or an earlier build (any
    folder with ``force``, never a project or home folder: :mod:`axe_deploy.flow.outdir`)."""
    all_steps = check_flow(cfg, where)
    steps = slice_steps(all_steps, first, last, where)
    resuming = steps[0] != all_steps[0]
    skipped = tools.missing_tool_steps(steps, cfg.hardware.simulator)
    steps = [s for s in steps if s not in skipped]
    earlier = Path(out).expanduser().resolve()
    with build_folder(out, flow=cfg.flow.name, force=force) as tmp:
        state = BuildState(out=tmp, flow_dir=Path(where).parent,
                           report={"flow": cfg.flow.name, "model": model_label(cfg), "config": cfg.as_dict(),
                                   "timings_s": {}})
        if resuming:
            progress(f"[axe-deploy] resuming {earlier} from '{steps[0]}' ...")
            state = resume(state, earlier, cfg, all_steps, steps, where)
        if skipped:
            progress(f"[axe-deploy] {tools.skip_notice(skipped)}")
            state.report["skipped_steps"] = skipped
        for name in steps:
            start = time.perf_counter()
            progress(f"[axe-deploy] {name} ...")
            before = set(state.report.get("checks", {}))
            state = STEPS[name](state, cfg)
            state.report["timings_s"][name] = round(time.perf_counter() - start, 3)
            owners = state.report.setdefault("check_steps", {})
            owners.update({check: name for check in set(state.report.get("checks", {})) - before})
        state.write_models()
        if "report" in all_steps:  # now that every step's time is known; a slice's too, for the next --from
            step_report(state, cfg)
            write_report(state)
    return state.report
