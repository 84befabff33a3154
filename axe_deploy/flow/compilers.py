"""Opt-in flow steps that run the handoffs in the compilers themselves.

``finn``: the handoff's ``build.py --vivado-free --execute`` in FINN's own venv (finn-plus from
PyPI by default, see :mod:`axe_deploy.handoff.finn_run`): every Vivado-free FINN step on the unmodified
``finn/`` folder, FINN's ``accDataType`` per MVAU against our annotation, FINN's
``execute_onnx`` against onnxruntime on the test inputs, and FINN's estimates next to ours.
``hls4ml``: the handoff's ``hls4ml/build.py --predict``: hls4ml converts, compiles its C
model with g++ and runs it on the test inputs and the worst-case inputs, against onnxruntime.
Both record a report section and a verification check (``report["checks"]``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from axe_deploy.core.compare import compare_outputs
from axe_deploy.flow import checks
from axe_deploy.flow.config import FlowConfig, FlowConfigError
from axe_deploy.flow.state import BuildState
from axe_deploy.handoff import finn_run

MAX_ABS_DIFF = 1e-4  # FINN's and hls4ml's float outputs against onnxruntime


def _compare(got: np.ndarray, ref: np.ndarray) -> dict:
    """``compare_outputs`` within MAX_ABS_DIFF (argmax ties count as agreement), under the report's keys."""
    c = compare_outputs(got, ref, MAX_ABS_DIFF)
    return {"vectors": c["vectors"], "argmax_equal_onnxruntime": c["argmax_agree"], "argmax_ties": c["ties"],
            "max_abs_diff_vs_onnxruntime": c["max_abs_diff"], "passed": c["passed"]}


def _json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def step_finn(state: BuildState, cfg: FlowConfig) -> BuildState:
    """Run the FINN handoff's Vivado-free steps in FINN's venv; record the ``finn`` section."""
    folder = state.out / "finn"
    if not (folder / "build.py").is_file():
        raise FlowConfigError("step 'finn' needs the FINN handoff: put 'handoff' before 'finn' in flow.steps")
    x = state.test_data()[0]
    try:
        finn = finn_run.run_handoff(folder, x, finn_run.resolve(cfg.finn.root, cfg.finn.venv))
    except finn_run.FinnBuildError as e:
        checks.record(state.report, "finn_build", False, str(e).splitlines()[-1])
        raise
    hw = state.report.get("hardware", {})
    rows = finn["mvaus"]
    section = {k: finn[k] for k in ("finn_route", "finn_version", "finn_commit", "seconds", "steps_completed",
                                    "step_seconds", "mvaus")}
    section["log"] = "finn/output/build_dataflow.log"
    ref = state.reference_outputs()
    ref_name = ref.source
    section["execution"] = {**_compare(finn["outputs"], ref.outputs), "reference": ref_name}
    section["estimates"] = {
        "finn": finn["estimates"],
        "axe_deploy": {"luts": (hw.get("synth") or {}).get("luts"), "bram18": (hw.get("synth") or {}).get("brams"),
                       "cycles": hw.get("cycles_per_inference_estimated"),
                       "fps": hw.get("inferences_per_second_estimated"),
                       "source": "yosys synth_xilinx (our RTL)" if hw.get("synth") else "no synthesize step"},
    }
    state.report["finn"] = section
    narrower = [r for r in rows if r["status"] == "narrower"]
    wider = [r for r in rows if r["status"] == "wider"]
    checks.record(state.report, "finn_accumulators", not narrower,
           f"{len(rows)} MVAUs: " + ", ".join(f"{r['layer']} FINN {r['finn']} / ours {r['ours']}" for r in rows)
           + (f"; wider: {[r['layer'] + (' (' + r['reason'] + ')' if 'reason' in r else '') for r in wider]}"
              if wider else ""))
    e = section["execution"]
    checks.record(state.report, "finn_execution", e["passed"],
           f"FINN execute_onnx vs {ref_name} on {e['vectors']} test inputs: argmax equal "
           f"{e['argmax_equal_onnxruntime']:.4f}, max |diff| {e['max_abs_diff_vs_onnxruntime']:.3g} "
           f"(allowed {MAX_ABS_DIFF})")
    state.artifacts["finn_output"] = "finn/output/"
    return state


def run_hls4ml_build(folder: Path, x: np.ndarray, *, config: Path | None = None,
                     output_dir: Path | None = None) -> tuple[np.ndarray, dict]:
    """The handoff's build.py in this interpreter's environment: convert, compile (g++ -O0),
    predict ``x``. Returns the C simulation's outputs and hls4ml's accum types per layer."""
    try:
        import hls4ml  # noqa: F401
    except ImportError:
        raise FlowConfigError("step 'hls4ml' needs hls4ml: pip install -e '.[hls4ml]'") from None
    output_dir = output_dir or folder / "hls4ml_prj"
    with tempfile.TemporaryDirectory(prefix="axe-hls4ml-") as tmp:
        xin, yout = Path(tmp) / "x.npy", Path(tmp) / "y.npy"
        np.save(xin, x)
        cmd = [sys.executable, "build.py", "--quick-compile", "--output-dir", str(output_dir),
               "--predict", str(xin), str(yout)]
        if config is not None:
            cmd += ["--config", str(config)]
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=env, stdin=subprocess.DEVNULL)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-12:])
            raise RuntimeError(f"hls4ml build of {folder} failed:\n{tail}")
        y = np.load(yout)
    return y, _json(Path(output_dir) / "accum_types.json")


def step_hls4ml(state: BuildState, cfg: FlowConfig) -> BuildState:
    """Convert and compile the hls4ml handoff, run its C model on the test and worst-case inputs."""
    folder = state.out / "hls4ml"
    handoff = state.report.get("handoff", {}).get("hls4ml", {})
    if not (folder / "build.py").is_file():
        raise FlowConfigError(handoff.get("skipped") or "step 'hls4ml' needs the hls4ml handoff: put 'handoff' "
                                                        "before 'hls4ml' in flow.steps")
    x = state.test_data()[0]
    worst = state.worst_case_inputs
    if worst is None:
        worst = np.zeros((0, *x.shape[1:]), dtype=np.float32)
    both = np.concatenate([x.reshape(len(x), *worst.shape[1:]), worst]).astype(np.float32)
    start = time.perf_counter()
    y, accum = run_hls4ml_build(folder, both)
    seconds = time.perf_counter() - start
    ref = state.reference_outputs()  # the test inputs' reference is kept; only the worst cases run here
    ref_name = ref.source
    ort = np.concatenate([ref.outputs, state.reference_on(worst)]) if len(worst) else ref.outputs
    layers = handoff.get("layers", {})
    section = {"seconds": round(seconds, 2), "test": _compare(y[:len(x)], ort[:len(x)]),
               "worst_case": _compare(y[len(x):], ort[len(x):]) if len(worst) else None, "layers": layers,
               "hls4ml_accum_types": accum, "reference": ref_name}
    state.report["hls4ml"] = section
    t, w = section["test"], section["worst_case"]
    checks.record(state.report, "hls4ml_csim", t["passed"] and (w is None or w["passed"]),
           f"hls4ml C simulation vs {ref_name}: test argmax equal {t['argmax_equal_onnxruntime']:.4f}, "
           f"max |diff| {t['max_abs_diff_vs_onnxruntime']:.3g}; " + (
               f"worst-case inputs ({w['vectors']}) argmax equal {w['argmax_equal_onnxruntime']:.4f}, "
               f"max |diff| {w['max_abs_diff_vs_onnxruntime']:.3g}" if w else "no worst-case inputs"))
    state.artifacts["hls4ml_prj"] = "hls4ml/hls4ml_prj/"
    return state
