"""The same integers on every x86-64 CPU: a flow's software steps under four CPU settings.

    python benchmarks/determinism.py [FLOW.toml] [--out DIR] [--steps JSON] [--set KEY=VALUE ...]

Runs ``axe-deploy run FLOW`` (steps build_models … report, or ``--steps``; a language model
takes '["build_models","quantize","evaluate","report"]') once per setting, each in its
own process with an empty model cache: default, ``MKL_CBWR=COMPATIBLE``,
``ATEN_CPU_CAPABILITY=default`` and ``OMP_NUM_THREADS=2`` (the settings under which one
machine reproduces another's float kernels, docs/usage.md). From each build it reads the
exported QONNX graph, if any, the SHA-256 of every weight Quant's integer matrix and of every
activation Quant's scale, and from report.json the metrics and exact accumulator widths;
it prints them side by side and exits 1 when any differs between settings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

ROOT = Path(__file__).resolve().parents[1]
SOFTWARE_STEPS = '["build_models","quantize","export","annotate","validate","report"]'
SETTINGS = {"default": {}, "MKL_CBWR=COMPATIBLE": {"MKL_CBWR": "COMPATIBLE"},
            "ATEN_CPU_CAPABILITY=default": {"ATEN_CPU_CAPABILITY": "default"},
            "OMP_NUM_THREADS=2": {"OMP_NUM_THREADS": "2"}}


def digest(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()[:12]


def fingerprint(build: Path) -> dict:
    """Integer weights and activation scales (hashes) of the QONNX graph, figures of report.json."""
    out = {}
    qonnx = build / "model.qonnx.onnx"
    model = ModelWrapper(str(qonnx)) if qonnx.is_file() else None
    for node in model.graph.node if model else []:
        if node.op_type != "Quant":
            continue
        scale = model.get_initializer(node.input[1])
        value = model.get_initializer(node.input[0])
        if value is not None:  # a weight or bias: its integers
            out[f"int {node.input[0]}"] = digest(np.round(value / scale).astype(np.int64))
        else:
            out[f"scale {node.output[0]}"] = digest(scale.astype(np.float32))
    report = json.loads((build / "report.json").read_text())
    if "metrics" in report:
        m = report["metrics"]
        out.update({f"{k} accuracy": f"{m[f'{k}_accuracy']:.4f}" for k in ("float", "quant", "onnxruntime")})
    if "evaluation" in report:
        ev = report["evaluation"]
        out.update({f"{k} {ev['metric']}": f"{ev[k]:.6f}" for k in ("float", "quantized")})
    if "unconstrained" in report:
        out["unconstrained accuracy"] = f"{report['unconstrained']['accuracy']:.4f}"
        out.update({f"unconstrained {k}": f"INT{v}" for k, v in report["unconstrained"]["accumulator_bits"].items()})
    out.update({f"range {l['name']}": str(l["accumulator_range"]) for l in report.get("layers", [])})
    if "layers" not in report:  # no exported graph: the PTQ's exact widths
        out.update({f"exact {p['name']}": f"INT{p['exact_bits']}" for p in report.get("ptq", []) if p})
    out["checks"] = ",".join(k for k, v in report.get("checks", {}).items() if not v["passed"]) or "all passed"
    return out


def run(flow: str, out: Path, name: str, env: dict, steps: str, sets: list[str]) -> dict:
    build = out / name.replace("=", "_")
    cmd = [sys.executable, "-m", "axe_deploy.cli.main", "run", flow, "--out", str(build), "--force",
           "--set", f"flow.steps={steps}", *[a for s in sets for a in ("--set", s)]]
    with tempfile.TemporaryDirectory(prefix="axe-cache-") as cache:
        full = {**os.environ, "OMP_NUM_THREADS": "1", "AXE_DEPLOY_CACHE": cache, **env,
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
        for k in ("MKL_CBWR", "ATEN_CPU_CAPABILITY"):
            if k not in env:
                full.pop(k, None)
        done = subprocess.run(cmd, env=full, capture_output=True, text=True)
    if done.returncode not in (0, 3):  # 3: a check failed; its name is in the fingerprint
        sys.exit(f"{name}: {' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return fingerprint(build)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("flow", nargs="?", default=str(ROOT / "flows" / "digits_mlp.toml"))
    ap.add_argument("--out", default="build/bench/determinism")
    ap.add_argument("--steps", default=SOFTWARE_STEPS)
    ap.add_argument("--set", action="append", default=[], dest="sets")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {name: run(args.flow, out, name, env, args.steps, args.sets) for name, env in SETTINGS.items()}
    keys = list(dict.fromkeys(k for r in results.values() for k in r))
    width = max(len(k) for k in keys)
    print(f"{'':{width}}  " + "  ".join(f"{n:>27}" for n in results))
    differ = []
    for k in keys:
        values = [results[n].get(k, "-") for n in results]
        mark = " " if len(set(values)) == 1 else "*"
        differ += [k] if mark == "*" else []
        print(f"{k:{width}}{mark} " + "  ".join(f"{v:>27}" for v in values))
    (out / "determinism.json").write_text(json.dumps(results, indent=2))
    print(f"{'identical under all settings' if not differ else 'DIFFER: ' + ', '.join(differ)}")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
