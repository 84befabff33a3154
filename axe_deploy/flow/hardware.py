"""Hardware steps of the flow: lower, fold, RTL, simulate, synthesize, hand off.

Each is ``step(state, cfg) -> state`` like the software steps in :mod:`axe_deploy.flow.software`;
widths come from the annotated graph (through the dataflow graph's MVAU nodes), never
recomputed here.
"""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from axe_deploy.core.accumulator import datatype_name
from axe_deploy.core.compare import compare_outputs, describe
from axe_deploy.dataflow.execute import execute_dataflow
from axe_deploy.dataflow.hw_bridge import hardware_nodes, hw_layers, set_folding
from axe_deploy.dataflow.lower import lower
from axe_deploy.graph.layers import GraphError
from axe_deploy.handoff.finn import write_handoff
from axe_deploy.handoff.hls4ml import worst_case_inputs as hls4ml_worst_case_inputs
from axe_deploy.handoff.hls4ml import write_handoff as write_hls4ml_handoff
from axe_deploy.hw.folding import choose_folding
from axe_deploy.hw.place_route import path_ends, place_route
from axe_deploy.hw.sim import simulate
from axe_deploy.hw.spec import MaxPoolLayer, MVAULayer, ReorderLayer, SlidingWindowLayer, estimate_cycles
from axe_deploy.hw.synth import synthesize
from axe_deploy.hw.verilog import write_rtl
from axe_deploy.hw.worst_case import run_worst_case
from axe_deploy.hw.vivado import run_vivado, write_vivado_tcl

from axe_deploy.flow import checks
from axe_deploy.flow.config import FlowConfig
from axe_deploy.flow.state import BuildState


def run_executor(model, x: np.ndarray) -> tuple[np.ndarray, dict]:
    """The integer executor on ``x``: the graph's outputs, and the integer streams into the
    first and out of the last hardware layer (what the RTL simulation is held to)."""
    ctx = execute_dataflow(model, x)
    nodes = hardware_nodes(model)
    streams = {"x_int": ctx[nodes[0].input[0]].reshape(len(x), -1),
               "expected": ctx[nodes[-1].output[0]].reshape(len(x), -1)}
    return ctx[model.graph.output[0].name], streams


def step_lower(state: BuildState, cfg: FlowConfig) -> BuildState:
    """Annotated QONNX -> dataflow graph; its integer executor must match the reference
    (onnxruntime) on the test inputs. The executor's streams into the first and out of the
    last hardware layer are kept for the RTL simulation."""
    model = lower(state.qonnx)
    x = state.test_data()[0]
    out, state.executor = run_executor(model, x)
    state.dataflow, state.layers = model, hw_layers(model)
    ref = state.reference_outputs()
    atol = cfg.validate.atol
    cmp = compare_outputs(out, ref.outputs, atol)  # argmax ties within the tolerance count as agreement
    state.report["dataflow"] = {
        "nodes": [n.op_type for n in model.graph.node],
        "executor_max_abs_diff_vs_onnxruntime": cmp["max_abs_diff"],
        "executor_argmax_equal_onnxruntime": cmp["argmax_agree"],
        "executor_argmax_ties": cmp["ties"],
        "executor_reference": ref.source,
    }
    checks.record(state.report, "executor_vs_onnxruntime", cmp["passed"],
                  f"integer executor vs {ref.source} on {len(x)} test inputs: {describe(cmp, atol)}")
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


def step_fold(state: BuildState, cfg: FlowConfig) -> BuildState:
    h = cfg.hardware
    overrides = {name: (f["PE"], f["SIMD"]) for name, f in h.folding.items()}
    target = dict(target_cycles=h.target_cycles or None)
    if h.target_fps:
        target = dict(target_fps=h.target_fps, clock_mhz=h.clock_mhz)
    layers = choose_folding(state.layers, overrides=overrides, **target)
    set_folding(state.dataflow, layers)
    state.layers = layers
    cycles = max(estimate_cycles(l) for l in layers)
    state.report["hardware"] = {
        "layers": [_layer_entry(l) for l in layers],
        "cycles_per_inference_estimated": cycles,
        "clock_mhz": h.clock_mhz,
        "inferences_per_second_estimated": h.clock_mhz * 1e6 / cycles,
    }
    return state


def step_rtl(state: BuildState, cfg: FlowConfig) -> BuildState:
    state.design = write_rtl(state.layers, state.out / "rtl")
    state.artifacts["rtl"] = "rtl/"
    return state


def step_simulate(state: BuildState, cfg: FlowConfig) -> BuildState:
    """The stitched RTL on the test split: bit-exact against the integer executor (and so
    onnxruntime's argmax), with the testbench's shadow-accumulator overflow check."""
    h = cfg.hardware
    n = h.sim_vectors or len(state.executor["x_int"])
    x_int, expected = state.executor["x_int"][:n], state.executor["expected"][:n]
    result = simulate(state.design, x_int, simulator=h.simulator)
    exact = (result.outputs == expected).all(axis=1) if result.outputs.shape == expected.shape else np.zeros(n, bool)
    state.report["hardware"]["rtl_sim"] = {
        "simulator": result.simulator, "vectors": int(n), "bit_exact_vectors": int(exact.sum()),
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
                  f"stitched RTL ({result.simulator}) vs the integer executor: {int(exact.sum())}/{n} "
                  f"vectors bit-exact" + (" (timed out)" if result.timed_out else ""))
    checks.record(state.report, "rtl_overflows", result.total_overflows == 0,
                  f"shadow-accumulator overflows on the test vectors: {result.overflows}")
    _simulate_worst_case(state, cfg)
    return state


def _simulate_worst_case(state: BuildState, cfg: FlowConfig) -> None:
    """Every MVAU on its own on worst-case vectors: the register reaches exactly the
    annotated range with 0 overflows, and overflows one bit narrower (hw/worst_case.py)."""
    annotated = {l.name: l.annotated_range for l in _mvaus(state.layers)}
    run = run_worst_case(state.layers, state.out / "rtl_worst_case", annotated,
                         simulator=cfg.hardware.simulator)
    state.report["hardware"]["rtl_worst_case"] = {
        "simulator": run.simulator, "cycles": run.cycles,
        "build_s": round(run.build_s, 2), "run_s": round(run.run_s, 2),
        "layers": [layer.as_dict() for layer in run.layers]}
    state.artifacts["rtl_worst_case"] = "rtl_worst_case/"
    failed = [layer.detail for layer in run.layers if not layer.passed]
    checks.record(state.report, "rtl_worst_case", not failed,
                  "; ".join(failed or [layer.detail for layer in run.layers]))


def with_accumulator_bits(layers, bits_of):
    """The same network with one-stage accumulators of ``bits_of(layer)`` bits (signed)."""
    return [dataclasses.replace(l, acc_bits=bits_of(l), acc_signed=True, tile_size=0, outer_bits=0)
            if isinstance(l, MVAULayer) else l for l in layers]


def step_synthesize(state: BuildState, cfg: FlowConfig) -> BuildState:
    """yosys on the design, and on the same network with every accumulator 32 bits and
    with the exact widths the unconstrained (not accumulator-aware) quantization needs;
    a tiled design also one-stage with its own weights' exact widths (its outer widths)."""
    layers = state.layers
    builds = {"synth": state.design}
    if cfg.hardware.compare_widths:
        builds.update({f"synth_{name}": design for name, design in width_variants(state).items()})
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
    state.artifacts["rtl_variants"] = "rtl_variants/" if cfg.hardware.compare_widths else None
    return state


def width_variants(state: BuildState) -> dict:
    """The same network with other accumulators, as RTL in rtl_variants/ (made once per
    build): every accumulator 32 bits, the exact widths the unconstrained quantization
    needs, and for a tiled design one stage with its own weights' exact widths."""
    if state.variants is None:
        layers, unconstrained, folder = state.layers, state.unconstrained_bits, state.out / "rtl_variants"
        state.variants = {}
        if any(getattr(l, "tile_size", 0) for l in layers):
            state.variants["one_stage"] = write_rtl(with_accumulator_bits(layers, lambda l: l.result_bits),
                                                    folder / "one_stage")
        state.variants["acc32"] = write_rtl(with_accumulator_bits(layers, lambda l: 32), folder / "acc32")
        state.variants["unconstrained"] = write_rtl(
            with_accumulator_bits(layers, lambda l: unconstrained.get(l.name, l.acc_bits)), folder / "unconstrained")
    return state.variants


def step_place_route(state: BuildState, cfg: FlowConfig) -> BuildState:
    """The design synthesized, placed and routed for the ECP5 of [fpga] (open tools from
    PyPI), with its bitstream in fpga/; with fpga.compare_widths the 32-bit and
    unconstrained-width builds too, on the same device. A build that misses its clock fails
    the check ``timing_met`` (exit 3) unless fpga.require_timing is false."""
    f, hw = cfg.fpga, state.report.setdefault("hardware", {})
    builds = {"axe": (state.design, state.out / "fpga")}
    if f.compare_widths and cfg.hardware.compare_widths:
        builds.update({name: (design, state.out / "fpga" / "variants" / name)
                       for name, design in width_variants(state).items()})

    def build(item):
        design, folder = item
        return place_route(design, folder, device=f.device, package=f.package, clock_mhz=f.clock_mhz, seed=f.seed)

    # nextpnr runs single-threaded: two builds side by side on the two cores
    with ThreadPoolExecutor(max_workers=2) as pool:
        results = dict(zip(builds, pool.map(build, builds.values())))
    interval = (hw.get("rtl_sim") or {}).get("cycles_measured", {}).get("interval") \
        or hw.get("cycles_per_inference_estimated")
    sections = {}
    for name, result in results.items():
        section = result.as_report(state.out)
        section["inferences_per_second"] = round(min(result.fmax_mhz.values()) * 1e6 / interval) if interval else None
        sections[name] = section
    ours = hw["place_route"] = sections.pop("axe")
    if sections:
        hw["place_route_variants"] = sections
    state.artifacts["fpga"] = "fpga/"
    ends = path_ends(ours["critical_path"])
    detail = (f"{f.device}: Fmax {min(ours['fmax_mhz'].values()):.1f} MHz against the target {f.clock_mhz:g} MHz "
              f"(slack {ours['slack_ns']:+.2f} ns); critical path {ends[0]} -> {ends[1]}")
    if f.require_timing:  # else the summary's ECP5 line says by how much and where it missed
        checks.record(state.report, "timing_met", ours["timing_met"], detail)
    return state


def step_handoff(state: BuildState, cfg: FlowConfig) -> BuildState:
    """FINN and hls4ml handoff files and the Vivado TCL (run only when Vivado is on PATH)."""
    h = cfg.hardware
    try:
        state.worst_case_inputs = hls4ml_worst_case_inputs(state.qonnx)
    except GraphError as e:
        state.worst_case_inputs, why_no_worst_case = None, str(e)
    else:
        why_no_worst_case = None
    state.report["handoff"] = {
        # FINN accumulates in one stage and needs no reorder (its notes say a tiling is not used)
        "finn": write_handoff(state.out / "finn", state.qonnx, [l for l in state.layers
                                                               if not isinstance(l, ReorderLayer)], part=h.part,
                              clock_ns=1000.0 / h.clock_mhz),
        "hls4ml": write_hls4ml_handoff(state.out / "hls4ml", state.qonnx, state.worst_case_inputs,
                                       why_no_worst_case, part=h.part, clock_mhz=h.clock_mhz),
    }
    if state.design is None:
        step_rtl(state, cfg)
    tcl = write_vivado_tcl(state.design, state.out / "vivado", part=h.part, clock_mhz=h.clock_mhz)
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
