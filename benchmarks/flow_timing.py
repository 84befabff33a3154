"""Whole-flow time: float model to bit-exact RTL simulation and synthesis.

    python benchmarks/flow_timing.py [FLOW.toml] [--out DIR] [--target-s 120] [--retrain]

Runs the flow (default: flows/digits_mlp.toml) after installation, prints each step's
time, the total against the target, and the RTL check, and writes timing.json. With
--retrain the float model is trained again (the cache is otherwise reused).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from axe_deploy.flow import config
from axe_deploy.flow.runner import run_flow

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("flow", nargs="?", default=str(ROOT / "flows" / "digits_mlp.toml"))
    ap.add_argument("--out", default="build/bench/flow_timing")
    ap.add_argument("--target-s", type=float, default=120.0)
    ap.add_argument("--retrain", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cfg = config.load(args.flow, ["model.retrain=true"] if args.retrain else [])
    out = Path(args.out)
    start = time.perf_counter()
    report = run_flow(cfg, out / "build", progress=lambda s: None)
    total = time.perf_counter() - start
    for step, seconds in report["timings_s"].items():
        print(f"{step:<14}{seconds:>9.2f} s")
    sim = report.get("hardware", {}).get("rtl_sim", {})
    print(f"{'total':<14}{total:>9.2f} s   target <= {args.target_s:.0f} s: {'met' if total <= args.target_s else 'MISSED'}")
    if sim:
        print(f"rtl sim: {sim['bit_exact_vectors']}/{sim['vectors']} bit-exact, {sim['overflows']} overflows")
    result = {"flow": args.flow, "total_s": total, "target_s": args.target_s, "steps_s": report["timings_s"],
              "rtl_sim": sim, "met": total <= args.target_s}
    (out / "timing.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
