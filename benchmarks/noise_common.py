"""Shared helpers of the noise-shaping benchmarks: arguments, slopes, output files."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path("build/bench/noise")


def parse_args(description: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    return parser.parse_args()


def loglog_slope(x, y) -> float:
    """Least-squares slope of log y against log x."""
    return float(np.polyfit(np.log(np.asarray(x, float)), np.log(np.asarray(y, float)), 1)[0])


def write(out: Path, name: str, payload: dict, fig=None) -> list[Path]:
    """Write out/name.json (and out/name.png from a matplotlib figure); return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    payload = {"benchmark": name, "threads": os.environ.get("OMP_NUM_THREADS", "default"), **payload}
    paths = [out / f"{name}.json"]
    paths[0].write_text(json.dumps(payload, indent=2))
    if fig is not None:
        paths.append(out / f"{name}.png")
        fig.tight_layout()
        fig.savefig(paths[1], dpi=120, bbox_inches="tight")
    for p in paths:
        print(f"wrote {p}")
    return paths


def best_time(fn, repeat: int = 3) -> float:
    """Smallest CPU time of this process over repeat calls of fn(), in seconds.

    CPU time rather than wall time: the machines are shared, and other jobs' load would
    otherwise show up as noise (run single-threaded so that CPU time is the work done).
    """
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return min(times)


def verdict(ok: bool) -> str:
    return "MET" if ok else "NOT MET"
