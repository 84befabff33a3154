"""The flow: a readable list of named steps, each ``step(state, cfg) -> state``.

``run_flow`` checks the whole flow (keys, step names, model name) before it writes
anything, builds into a temporary sibling of the output folder and renames it at the
end: the output folder is complete or absent.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.flow import checks, hardware as hw_flow

from axe_deploy.graph import foreign

from axe_deploy.hw import tools

from axe_deploy import zoo
from axe_deploy.flow import compilers as handoff_steps
from axe_deploy.graph.annotate import AnnotateAccumulators, annotation_range, copy_annotations, read_annotation
from axe_deploy.core.layer_glob import for_every_layer, layer_values
from axe_deploy.flow.config import FlowConfigError, check_export_bits, model_label
from axe_deploy.dataflow.lower import lower
from axe_deploy.quant.export import export_model, symbolic_batch
from axe_deploy.graph.layers import quant_layers
from axe_deploy.quant.bundle import ModelBundle, build_user_bundle, load_model_function
from axe_deploy.flow.outdir import build_folder
from axe_deploy.ptq.device import resolve_device
from axe_deploy.graph.validate import accuracy, integer_check, run_onnxruntime, run_qonnx

QONNX_FILE = "model.qonnx.onnx"
QCDQ_FILE = "model.qcdq.onnx"


@dataclass
class BuildState:
    """What the steps pass along: the build folder, the models and the report so far."""

    out: Path
    bundle: ModelBundle | None = None
    ptq: dict = field(default_factory=dict)
    unconstrained_bits: dict = field(default_factory=dict)
    hw: dict = field(default_factory=dict)
    report: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)
    flow_dir: Path = Path(".")  # relative paths in the flow file are relative to it
    inputs: np.ndarray | None = None  # test data of a [model] onnx flow ([data] inputs, targets)
    targets: np.ndarray | None = None
    ort_optimize: bool = True  # off for a foreign graph's QCDQ twin (see validate.run_onnxruntime)

    def test_data(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(test inputs, targets or None): the bundle's, or a [model] onnx flow's [data]."""
        if self.bundle is not None:
            return self.bundle.test_x.numpy(), self.bundle.test_y.numpy()
        return self.inputs, self.targets


def step_build_models(state: BuildState, cfg: dict) -> BuildState:
    q = cfg["quant"]
    if cfg["model"]["module"]:
        state.bundle = build_user_bundle(cfg["model"]["module"], q, state.flow_dir)
    else:
        state.bundle = zoo.build(cfg["model"]["name"], weight_bits=q["weight_bits"], act_bits=q["act_bits"],
                                 input_bits=q["input_bits"], layer_weight_bits=layer_values(q, "weight_bits"),
                                 seed=cfg["flow"]["seed"], retrain=cfg["model"]["retrain"],
                                 calibration_samples=q["calibration_samples"])
    state.bundle.device = str(resolve_device(q["device"]))
    return state


def step_quantize(state: BuildState, cfg: dict) -> BuildState:
    """Calibrate activations and PTQ layer by layer (``ModelBundle.quantize``). With a target
    P anywhere, the same algorithm also runs unconstrained on a copy: the hardware report
    compares against the accumulator widths that quantization would need."""
    b, q = state.bundle, cfg["quant"]
    unconstrained_model = copy.deepcopy(b.quant_model)
    state.ptq = b.quantize(q, seed=cfg["flow"]["seed"])
    if q["accumulator_bits"] or layer_values(q, "accumulator_bits"):
        infos = b.quantize(for_every_layer(q, accumulator_bits=0), model=unconstrained_model,
                           seed=cfg["flow"]["seed"], progress=False)
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


def step_import_onnx(state: BuildState, cfg: dict) -> BuildState:
    """A [model] onnx flow starts here: the QONNX file (tidied, see :mod:`axe_deploy.graph.foreign`)
    becomes model.qonnx.onnx, its onnxruntime twin model.qcdq.onnx where qonnx can make one,
    and [data] gives the test inputs (and targets). The steps after it are the zoo's."""
    model = foreign.load_graph(state.flow_dir / cfg["model"]["onnx"])
    model.save(str(state.out / QONNX_FILE))
    symbolic_batch(state.out / QONNX_FILE)
    state.artifacts["qonnx"] = QONNX_FILE
    qcdq, why = foreign.to_qcdq(model)
    if qcdq is not None:
        qcdq.save(str(state.out / QCDQ_FILE))
        symbolic_batch(state.out / QCDQ_FILE)
        state.artifacts["qcdq"] = QCDQ_FILE
        state.ort_optimize = False
        state.report["onnxruntime_optimizations"] = "disabled"
    else:
        state.report["onnxruntime_skipped"] = why
    data = cfg["data"]
    state.inputs = foreign.load_array(state.flow_dir / data["inputs"], "data.inputs").astype(np.float32)
    if data["targets"]:
        state.targets = foreign.load_array(state.flow_dir / data["targets"], "data.targets")
    return state


def annotate_accumulators(model: ModelWrapper, q: dict) -> ModelWrapper:
    """The graph annotated with the [quant] settings: tile sizes and target widths per layer
    (a skipped layer has no target)."""
    tiles = {"*": q["tile_size"], **layer_values(q, "tile_size")}
    targets = {"*": q["accumulator_bits"], **layer_values(q, "accumulator_bits")}
    skipped = {p: 0 for p, s in q["layers"].items() if s.get("skip")}
    return model.transform(AnnotateAccumulators(tiles, {**targets, **skipped}))


def step_annotate(state: BuildState, cfg: dict) -> BuildState:
    qonnx = annotate_accumulators(ModelWrapper(str(state.out / QONNX_FILE)), cfg["quant"])
    qonnx.save(str(state.out / QONNX_FILE))
    if (state.out / QCDQ_FILE).exists():
        qcdq = ModelWrapper(str(state.out / QCDQ_FILE))
        copy_annotations(qonnx, qcdq)
        qcdq.save(str(state.out / QCDQ_FILE))
    return state


def step_validate(state: BuildState, cfg: dict) -> BuildState:
    b = state.bundle
    x, y = state.test_data()
    qonnx = ModelWrapper(str(state.out / QONNX_FILE))
    context = run_qonnx(qonnx, x)
    qonnx_out = context[qonnx.graph.output[0].name]
    has_qcdq = (state.out / QCDQ_FILE).exists()
    ort_out = run_onnxruntime(state.out / QCDQ_FILE, x, state.ort_optimize) if has_qcdq else None
    score = (lambda out: accuracy(out, y)) if y is not None else (lambda out: None)
    if b is not None:
        with torch.no_grad():
            float_out = b.float_model(b.test_x).numpy()
            reference = b.quant_model(b.test_x).numpy()
    else:  # a foreign graph: the QONNX file itself is the reference
        float_out, reference = None, qonnx_out
    state.report["metrics"] = {
        "float_accuracy": score(float_out) if b is not None else None,
        "quant_accuracy": score(reference) if b is not None else None,
        "qonnx_accuracy": score(qonnx_out),
        "onnxruntime_accuracy": score(ort_out) if has_qcdq else None,
        "qonnx_max_abs_diff": float(np.abs(qonnx_out - reference).max()),
        "onnxruntime_max_abs_diff": float(np.abs(ort_out - reference).max()) if has_qcdq else None,
        "test_samples": int(len(x)),
    }
    layer_checks = {c.name: c for c in integer_check(qonnx, context)}
    layers = []
    for layer in quant_layers(qonnx):
        props = read_annotation(qonnx.graph.node[layer.node_index])
        check = layer_checks[layer.layer_name]
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
            "algorithm": info.algorithm if info else "rtn (skipped)" if b is not None else "imported",
            "ptq_seconds": round(info.seconds, 4) if info else 0.0,
        }
        if check.detail:
            entry["overflow_detail"] = check.detail
        layers.append(entry)
    state.report["layers"] = layers
    atol = cfg["validate"]["atol"]
    m = state.report["metrics"]
    m["within_atol"] = bool(m["qonnx_max_abs_diff"] <= atol and (m["onnxruntime_max_abs_diff"] or 0.0) <= atol)
    reference_name = "Brevitas" if b is not None else "the QONNX graph"
    for name, runtime, key in [("qonnx_vs_torch", "qonnx", "qonnx_max_abs_diff"),
                               ("onnxruntime_vs_torch", "onnxruntime (QCDQ)", "onnxruntime_max_abs_diff")]:
        if m[key] is None or (b is None and key == "qonnx_max_abs_diff"):
            continue  # no QCDQ twin, or a foreign graph that is its own reference
        checks.record(state.report, name, m[key] <= atol,
                      f"{runtime} vs {reference_name} on {len(x)} test inputs: max |diff| {m[key]:.2e} "
                      f"({'<=' if m[key] <= atol else '>'} atol {atol:g})")
    bad = [f"{l['name']}: {l['overflow_detail']}" for l in layers if not l["overflow_free"]]
    checks.record(state.report, "integer_overflow", not bad,
                  "; ".join(bad) or f"{len(layers)} layers: int64 dot products on the test inputs and "
                  "each row's worst case fit the annotated accumulators")
    return state


def step_evaluate(state: BuildState, cfg: dict) -> BuildState:
    """Score the float and the quantized model with the model's own metric (accuracy,
    perplexity): for models the export and hardware steps do not take, such as the LMs."""
    b = state.bundle
    state.report["evaluation"] = {"metric": b.metric_name, "higher_is_better": b.higher_is_better,
                                  "float": b.evaluate(b.float_model), "quantized": b.evaluate(b.quant_model)}
    return state


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
    state.report["warnings"] = metric_warnings(state.report) + handoff_warnings(state.report)
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
    "import_onnx": step_import_onnx,
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
    "finn": handoff_steps.step_finn,  # opt-in: FINN's Vivado-free steps in FINN's venv
    "hls4ml": handoff_steps.step_hls4ml,  # opt-in: hls4ml's C model (pip install -e '.[hls4ml]')
    "report": step_report,
}
SOFTWARE_STEPS = ["build_models", "quantize", "export", "annotate", "validate", "report"]
DEFAULT_STEPS = SOFTWARE_STEPS[:-1] + ["lower", "fold", "rtl", "simulate", "synthesize", "handoff", "report"]
# A [model] onnx flow: the same steps from annotate on.
ONNX_STEPS = ["import_onnx"] + DEFAULT_STEPS[DEFAULT_STEPS.index("annotate"):]
MODEL_STEPS = ("build_models", "quantize", "export", "evaluate")  # need a PyTorch model


def check_model_source(cfg: dict, where: str, steps: list[str]) -> None:
    """Before any step runs: the module imports and has the function; the onnx file reads,
    every layer is a quantized layer with integer inputs, and, when the flow lowers it,
    the annotated graph lowers (an unsupported op stops here, named with its node)."""
    m, flow_dir = cfg["model"], Path(where).parent
    if m["module"]:
        load_model_function(m["module"], flow_dir)
        return
    if not m["onnx"]:
        if "import_onnx" in steps:
            raise FlowConfigError(f"{where}: step 'import_onnx' needs 'model.onnx'")
        return
    needs_model = [s for s in steps if s in MODEL_STEPS]
    if needs_model:
        raise FlowConfigError(f"{where}: step(s) {needs_model} need a PyTorch model; a 'model.onnx' flow runs "
                              f"{', '.join(ONNX_STEPS)}")
    for key in ("inputs", "targets"):
        if cfg["data"][key] and not (flow_dir / cfg["data"][key]).is_file():
            raise FlowConfigError(f"{where}: 'data.{key}' = {cfg['data'][key]!r}: file not found "
                                  f"(paths are relative to the flow file)")
    model = annotate_accumulators(foreign.load_graph(flow_dir / m["onnx"]), cfg["quant"])
    if "lower" in steps:
        lower(model)


def check_flow(cfg: dict, where: str) -> list[str]:
    """Everything that can be checked before a step runs; returns the step list."""
    steps = cfg["flow"]["steps"] or (ONNX_STEPS if cfg["model"]["onnx"] else DEFAULT_STEPS)
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise FlowConfigError(f"{where}: unknown step(s) {unknown} in 'flow.steps'; "
                              f"known steps: {', '.join(STEPS)}")
    if "export" in steps:
        check_export_bits(cfg, where)
    check_model_source(cfg, where, steps)
    if not (cfg["model"]["module"] or cfg["model"]["onnx"]) and cfg["model"]["name"] not in zoo.names():
        raise FlowConfigError(f"{where}: unknown model '{cfg['model']['name']}' in 'model.name'; "
                              f"known models: {', '.join(zoo.names())}")
    try:
        resolve_device(cfg["quant"]["device"])
    except ValueError as e:
        raise FlowConfigError(f"{where}: {e}") from None
    return steps


def run_flow(cfg: dict, out: str | Path, where: str = "flow", progress=print, force: bool = False) -> dict:
    """Run the flow into ``out``; returns the report. ``out`` is replaced only on success,
    and only if it is absent, empty or an earlier build (any folder with ``force``, never
    a project or home folder: :mod:`axe_deploy.flow.outdir`)."""
    steps = check_flow(cfg, where)
    skipped = tools.missing_tool_steps(steps, cfg)
    steps = [s for s in steps if s not in skipped]
    with build_folder(out, flow=cfg["flow"]["name"], force=force) as tmp:
        state = BuildState(out=tmp, flow_dir=Path(where).parent,
                           report={"flow": cfg["flow"]["name"], "model": model_label(cfg), "config": cfg,
                                   "timings_s": {}})
        if skipped:
            progress(f"[axe-deploy] {tools.skip_notice(skipped)}")
            state.report["skipped_steps"] = skipped
        for name in steps:
            start = time.perf_counter()
            progress(f"[axe-deploy] {name} ...")
            state = STEPS[name](state, cfg)
            state.report["timings_s"][name] = round(time.perf_counter() - start, 3)
        if "report" in steps:  # again, now that every step's time is known
            step_report(state, cfg)
    return state.report
