"""Smoke runs of the noise-shaping benchmarks (--quick): they run and write their results."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    "script,keys",
    [
        ("noise_rff_kernel.py", {"results", "slopes", "sklearn_rbf_sampler"}),
        ("noise_rff_svm.py", {"exact_accuracy", "rows", "checks"}),
        ("noise_binary_embedding.py", {"results", "checks"}),
        ("noise_cost.py", {"quantize_decode", "exponents", "projection"}),
    ],
)
def test_benchmark_quick_run(script, keys, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    cmd = [sys.executable, str(BENCH / script), "--quick", "--out", str(tmp_path)]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=120)
    stem = script[:-3]
    payload = json.loads((tmp_path / f"{stem}.json").read_text())
    assert keys <= payload.keys()
    assert (tmp_path / f"{stem}.png").stat().st_size > 10_000
