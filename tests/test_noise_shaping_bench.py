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
    if stem == "noise_binary_embedding":
        check_near_pairs(payload)


def check_near_pairs(payload):
    """Near-pair (5-NN) results of the binary-embedding benchmark, with a property that can fail:
    the relative error of sign(A x) grows as the distance shrinks (std ~ sqrt(pi / (theta m))),
    so on the clustered data its near-pair MAPE exceeds its all-pairs MAPE at every m."""
    near = payload["near_pairs"]
    assert near["k"] == 5 and set(payload["results"]) == {"digits", "random n=1024", "clusters"}
    assert near["clusters"]["median_distance"] < 0.5 < near["clusters"]["median_distance_all"]
    for row in payload["results"]["clusters"]["sign(Ax)"]:
        assert row["near_mape"] > row["mape"]
    for name in payload["results"]:
        for order in (1, 2, 3):
            c = payload["checks"][f"{name} r={order}"]
            ratios = c["near_ratio_to_sign_at_equal_bits"]
            assert len(ratios) == len(c["ratio_to_sign_at_equal_bits"]) >= 1
            assert all(r > 0 for r in ratios + c["near_jl_ratio_to_sign_at_equal_bits"])
            assert c["beats_sign_near_met"] == (max(ratios) < 1)
        bd = payload["by_distance"][name]
        assert {"sign(Ax)", "r=2", "sign(Ax) at r=2 bits"} <= bd.keys()
        assert sum(bd["sign(Ax)"]["count"]) == near[name]["all_pairs"]
