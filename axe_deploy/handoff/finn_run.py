"""Run a FINN handoff folder in FINN: which FINN, its venv, its Vivado-free build, its reports.

An adapter: FINN is never imported here (it pins onnx, onnxruntime and protobuf versions of
its own); the handoff's ``build.py`` runs in FINN's interpreter as a subprocess. Two routes:

- ``finn-plus`` (the default): FINN as users install it, the finn-plus package from PyPI, in
  a venv of its own: ``[finn] venv`` / ``$AXE_DEPLOY_FINN_VENV`` (finn-plus installed there),
  else ``finn-plus-<version>`` in the axe-deploy cache, built there once by
  :func:`build_finn_plus_venv` (~2-3 min, ~2.3 GB; a file lock lets one builder at a time).
- ``checkout``: ``[finn] root`` / ``$FINN_ROOT`` names a FINN source checkout, run from its
  ``src`` in the venv its ``make_venv.sh`` builds (``[finn] venv`` / ``$AXE_DEPLOY_FINN_VENV``,
  else ``finn-venv`` in the cache).

:func:`run_handoff` returns FINN's record and which FINN made it (``finn_route``,
``finn_version`` of finn-plus or ``finn_commit`` of the checkout).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from axe_deploy.handoff.finn_graph import InputQuantization, quantize_input
from axe_deploy.zoo import cache_dir

FINN_PLUS = "finn-plus==1.6.1"
# The project's torch pin (a CPU build here; an unpinned resolve pulls a CUDA build of
# several GB); finn-plus imports torch for its LayerNorm op.
TORCH = "torch==2.13.0"
# Installs finn-plus's requirements without its extras and without brevitas: finn-plus never
# imports brevitas, and its pin brevitas==0.13.0 (setuptools<70) cannot sit beside torch 2.13
# (setuptools>=77.0.3); and psutil, which it imports without declaring it.
REQUIREMENTS = """import importlib.metadata, re, subprocess, sys
reqs = [r for r in importlib.metadata.requires("finn-plus") or []
        if "extra ==" not in r and re.match(r"[\\w.-]+", r).group().lower() != "brevitas"]
print("requirements:", *reqs, "psutil", flush=True)
sys.exit(subprocess.call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check", *reqs, "psutil"]))"""
COMPLETE = ".axe-deploy-complete"  # written last: a venv without it is an interrupted build
TIMEOUT_S = 1800


class FinnSetupError(ValueError):
    """No FINN to run: the message names the setting or the install log to look at."""


class FinnBuildError(RuntimeError):
    """FINN's Vivado-free build of a handoff stopped; the message has the end of its output."""


def _say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _locked(venv: Path):
    venv.parent.mkdir(parents=True, exist_ok=True)
    lock = open(venv.parent / f".{venv.name}.lock", "w")
    fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
    return lock


def build_finn_plus_venv(venv: Path, progress=_say) -> Path:
    """finn-plus in ``venv``, built there unless complete: a venv, torch, finn-plus without its
    dependencies, then those of its requirements it needs. Each stage is one progress line;
    pip's output goes to ``<venv>.log``, which a failure names."""
    venv = Path(venv)
    with _locked(venv):
        if (venv / COMPLETE).is_file():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        log = venv.with_name(venv.name + ".log")
        log.write_text("")
        py = str(venv / "bin" / "python")
        pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        start = time.perf_counter()
        progress(f"[axe-deploy] building the {FINN_PLUS} venv in {venv} (once; ~2-3 min, ~2.3 GB)")

        def stage(n: int, what: str, cmd: list[str]) -> None:
            progress(f"[axe-deploy]   {n}/4 {what} ({time.perf_counter() - start:.0f} s)")
            with open(log, "a") as f:
                f.write(f"$ {' '.join(cmd)}\n")
                f.flush()
                rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env).returncode
            if rc != 0:
                raise FinnSetupError(f"building the finn-plus venv failed at '{what}' (exit {rc}): see {log}")

        stage(1, "venv", [sys.executable, "-m", "venv", str(venv)])
        stage(2, TORCH, [*pip, TORCH])
        stage(3, f"{FINN_PLUS} without its dependencies", [*pip, "--no-deps", FINN_PLUS])
        stage(4, "its requirements but brevitas, and psutil", [py, "-c", REQUIREMENTS])
        (venv / COMPLETE).write_text(FINN_PLUS + "\n")
        progress(f"[axe-deploy] finn-plus venv ready in {time.perf_counter() - start:.0f} s")
    return venv


def build_checkout_venv(venv: Path, root: Path) -> Path:
    """The venv of the FINN checkout ``root``, built by its ``make_venv.sh`` unless complete."""
    script = root / "make_venv.sh"
    if not script.is_file():
        raise FinnSetupError(f"{script} not found: build the checkout's venv yourself and set [finn] venv")
    with _locked(venv):
        if not (venv / "finn_env.sh").exists():  # make_venv.sh writes it last; running it again completes it
            _say(f"[axe-deploy] building FINN's venv with {script} in {venv} (once; ~1-3 min)")
            proc = subprocess.run(["bash", str(script), str(venv)], capture_output=True, text=True)
            if proc.returncode != 0:
                raise FinnSetupError(f"building FINN's venv with {script} failed: "
                                     f"{(proc.stderr.strip().splitlines() or ['no output'])[-1]}")
    return venv


def finn_plus_version(venv: Path) -> str | None:
    """The finn-plus version installed in ``venv``, None where there is none."""
    found = sorted(Path(venv).glob("lib/python*/site-packages/finn_plus-*.dist-info"))
    return found[-1].name.removesuffix(".dist-info").split("-")[1] if found else None


def finn_commit(root: Path) -> str | None:
    """The checkout's commit: git's, else the one its README names (a snapshot)."""
    if (root / ".git").exists():  # its own checkout, not a folder inside another repository
        proc = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True)
        if proc.returncode == 0:
            return proc.stdout.strip()
    readme = root / "README.md"
    found = re.search(r"commit\s+`?([0-9a-f]{7,40})", readme.read_text()) if readme.is_file() else None
    return found.group(1) if found else None


@dataclass(frozen=True)
class Finn:
    """One FINN to run: its venv, and what it is."""

    route: str  # "finn-plus" | "checkout"
    venv: Path
    root: Path | None = None  # the checkout
    version: str | None = None  # finn-plus's version
    commit: str | None = None  # the checkout's commit

    def env(self, build_dir: Path) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "FINN_ROOT")}  # never ours in FINN
        env.update(FINN_BUILD_DIR=str(build_dir), OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
        if self.root is not None:
            env.update(PYTHONPATH=str(self.root / "src"), FINN_ROOT=str(self.root))
        return env

    def record(self) -> dict:
        return {"finn_route": self.route, "finn_version": self.version, "finn_commit": self.commit}


def resolve(root: str = "", venv: str = "", progress=_say) -> Finn:
    """The FINN that ``[finn] root`` / ``venv`` (else $FINN_ROOT / $AXE_DEPLOY_FINN_VENV) select,
    with its venv built into the axe-deploy cache when none is named."""
    root = root or os.environ.get("FINN_ROOT", "")
    venv = venv or os.environ.get("AXE_DEPLOY_FINN_VENV", "")
    named = Path(venv).expanduser() if venv else None
    if root:
        checkout = Path(root).expanduser()
        if not (checkout / "src" / "finn").is_dir():
            raise FinnSetupError(f"FINN root '{checkout}' ([finn] root or $FINN_ROOT) has no src/finn: point it "
                                 f"at a FINN checkout, or unset both to use finn-plus")
        if named is None:
            named = build_checkout_venv(cache_dir() / "finn-venv", checkout)
        elif not (named / "finn_env.sh").is_file():
            raise FinnSetupError(f"FINN venv '{named}' ([finn] venv or $AXE_DEPLOY_FINN_VENV) has no finn_env.sh: "
                                 f"build it with `bash {checkout}/make_venv.sh {named}`")
        return Finn("checkout", named, root=checkout, commit=finn_commit(checkout))
    if named is None:
        named = build_finn_plus_venv(cache_dir() / f"finn-plus-{FINN_PLUS.split('==')[1]}", progress)
    version = finn_plus_version(named)
    if version is None:
        raise FinnSetupError(f"FINN venv '{named}' ([finn] venv or $AXE_DEPLOY_FINN_VENV) has no finn-plus: "
                             f"unset it to have axe-deploy build one, or set [finn] root to its FINN checkout")
    return Finn("finn-plus", named, version=version)


def _json(path: Path):
    return json.loads(path.read_text()) if path.is_file() else None


def _total(resources: dict | None, key: str):
    return (resources or {}).get("total", {}).get(key)


def run_handoff(folder: Path, x: np.ndarray, finn: Finn) -> dict:
    """The FINN handoff in ``folder`` through FINN's Vivado-free steps, then FINN's
    ``execute_onnx`` on ``x`` (float inputs, quantized as ``input_quantization.json`` says).

    Returns which FINN ran, steps completed and their seconds, accDataType per MVAU against
    ours, FINN's outputs (``outputs``, an array) and its estimates. Works on any handoff
    written by :func:`axe_deploy.handoff.finn.write_handoff`.
    """
    iq = _json(folder / "input_quantization.json")
    iq = InputQuantization(iq["scale"], iq["datatype"], iq["min"], iq["max"]) if iq.get("datatype") else None
    with tempfile.TemporaryDirectory(prefix="axe-finn-") as tmp:
        inputs = Path(tmp) / "inputs.npy"
        np.save(inputs, quantize_input(x, iq))
        (Path(tmp) / "finn_build").mkdir()
        start = time.perf_counter()
        proc = subprocess.run([str(finn.venv / "bin" / "python"), "build.py", "--vivado-free", "--execute",
                               str(inputs)], cwd=folder, env=finn.env(Path(tmp) / "finn_build"),
                              capture_output=True, text=True, timeout=TIMEOUT_S, stdin=subprocess.DEVNULL)
        seconds = time.perf_counter() - start
    out = folder / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "axe_finn_stdout.log").write_text(proc.stdout + proc.stderr)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).strip().splitlines()[-12:]
        raise FinnBuildError(f"FINN's Vivado-free build of {folder.name}/ failed (see {folder.name}/output/"
                             f"build_dataflow.log):\n" + "\n".join(tail))
    report = out / "report"
    steps = _json(report / "time_per_step.json") or _json(out / "time_per_step.json") or {}  # finn-plus | FINN dev
    steps.pop("total_build_time", None)
    perf = _json(report / "estimate_network_performance.json") or {}
    resources = _json(report / "estimate_layer_resources.json")
    return {
        **finn.record(), "seconds": round(seconds, 2), "steps_completed": list(steps), "step_seconds": steps,
        "mvaus": _json(out / "axe_accumulator_check.json")["mvaus"],
        "outputs": np.load(out / "axe_execution.npy"),
        "estimates": {"luts": _total(resources, "LUT"), "bram18": _total(resources, "BRAM_18K"),
                      "dsp": _total(resources, "DSP"), "max_cycles": perf.get("max_cycles"),
                      "max_cycles_node": perf.get("max_cycles_node_name"),
                      "fps": perf.get("estimated_throughput_fps"), "latency_ns": perf.get("estimated_latency_ns"),
                      "layer_cycles": _json(report / "estimate_layer_cycles.json")},
    }
