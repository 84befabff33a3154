"""Hardware steps of the flow: lower, fold, RTL, simulate, synthesize, hand off.

Each is ``step(state, cfg) -> state`` like the software steps in :mod:`axe_deploy.flow.runner`;
widths come from the annotated graph (through the dataflow graph's MVAU nodes), never
recomputed here.
"""

from __future__ import annotations

import dataclasses
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.flow import checks
from axe_deploy.core.accumulator import datatype_name
from axe_deploy.core.compare import compare_outputs, describe
from axe_deploy.dataflow.lower import execute_dataflow, hardware_nodes, hw_layers, lower, set_folding
from axe_deploy.graph.layers import _attr
from axe_deploy.handoff.finn import write_handoff
from axe_deploy.handoff.hls4ml import write_handoff as write_hls4ml_handoff
from axe_deploy.hw.folding import choose_folding
from axe_deploy.hw.sim import simulate
from axe_deploy.hw.spec import MaxPoolLayer, MVAULayer, ReorderLayer, SlidingWindowLayer, estimate_cycles
from axe_deploy.hw.synth import synthesize
from axe_deploy.hw.verilog import write_rtl
from axe_deploy.hw.worst_case import run_worst_case
from axe_deploy.hw.vivado import run_vivado, write_vivado_tcl
from axe_deploy.graph.validate import run_onnxruntime, run_qonnx

DATAFLOW_FILE = "model.dataflow.onnx"


def reference_outputs(state, x: np.ndarray, qonnx: ModelWrapper | None = None) -> tuple[np.ndarray, str]:
    """The outputs every implementation is held to, and their source: onnxruntime on
    model.qcdq.onnx, or qonnx's execution of model.qonnx.onnx (``qonnx`` if given) where no
    QCDQ twin could be made (a foreign graph)."""
    qcdq = state.out / "model.qcdq.onnx"
    if qcdq.exists():
        return run_onnxruntime(qcdq, x, state.ort_optimize), "onnxruntime"
    qonnx = qonnx or ModelWrapper(str(state.out / "model.qonnx.onnx"))
    return run_qonnx(qonnx, x)[qonnx.graph.output[0].name], "qonnx"


def step_lower(state, cfg):
    """Annotated QONNX -> dataflow graph; its integer executor must match onnxruntime."""
    qonnx = ModelWrapper(str(state.out / "model.qonnx.onnx"))
    model = lower(qonnx)
    x = state.test_data()[0]
    ctx = execute_dataflow(model, x)
    out = ctx[model.graph.output[0].name]
    ort, ref_name = reference_outputs(state, x, qonnx)
    # the reference on the test inputs is kept for the compilers' checks (handoff/steps.py)
    state.hw = {"model": model, "layers": hw_layers(model), "test_out": out, "test_reference": (ort, ref_name)}
    atol = cfg["validate"]["atol"]
    cmp = compare_outputs(out, ort, atol)  # argmax ties within the tolerance count as agreement
    state.report["dataflow"] = {
        "nodes": [n.op_type for n in model.graph.node],
        "executor_max_abs_diff_vs_onnxruntime": cmp["max_abs_diff"],
        "executor_argmax_equal_onnxruntime": cmp["argmax_agree"],
        "executor_argmax_ties": cmp["ties"],
        "executor_reference": ref_name,
    }
    checks.record(state.report, "executor_vs_onnxruntime", cmp["passed"],
                  f"integer executor vs {ref_name} on {len(x)} test inputs: {describe(cmp, atol)}")
    model.save(str(state.out / DATAFLOW_FILE))
    state.artifacts["dataflow"] = DATAFLOW_FILE
    return state


LAYER_KINDS = {MVAULayer: "MVAU", SlidingWindowLayer: "SlidingWindow", MaxPoolLayer: "MaxPool",
               ReorderLayer: "Reorder"}


def _layer_entry(layer) -> dict:
    """A layer's report entry: the same keys for every kind (None where one does not apply)."""
    mvau = isinstance(layer, MVAULayer)
    return {"name": layer.name, "kind": LAYER_KINDS[type(layer)],
            "MW": layer.MW if mvau else None, "MH": layer.MH if mvau else None,
            "PE": getattr(layer, "PE", None), "SIMD": getattr(layer, "SIMD", None),
            "num_vectors": layer.num_vectors if mvau else None,
            "accumulator_datatype": datatype_name(layer.acc_bits, layer.acc_signed) if mvau else None,
            "tile_size": layer.tile_size if mvau else None,
            "outer_accumulator_datatype": (datatype_name(layer.outer_bits, layer.acc_signed)
                                           if mvau and layer.tile_size else None),
            "cycles_estimated": estimate_cycles(layer)}


def _mvaus(layers):
    return [l for l in layers if isinstance(l, MVAULayer)]


def step_fold(state, cfg):
    h = cfg["hardware"]
    overrides = {name: (f["PE"], f["SIMD"]) for name, f in h["folding"].items()}
    target = dict(target_cycles=h["target_cycles"] or None)
    if h["target_fps"]:
        target = dict(target_fps=h["target_fps"], clock_mhz=h["clock_mhz"])
    layers = choose_folding(state.hw["layers"], overrides=overrides, **target)
    set_folding(state.hw["model"], layers)
    state.hw["model"].save(str(state.out / DATAFLOW_FILE))
    state.hw["layers"] = layers
    cycles = max(estimate_cycles(l) for l in layers)
    state.report["hardware"] = {
        "layers": [_layer_entry(l) for l in layers],
        "cycles_per_inference_estimated": cycles,
        "clock_mhz": h["clock_mhz"],
        "inferences_per_second_estimated": h["clock_mhz"] * 1e6 / cycles,
    }
    return state


def step_rtl(state, cfg):
    state.hw["design"] = write_rtl(state.hw["layers"], state.out / "rtl")
    state.artifacts["rtl"] = "rtl/"
    return state


def step_simulate(state, cfg):
    """The stitched RTL on the test split: bit-exact against the integer executor (and so
    onnxruntime's argmax), with the testbench's shadow-accumulator overflow check."""
    h = cfg["hardware"]
    model = state.hw["model"]
    x = state.test_data()[0]
    if h["sim_vectors"]:
        x = x[: h["sim_vectors"]]
    ctx = execute_dataflow(model, x)
    nodes = hardware_nodes(model)  # the stream into the first layer, out of the last
    x_int = ctx[nodes[0].input[0]].reshape(len(x), -1)
    expected = ctx[nodes[-1].output[0]].reshape(len(x), -1)
    result = simulate(state.hw["design"], x_int, simulator=h["simulator"])
    exact = (result.outputs == expected).all(axis=1) if result.outputs.shape == expected.shape else np.zeros(len(x), bool)
    state.report["hardware"]["rtl_sim"] = {
        "simulator": result.simulator, "vectors": int(len(x)), "bit_exact_vectors": int(exact.sum()),
        "overflows": int(result.total_overflows), "overflows_per_layer": result.overflows,
        "inner_overflows": int(sum(result.overflows.values())),
        "outer_overflows": int(sum(result.outer_overflows.values())),
        "outer_overflows_per_layer": result.outer_overflows,
        "cycles_measured": {"latency": result.latency, "interval": result.interval,
                            "total": result.total_cycles},
        "cycles_estimated": state.report["hardware"]["cycles_per_inference_estimated"],
        "build_s": round(result.build_s, 2), "run_s": round(result.run_s, 2),
    }
    checks.record(state.report, "rtl_bit_exact", exact.all() and not result.timed_out,
                  f"stitched RTL ({result.simulator}) vs the integer executor: {int(exact.sum())}/{len(x)} "
                  f"vectors bit-exact" + (" (timed out)" if result.timed_out else ""))
    checks.record(state.report, "rtl_overflows", result.total_overflows == 0,
                  f"shadow-accumulator overflows on the test vectors: {result.overflows}")
    _simulate_worst_case(state, cfg)
    return state


def _simulate_worst_case(state, cfg):
    """Every MVAU on its own on worst-case vectors: the register reaches exactly the
    annotated range with 0 overflows, and overflows one bit narrower (hw/worst_case.py)."""
    # the range the output shows: the outer register's when tiled
    annotated = {_attr(n, "layer_name"): tuple(json.loads(_attr(n, "outerAccRange") or _attr(n, "accRange")))
                 for n in hardware_nodes(state.hw["model"]) if n.op_type == "MVAU"}
    run = run_worst_case(state.hw["layers"], state.out / "rtl_worst_case", annotated,
                         simulator=cfg["hardware"]["simulator"])
    state.report["hardware"]["rtl_worst_case"] = {
        "simulator": run.simulator, "cycles": run.cycles,
        "build_s": round(run.build_s, 2), "run_s": round(run.run_s, 2),
        "layers": [layer.as_dict() for layer in run.layers]}
    state.artifacts["rtl_worst_case"] = "rtl_worst_case/"
    failed = [layer.detail for layer in run.layers if not layer.passed]
    checks.record(state.report, "rtl_worst_case", not failed,
                  "; ".join(failed or [layer.detail for layer in run.layers]))


def _with_acc_bits(layers, bits_of):
    """The same network with one-stage accumulators of ``bits_of(layer)`` bits (signed)."""
    return [dataclasses.replace(l, acc_bits=bits_of(l), acc_signed=True, tile_size=0, outer_bits=0)
            if isinstance(l, MVAULayer) else l for l in layers]


def step_synthesize(state, cfg):
    """yosys on the design, and on the same network with every accumulator 32 bits and
    with the exact widths the unconstrained (not accumulator-aware) quantization needs;
    a tiled design also one-stage with its own weights' exact widths (its outer widths)."""
    layers = state.hw["layers"]
    builds = {"synth": state.hw["design"]}
    if cfg["hardware"]["compare_widths"]:
        if any(getattr(l, "tile_size", 0) for l in layers):
            builds["synth_one_stage"] = write_rtl(_with_acc_bits(layers, lambda l: l.result_bits),
                                                  state.out / "rtl_variants" / "one_stage")
        builds["synth_acc32"] = write_rtl(_with_acc_bits(layers, lambda l: 32), state.out / "rtl_variants" / "acc32")
        unconstrained = state.unconstrained_bits
        builds["synth_unconstrained"] = write_rtl(
            _with_acc_bits(layers, lambda l: unconstrained.get(l.name, l.acc_bits)),
            state.out / "rtl_variants" / "unconstrained")
    hw = state.report["hardware"]
    # yosys runs are single-threaded subprocesses: run the variants side by side
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(builds, pool.map(synthesize, builds.values())))
    for key, result in results.items():
        hw[key] = dict(result.top)
        if key == "synth":
            for entry in hw["layers"]:
                entry.update(result.layers[entry["name"]])
        else:
            hw[key]["mvau_luts"] = sum(result.layers[l.name]["luts"] for l in _mvaus(layers))
    if "synth_acc32" in hw:
        ours = sum(e["luts"] for e in hw["layers"] if e["kind"] == "MVAU")
        hw["synth"]["mvau_luts"] = ours
        hw["lut_ratio_vs_acc32"] = ours / hw["synth_acc32"]["mvau_luts"]
        hw["lut_ratio_vs_unconstrained"] = ours / hw["synth_unconstrained"]["mvau_luts"]
        if "synth_one_stage" in hw:
            hw["lut_ratio_vs_one_stage"] = ours / hw["synth_one_stage"]["mvau_luts"]
        hw["unconstrained_accumulator_bits"] = {l.name: state.unconstrained_bits.get(l.name) for l in _mvaus(layers)}
    state.artifacts["rtl_variants"] = "rtl_variants/" if cfg["hardware"]["compare_widths"] else None
    return state


def step_handoff(state, cfg):
    """FINN and hls4ml handoff files and the Vivado TCL (run only when Vivado is on PATH)."""
    h = cfg["hardware"]
    qonnx = state.out / "model.qonnx.onnx"
    state.report["handoff"] = {
        # FINN accumulates in one stage and needs no reorder (its notes say a tiling is not used)
        "finn": write_handoff(state.out / "finn", qonnx, [l for l in state.hw["layers"]
                                                         if not isinstance(l, ReorderLayer)], part=h["part"],
                              clock_ns=1000.0 / h["clock_mhz"]),
        "hls4ml": write_hls4ml_handoff(state.out / "hls4ml", qonnx, part=h["part"], clock_mhz=h["clock_mhz"]),
    }
    if "design" not in state.hw:
        step_rtl(state, cfg)
    tcl = write_vivado_tcl(state.hw["design"], state.out / "vivado", part=h["part"], clock_mhz=h["clock_mhz"])
    ran = run_vivado(tcl)
    state.report.setdefault("hardware", {})["vivado"] = {
        "ran": ran is not None, "script": "vivado/build.tcl",
        **({k: _relative(v, state.out) for k, v in ran.items()} if ran else
           {"note": "vivado not on PATH: run `vivado -mode batch -source vivado/build.tcl` where it is"})}
    state.artifacts.update(finn="finn/", hls4ml="hls4ml/", vivado="vivado/")
    return state


def _relative(value, root):
    """Paths in a report are relative to the build folder (it is renamed at the end)."""
    if isinstance(value, list):
        return [_relative(v, root) for v in value]
    return None if value is None else str(Path(value).relative_to(root))
