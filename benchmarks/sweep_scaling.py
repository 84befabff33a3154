"""The same sweep in this process and as Ray tasks on a local runtime, in one run.

    python benchmarks/sweep_scaling.py                 # 69 digits-cnn points, 2 Ray workers
    python benchmarks/sweep_scaling.py --flow flows/digits_mlp.toml --workers 4 --bits 10:20 --seeds 0:1

Prints both wall-clock times (the Ray one includes starting and stopping the runtime and
its workers' imports), their ratio, and the machine's load average before and after
(the CPUs may be shared), and checks that both runs give the same points: metric, P,
exact width and bits, everything but the timings. Exit status 1 when they differ.
The float models are trained (or loaded) into the zoo cache before either timing starts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import torch

from axe_deploy.flow import config
from axe_deploy.cli.main import DEFAULT_FLOW
from axe_deploy.flow.sweep import parse_range, plan_jobs, sweep
from axe_deploy.flow.sweep_ray import sweep_on_ray


def comparable(points: list[dict]) -> list[str]:
    return sorted(json.dumps({k: v for k, v in p.items() if k != "seconds"}, sort_keys=True) for p in points)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--flow", type=Path, default=DEFAULT_FLOW.with_name("digits_cnn.toml"))
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--bits", default="10:14", help="P values, LO:HI")
    ap.add_argument("--methods", default="rtn,gpfq,optq,axe-rtn,axe-gpfq,axe-optq,naive")
    ap.add_argument("--seeds", default="0:5")  # 138 points: long enough to amortise Ray's start-up
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()

    asked = dict(bits=parse_range(args.bits, "--bits"), tiles=[0], methods=args.methods.split(","),
                 seeds=parse_range(args.seeds, "--seeds"))
    torch.set_num_threads(int(os.environ.get("AXE_DEPLOY_THREADS", "1")))
    cfg = config.load(args.flow, args.overrides)
    n = len(plan_jobs(**asked))
    with tempfile.TemporaryDirectory() as tmp:
        # float models into the cache (trained once if missing), outside both timings
        sweep(cfg, Path(tmp) / "warm", progress=False, **dict(asked, methods=["rtn"]))
        load_before = os.getloadavg()
        start = time.perf_counter()
        local = sweep(cfg, Path(tmp) / "local", progress=False, **asked)
        t_local = time.perf_counter() - start
        start = time.perf_counter()
        on_ray = sweep_on_ray(cfg, Path(tmp) / "ray", workers=args.workers, progress=False, **asked)
        t_ray = time.perf_counter() - start
        load_after = os.getloadavg()
    same = comparable(local["points"]) == comparable(on_ray["points"])
    print(f"{cfg.model.name}: {n} points ({args.methods}; P {args.bits}; seeds {args.seeds}) "
          f"on {os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}")
    busy = {name: sum(p["seconds"] for p in r["points"]) for name, r in (("local", local), ("ray", on_ray))}
    print(f"in-process:              {t_local:7.1f} s   (points {busy['local']:.1f} s)")
    print(f"Ray, {args.workers} workers (local): {t_ray:7.1f} s   (points {busy['ray']:.1f} s, summed over "
          f"workers)   ratio {t_ray / t_local:.2f}")
    print(f"load average (1 min) before {load_before[0]:.1f}, after {load_after[0]:.1f}")
    print("points identical (metric, P, exact widths, bits):", same)
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
