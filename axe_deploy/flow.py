"""The flow: a readable list of named steps, each ``step(state, cfg) -> state``.

``run_flow`` checks the whole flow (keys, step names, model name) before it writes
anything, builds into a temporary sibling of the output folder and renames it at the
end: the output folder is complete or absent.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy import hw_flow, tools, zoo
from axe_deploy.annotate import AnnotateAccumulators, annotation_range, copy_annotations, read_annotation
from axe_deploy.config import FlowConfigError, layer_values
from axe_deploy.export import export_model
from axe_deploy.graph import quant_layers
from axe_deploy.validate import accuracy, integer_check, run_onnxruntime, run_qonnx

QONNX_FILE = "model.qonnx.onnx"
QCDQ_FILE = "model.qcdq.onnx"


@dataclass
class BuildState:
    """What the steps pass along: the build folder, the models and the report so far."""

    out: Path
    bundle: zoo.ModelBundle | None = None
    ptq: dict = field(default_factory=dict)
    unconstrained_bits: dict = field(default_factory=dict)
    hw: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)


def step_build_models(state: BuildState, cfg: dict) -> BuildState:
    q = cfg["quant"]
    state.bundle = zoo.build(cfg["model"]["name"], weight_bits=q["weight_bits"], act_bits=q["act_bits"],
                             input_bits=q["input_bits"], layer_weight_bits=layer_values(q, "weight_bits"),
                             seed=cfg["flow"]["seed"], retrain=cfg["model"]["retrain"],
                             calibration_samples=q["calibration_samples"])
    return state


def step_quantize(state: BuildState, cfg: dict) -> BuildState:
    """Calibrate activations and PTQ layer by layer (``ModelBundle.quantize``). With a target
    P anywhere, the same algorithm also runs unconstrained on a copy: the hardware report
    compares against the accumulator widths that quantization would need."""
    b, q = state.bundle, cfg["quant"]
    unconstrained_model = copy.deepcopy(b.quant_model)
    state.ptq = b.quantize(q, seed=cfg["flow"]["seed"])
    if q["accumulator_bits"] or layer_values(q, "accumulator_bits"):
        free = dict(q, accumulator_bits=0, layers={p: {k: v for k, v in s.items() if k != "accumulator_bits"}
                                                   for p, s in q["layers"].items()})
        infos = b.quantize(free, model=unconstrained_model, seed=cfg["flow"]["seed"], progress=False)
    else:
        infos = state.ptq
    # one-stage widths: what the unconstrained quantization needs without tiles
    state.unconstrained_bits = {name: info.outer_bits for name, info in infos.items() if info is not None}
    if b.metric_name == "accuracy":  # cheap for the classifiers; the headline compares it
        state.report["unconstrained"] = {
            "accuracy": b.evaluate(unconstrained_model if infos is not state.ptq else b.quant_model),
            "accumulator_bits": dict(state.unconstrained_bits)}
    return state


def step_export(state: BuildState, cfg: dict) -> BuildState:
    export_model(state.bundle.quant_model, state.bundle.test_x, state.out / QONNX_FILE, state.out / QCDQ_FILE)
    state.artifacts.update(qonnx=QONNX_FILE, qcdq=QCDQ_FILE)
    return state


def step_annotate(state: BuildState, cfg: dict) -> BuildState:
    q = cfg["quant"]
    tiles = {"*": q["tile_size"], **layer_values(q, "tile_size")}
    targets = {"*": q["accumulator_bits"], **layer_values(q, "accumulator_bits")}
    skipped = {p: 0 for p, s in q["layers"].items() if s.get("skip")}
    qonnx = ModelWrapper(str(state.out / QONNX_FILE))
    qonnx = qonnx.transform(AnnotateAccumulators(tiles, {**targets, **skipped}))
    qonnx.save(str(state.out / QONNX_FILE))
    qcdq = ModelWrapper(str(state.out / QCDQ_FILE))
    copy_annotations(qonnx, qcdq)
    qcdq.save(str(state.out / QCDQ_FILE))
    return state


def step_validate(state: BuildState, cfg: dict) -> BuildState:
    b = state.bundle
    x, y = b.test_x, b.test_y.numpy()
    with torch.no_grad():
        float_out = b.float_model(x).numpy()
        quant_out = b.quant_model(x).numpy()
    qonnx = ModelWrapper(str(state.out / QONNX_FILE))
    context = run_qonnx(qonnx, x.numpy())
    qonnx_out = context[qonnx.graph.output[0].name]
    ort_out = run_onnxruntime(state.out / QCDQ_FILE, x.numpy())
    state.report["metrics"] = {
        "float_accuracy": accuracy(float_out, y),
        "quant_accuracy": accuracy(quant_out, y),
        "qonnx_accuracy": accuracy(qonnx_out, y),
        "onnxruntime_accuracy": accuracy(ort_out, y),
        "qonnx_max_abs_diff": float(np.abs(qonnx_out - quant_out).max()),
        "onnxruntime_max_abs_diff": float(np.abs(ort_out - quant_out).max()),
        "test_samples": int(len(y)),
    }
    checks = {c.name: c for c in integer_check(qonnx, context)}
    layers = []
    for layer in quant_layers(qonnx):
        props = read_annotation(qonnx.graph.node[layer.node_index])
        check = checks[layer.layer_name]
        info = state.ptq.get(layer.layer_name)
        entry = {
            "name": layer.layer_name, "op": layer.op, "M": layer.M, "K": layer.K,
            "weight_datatype": props["weight_datatype"], "input_datatype": props["input_datatype"],
            "tile_size": int(props["tile_size"]),
            "accumulator_datatype": props["accumulator_datatype"],
            "accumulator_range": list(annotation_range(props)),
            "datatype_bound_bits": int(props["datatype_bound_bits"]),
            "exact_bits": check.exact_bits,
            "overflow_free": check.overflow_free,
            "observed_range": list(check.observed_range),
            "target_accumulator_bits": int(props.get("target_accumulator_bits", 0)) or None,
            "outer_accumulator_datatype": props.get("outer_accumulator_datatype"),
            "algorithm": info.algorithm if info else "rtn (skipped)",
            "ptq_seconds": round(info.seconds, 4) if info else 0.0,
        }
        if check.detail:
            entry["overflow_detail"] = check.detail
        layers.append(entry)
    state.report["layers"] = layers
    atol = cfg["validate"]["atol"]
    m = state.report["metrics"]
    m["within_atol"] = bool(m["qonnx_max_abs_diff"] <= atol and m["onnxruntime_max_abs_diff"] <= atol)
    return state


def step_evaluate(state: BuildState, cfg: dict) -> BuildState:
    """Score the float and the quantized model with the model's own metric (accuracy,
    perplexity): for models the export and hardware steps do not take, such as the LMs."""
    b = state.bundle
    state.report["evaluation"] = {"metric": b.metric_name, "higher_is_better": b.higher_is_better,
                                  "float": b.evaluate(b.float_model), "quantized": b.evaluate(b.quant_model)}
    return state


def step_report(state: BuildState, cfg: dict) -> BuildState:
    if state.ptq:
        state.report["ptq"] = [
            {"name": name, "algorithm": i.algorithm, "weight_bits": i.weight_bits, "input_bits": i.input_bits,
             "input_signed": i.input_signed, "tile_size": i.tile_size or 0, "target_accumulator_bits": i.accumulator_bits,
             "exact_bits": i.exact_bits, "outer_bits": i.outer_bits, "seconds": round(i.seconds, 3)}
            for name, i in state.ptq.items() if i is not None]
    state.report["artifacts"] = dict(state.artifacts, report="report.json")
    (state.out / "report.json").write_text(json.dumps(state.report, indent=2) + "\n")
    return state


STEPS = {
    "build_models": step_build_models,
    "quantize": step_quantize,
    "export": step_export,
    "annotate": step_annotate,
    "validate": step_validate,
    "evaluate": step_evaluate,
    "lower": hw_flow.step_lower,
    "fold": hw_flow.step_fold,
    "rtl": hw_flow.step_rtl,
    "simulate": hw_flow.step_simulate,
    "synthesize": hw_flow.step_synthesize,
    "handoff": hw_flow.step_handoff,
    "report": step_report,
}
SOFTWARE_STEPS = ["build_models", "quantize", "export", "annotate", "validate", "report"]
DEFAULT_STEPS = SOFTWARE_STEPS[:-1] + ["lower", "fold", "rtl", "simulate", "synthesize", "handoff", "report"]


def check_flow(cfg: dict, where: str) -> list[str]:
    """Everything that can be checked before a step runs; returns the step list."""
    steps = cfg["flow"]["steps"] or DEFAULT_STEPS
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise FlowConfigError(f"{where}: unknown step(s) {unknown} in 'flow.steps'; "
                              f"known steps: {', '.join(STEPS)}")
    if cfg["model"]["name"] not in zoo.names():
        raise FlowConfigError(f"{where}: unknown model '{cfg['model']['name']}' in 'model.name'; "
                              f"known models: {', '.join(zoo.names())}")
    return steps


def run_flow(cfg: dict, out: str | Path, where: str = "flow", progress=print) -> dict:
    """Run the flow into ``out``; returns the report. ``out`` is replaced only on success."""
    steps = check_flow(cfg, where)
    skipped = tools.missing_tool_steps(steps, cfg)
    steps = [s for s in steps if s not in skipped]
    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    state = BuildState(out=tmp, report={"flow": cfg["flow"]["name"], "model": cfg["model"]["name"],
                                        "config": cfg, "timings_s": {}})
    if skipped:
        progress(f"[axe-deploy] {tools.skip_notice(skipped)}")
        state.report["skipped_steps"] = skipped
    try:
        for name in steps:
            start = time.perf_counter()
            progress(f"[axe-deploy] {name} ...")
            state = STEPS[name](state, cfg)
            state.report["timings_s"][name] = round(time.perf_counter() - start, 3)
        if "report" in steps:  # again, now that every step's time is known
            step_report(state, cfg)
        shutil.rmtree(out, ignore_errors=True)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return state.report
