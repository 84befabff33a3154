"""Software steps: build the models, quantize, export, annotate, validate, evaluate.

Each is ``step(state, cfg) -> state`` on the in-memory :class:`~axe_deploy.flow.state.BuildState`.
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy import zoo
from axe_deploy.core.layer_glob import for_every_layer, layer_values
from axe_deploy.flow import checks
from axe_deploy.flow.config import FlowConfig
from axe_deploy.flow.state import BuildState
from axe_deploy.graph import foreign
from axe_deploy.graph.annotate import AnnotateAccumulators, copy_annotations
from axe_deploy.graph.annotation import Annotation
from axe_deploy.graph.layers import quant_layers
from axe_deploy.graph.sums import sum_nodes
from axe_deploy.graph.validate import accuracy, integer_check
from axe_deploy.ptq.device import resolve_device
from axe_deploy.quant.bundle import build_user_bundle
from axe_deploy.quant.export import export_model, symbolic_batch


def step_build_models(state: BuildState, cfg: FlowConfig) -> BuildState:
    q = cfg.quant
    if cfg.model.module:
        state.bundle = build_user_bundle(cfg.model.module, q.as_dict(), state.flow_dir)
    else:
        state.bundle = zoo.build(cfg.model.name, weight_bits=q.weight_bits, act_bits=q.act_bits,
                                 input_bits=q.input_bits, layer_weight_bits=layer_values(q.as_dict(), "weight_bits"),
                                 seed=cfg.flow.seed, retrain=cfg.model.retrain,
                                 calibration_samples=q.calibration_samples)
    state.bundle.device = str(resolve_device(q.device))
    return state


def step_quantize(state: BuildState, cfg: FlowConfig) -> BuildState:
    """Calibrate activations and PTQ layer by layer (``ModelBundle.quantize``). With a target
    P anywhere, the same algorithm also runs unconstrained on a copy: the hardware report
    compares against the accumulator widths that quantization would need."""
    b, q = state.bundle, cfg.quant.as_dict()
    unconstrained_model = copy.deepcopy(b.quant_model)
    state.ptq = b.quantize(q, seed=cfg.flow.seed)
    if q["accumulator_bits"] or layer_values(q, "accumulator_bits"):
        infos = b.quantize(for_every_layer(q, accumulator_bits=0), model=unconstrained_model,
                           seed=cfg.flow.seed, progress=False)
    else:
        infos = state.ptq
    # one-stage widths: what the unconstrained quantization needs without tiles
    state.unconstrained_bits = {name: info.outer_bits for name, info in infos.items() if info is not None}
    if b.metric_name == "accuracy":  # cheap for the classifiers; the headline compares it
        state.report["unconstrained"] = {
            "accuracy": b.evaluate(unconstrained_model if infos is not state.ptq else b.quant_model),
            "accumulator_bits": dict(state.unconstrained_bits)}
    return state


def step_export(state: BuildState, cfg: FlowConfig) -> BuildState:
    state.qonnx, state.qcdq = export_model(state.bundle.quant_model, state.bundle.test_x)
    return state


def step_import_onnx(state: BuildState, cfg: FlowConfig) -> BuildState:
    """A [model] onnx flow starts here: the QONNX file (tidied, see :mod:`axe_deploy.graph.foreign`),
    its onnxruntime twin where qonnx can make one, and [data] gives the test inputs (and
    targets). The steps after it are the zoo's."""
    state.qonnx = ModelWrapper(symbolic_batch(foreign.load_graph(state.flow_dir / cfg.model.onnx).model))
    qcdq, why = foreign.to_qcdq(state.qonnx)
    if qcdq is not None:
        state.qcdq = ModelWrapper(symbolic_batch(qcdq.model))
        state.ort_optimize = False
        state.report["onnxruntime_optimizations"] = "disabled"
    else:
        state.report["onnxruntime_skipped"] = why
    data = cfg.data
    state.inputs = foreign.load_array(state.flow_dir / data.inputs, "data.inputs").astype(np.float32)
    if data.targets:
        state.targets = foreign.load_array(state.flow_dir / data.targets, "data.targets")
    return state


def annotate_accumulators(model: ModelWrapper, quant) -> ModelWrapper:
    """The graph annotated with the [quant] settings (``cfg.quant``): tile sizes and target
    widths per layer (a skipped layer has no target)."""
    q = quant.as_dict()
    tiles = {"*": q["tile_size"], **layer_values(q, "tile_size")}
    targets = {"*": q["accumulator_bits"], **layer_values(q, "accumulator_bits")}
    skipped = {p: 0 for p, s in q["layers"].items() if s.get("skip")}
    return model.transform(AnnotateAccumulators(tiles, {**targets, **skipped}))


def step_annotate(state: BuildState, cfg: FlowConfig) -> BuildState:
    state.qonnx = annotate_accumulators(state.qonnx, cfg.quant)
    if state.qcdq is not None:
        copy_annotations(state.qonnx, state.qcdq)
    state.qonnx_context = None  # the graph changed
    return state


def _layer_rows(state: BuildState) -> list[dict]:
    """One report row per annotated layer: its annotation, the integer check on the test
    inputs, and what the PTQ did to it."""
    qonnx, b = state.qonnx, state.bundle
    layer_checks = {c.name: c for c in integer_check(qonnx, state.qonnx_context)}
    rows = []
    for layer in quant_layers(qonnx):
        annotation = Annotation.of(qonnx.graph.node[layer.node_index])
        check = layer_checks[layer.layer_name]
        info = state.ptq.get(layer.layer_name)
        row = {
            "name": layer.layer_name, "op": layer.op, "M": layer.M, "K": layer.K,
            "weight_datatype": annotation.weight_datatype, "input_datatype": annotation.input_datatype,
            **annotation.row(),
            "exact_bits": check.exact_bits,
            "overflow_free": check.overflow_free,
            "observed_range": list(check.observed_range),
            "algorithm": info.algorithm if info else "rtn (skipped)" if b is not None else "imported",
            "ptq_seconds": round(info.seconds, 4) if info else 0.0,
        }
        if check.detail:
            row["overflow_detail"] = check.detail
        rows.append(row)
    for found in sum_nodes(qonnx):  # residual Adds and average pools: integer sums, no weights
        annotation = Annotation.required(qonnx.graph.node[found.node_index], found.name)
        check = layer_checks[found.name]
        row = {"name": found.name, "op": found.op, "M": None, "K": found.terms, "weight_datatype": "",
               "input_datatype": annotation.input_datatype, **annotation.row(), "exact_bits": check.exact_bits,
               "overflow_free": check.overflow_free, "observed_range": list(check.observed_range),
               "algorithm": "none (integer sum)", "ptq_seconds": 0.0}
        if check.detail:
            row["overflow_detail"] = check.detail
        rows.append(row)
    return rows


def step_validate(state: BuildState, cfg: FlowConfig) -> BuildState:
    """torch vs qonnx vs onnxruntime on the test inputs, and the integer overflow check of
    every annotated layer. The onnxruntime outputs are kept as the build's reference."""
    b = state.bundle
    x, y = state.test_data()
    qonnx_out = state.qonnx_outputs()
    ort_out = state.reference_outputs().outputs if state.qcdq is not None else None
    score = (lambda out: accuracy(out, y)) if y is not None else (lambda out: None)
    if b is not None:  # float32 as exported: a float64 forward would round activations at ties otherwise
        with torch.no_grad():
            float_out = b.float_model(b.test_x).numpy()
            reference = b.quant_model(b.test_x).numpy()
    else:  # a foreign graph: the QONNX file itself is the reference
        float_out, reference = None, qonnx_out
    m = state.report["metrics"] = {
        "float_accuracy": score(float_out) if b is not None else None,
        "quant_accuracy": score(reference) if b is not None else None,
        "qonnx_accuracy": score(qonnx_out),
        "onnxruntime_accuracy": score(ort_out) if ort_out is not None else None,
        "qonnx_max_abs_diff": float(np.abs(qonnx_out - reference).max()),
        "onnxruntime_max_abs_diff": float(np.abs(ort_out - reference).max()) if ort_out is not None else None,
        "test_samples": int(len(x)),
    }
    layers = state.report["layers"] = _layer_rows(state)
    atol = cfg.validate.atol
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


def step_evaluate(state: BuildState, cfg: FlowConfig) -> BuildState:
    """Score the float and the quantized model with the model's own metric (accuracy,
    perplexity): for models the export and hardware steps do not take, such as the LMs."""
    b = state.bundle
    state.report["evaluation"] = {"metric": b.metric_name, "higher_is_better": b.higher_is_better,
                                  "float": b.evaluate(b.float_model), "quantized": b.evaluate(b.quant_model)}
    return state
