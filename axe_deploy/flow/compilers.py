"""Opt-in flow steps that run the handoffs in the compilers themselves.

``finn``: the handoff's ``build.py --vivado-free --execute`` in FINN's own venv (a
subprocess; FINN is never imported here): every Vivado-free FINN step on the unmodified
``finn/`` folder, FINN's ``accDataType`` per MVAU against our annotation, FINN's
``execute_onnx`` against onnxruntime on the test inputs, and FINN's estimates next to ours.
``hls4ml``: the handoff's ``hls4ml/build.py --predict``: hls4ml converts, compiles its C
model with g++ and runs it on the test inputs and the worst-case inputs, against onnxruntime.
Both record a report section and a verification check (``report["checks"]``).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from axe_deploy.flow import checks
from axe_deploy.core.compare import compare_outputs
from axe_deploy.flow.config import FlowConfigError
from axe_deploy.handoff.finn_graph import InputQuantization, quantize_input
from axe_deploy.flow.hardware import reference_outputs
from axe_deploy.zoo import cache_dir

REPO = Path(__file__).resolve().parents[2]
FINN_TIMEOUT_S = 1800
MAX_ABS_DIFF = 1e-4  # FINN's and hls4ml's float outputs against onnxruntime


def finn_root(cfg: dict | None = None) -> Path:
    """FINN's source: [finn] root, $FINN_ROOT, else the snapshot ``shared/vendor/finn`` beside the
    repository (``../shared/vendor/finn``) or beside one of its parent folders."""
    explicit = (cfg or {}).get("finn", {}).get("root") or os.environ.get("FINN_ROOT")
    if explicit:
        root = Path(explicit).expanduser()
        if not (root / "src" / "finn").is_dir():
            raise FlowConfigError(f"FINN root '{root}' ([finn] root or $FINN_ROOT) has no src/finn; "
                                  f"point it at a FINN checkout")
        return root
    for parent in REPO.parents:
        root = parent / "shared" / "vendor" / "finn"
        if (root / "src" / "finn").is_dir():
            return root
    raise FlowConfigError("FINN not found: set [finn] root or $FINN_ROOT to a FINN checkout "
                          "(the snapshot is ../shared/vendor/finn)")


def finn_venv(cfg: dict | None = None) -> Path:
    """FINN's venv: [finn] venv, $AXE_DEPLOY_FINN_VENV, else finn-venv in the zoo's cache folder
    ($AXE_DEPLOY_CACHE or ~/.cache/axe-deploy), built there with the snapshot's make_venv.sh
    when absent (~1-3 min, once)."""
    explicit = (cfg or {}).get("finn", {}).get("venv") or os.environ.get("AXE_DEPLOY_FINN_VENV")
    venv = Path(explicit).expanduser() if explicit else cache_dir() / "finn-venv"
    python = venv / "bin" / "python"
    if python.exists() and (venv / "finn_env.sh").exists():
        return venv
    if explicit:
        raise FlowConfigError(f"FINN venv '{venv}' ([finn] venv or $AXE_DEPLOY_FINN_VENV) has no bin/python "
                              f"and finn_env.sh; build it with `bash <FINN root>/make_venv.sh {venv}`")
    return build_finn_venv(venv, finn_root(cfg))


def build_finn_venv(venv: Path, root: Path) -> Path:
    """FINN's venv built by the snapshot's ``make_venv.sh`` into ``venv`` unless it is there."""
    script = root / "make_venv.sh"
    if not script.is_file():
        raise FlowConfigError(f"{script} not found: build FINN's venv yourself and set [finn] venv")
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:  # one builder at a time (pytest -n 2)
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "finn_env.sh").exists():
            print(f"[axe-deploy] building FINN's venv in {venv} (once; ~1-3 min) ...", flush=True)
            # make_venv.sh writes finn_env.sh at its end: a venv without it is incomplete and
            # running the script again completes it
            proc = subprocess.run(["nice", "bash", str(script), str(venv)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise RuntimeError(f"building FINN's venv with {script} failed:\n{proc.stderr[-2000:]}")
    return venv


def finn_commit(root: Path) -> str | None:
    """The FINN commit: git's, else the one the snapshot's README names."""
    if (root / ".git").exists():  # its own checkout, not a folder inside another repository
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout.strip()
    readme = root / "README.md"
    found = re.search(r"commit\s+`?([0-9a-f]{7,40})", readme.read_text()) if readme.is_file() else None
    return found.group(1) if found else None


def _finn_env(venv: Path, root: Path, build_dir: Path) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # never our packages in FINN's interpreter
    env.update(PYTHONPATH=str(root / "src"), FINN_ROOT=str(root), FINN_BUILD_DIR=str(build_dir),
               OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
    return env


def _compare(got: np.ndarray, ref: np.ndarray) -> dict:
    """``compare_outputs`` within MAX_ABS_DIFF (argmax ties count as agreement), under the report's keys."""
    c = compare_outputs(got, ref, MAX_ABS_DIFF)
    return {"vectors": c["vectors"], "argmax_equal_onnxruntime": c["argmax_agree"], "argmax_ties": c["ties"],
            "max_abs_diff_vs_onnxruntime": c["max_abs_diff"], "passed": c["passed"]}


def _json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _total(resources: dict | None, key: str):
    if not resources:
        return None
    total = resources.get("total", {})
    return total.get(key)


class FinnBuildError(RuntimeError):
    """FINN's Vivado-free build of a handoff stopped; the message has the end of its output."""


def run_finn_handoff(folder: Path, x: np.ndarray, cfg: dict | None = None) -> dict:
    """The FINN handoff in ``folder`` through FINN's Vivado-free steps in FINN's venv, then FINN's
    ``execute_onnx`` on ``x`` (float inputs, quantized as ``input_quantization.json`` says).

    Returns FINN's record: steps completed, accDataType per MVAU against ours, its outputs
    (``outputs``, an array) and its estimates. Works on any handoff written by
    :func:`axe_deploy.handoff.finn.write_handoff`, from our flow or from a foreign QONNX file.
    """
    venv, root = finn_venv(cfg), finn_root(cfg)
    iq = _json(folder / "input_quantization.json")
    iq = InputQuantization(iq["scale"], iq["datatype"], iq["min"], iq["max"]) if iq.get("datatype") else None
    with tempfile.TemporaryDirectory(prefix="axe-finn-") as tmp:
        inputs = Path(tmp) / "inputs.npy"
        np.save(inputs, quantize_input(x, iq))
        start = time.perf_counter()
        proc = subprocess.run([str(venv / "bin" / "python"), "build.py", "--vivado-free", "--execute", str(inputs)],
                              cwd=folder, env=_finn_env(venv, root, Path(tmp) / "finn_build"),
                              capture_output=True, text=True, timeout=FINN_TIMEOUT_S, stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    out = folder / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "axe_finn_stdout.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-12:]
        raise FinnBuildError(f"FINN's Vivado-free build of {folder.name}/ failed (see {folder.name}/output/"
                             f"build_dataflow.log):\n" + "\n".join(tail))
    perf = _json(out / "report" / "estimate_network_performance.json") or {}
    resources = _json(out / "report" / "estimate_layer_resources.json")
    return {
        "finn_commit": finn_commit(root), "seconds": round(seconds, 2),
        "steps_completed": list(_json(out / "time_per_step.json") or {}),
        "mvaus": _json(out / "axe_accumulator_check.json")["mvaus"],
        "outputs": np.load(out / "axe_execution.npy"),
        "estimates": {"luts": _total(resources, "LUT"), "bram18": _total(resources, "BRAM_18K"),
                      "dsp": _total(resources, "DSP"), "max_cycles": perf.get("max_cycles"),
                      "max_cycles_node": perf.get("max_cycles_node_name"),
                      "fps": perf.get("estimated_throughput_fps"), "latency_ns": perf.get("estimated_latency_ns"),
                      "layer_cycles": _json(out / "report" / "estimate_layer_cycles.json")},
    }


def step_finn(state, cfg):
    """Run the FINN handoff's Vivado-free steps in FINN's venv; record the ``finn`` section."""
    folder = state.out / "finn"
    if not (folder / "build.py").is_file():
        raise FlowConfigError("step 'finn' needs the FINN handoff: put 'handoff' before 'finn' in flow.steps")
    x = state.test_data()[0]
    try:
        finn = run_finn_handoff(folder, x, cfg)
    except FinnBuildError as e:
        checks.record(state.report, "finn_build", False, str(e).splitlines()[-1])
        raise
    hw = state.report.get("hardware", {})
    rows = finn["mvaus"]
    section = {k: finn[k] for k in ("finn_commit", "seconds", "steps_completed", "mvaus")}
    section["log"] = "finn/output/build_dataflow.log"
    reference, ref_name = state.hw["test_reference"]  # on the same test inputs, from step_lower
    section["execution"] = {**_compare(finn["outputs"], reference), "reference": ref_name}
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


def step_hls4ml(state, cfg):
    """Convert and compile the hls4ml handoff, run its C model on the test and worst-case inputs."""
    folder = state.out / "hls4ml"
    if not (folder / "build.py").is_file():
        skipped = state.report.get("handoff", {}).get("hls4ml", {}).get("skipped")
        raise FlowConfigError(skipped or "step 'hls4ml' needs the hls4ml handoff: put 'handoff' before 'hls4ml' "
                                         "in flow.steps")
    x = state.test_data()[0]
    worst_file = folder / "worst_case_inputs.npy"
    worst = np.load(worst_file) if worst_file.is_file() else np.zeros((0, *x.shape[1:]), dtype=np.float32)
    both = np.concatenate([x.reshape(len(x), *worst.shape[1:]), worst]).astype(np.float32)
    start = time.perf_counter()
    y, accum = run_hls4ml_build(folder, both)
    seconds = time.perf_counter() - start
    ort, ref_name = reference_outputs(state, both.reshape(len(both), *x.shape[1:]))
    layers = state.report.get("handoff", {}).get("hls4ml", {}).get("layers", {})
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
