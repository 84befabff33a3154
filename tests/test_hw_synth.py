"""yosys synthesis figures: parsing, hierarchy sums, and that they move with the
accumulator width; the hardware MLP benchmark's smoke run."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from axe_deploy.hw.synth import KEYS, figures, flatten_counts, parse_stat, synthesize
from axe_deploy.hw.testing import random_mvau
from axe_deploy.hw.verilog import write_rtl

STAT = """
12. Printing statistics.

=== $paramod$1b5d\\axe_mvau ===

   Number of wires:                 25
   Number of cells:                 51
     CARRY4                          3
     FDRE                           36
     FDSE                            2
     INV                             5
     LUT6                            6
     MUXF7                           1
     RAM32M                          2
     RAMB18E1                        1

=== axe_top_fc0 ===

   Number of wires:                 25
   Number of cells:                  2
     $paramod$1b5d\\axe_mvau         2

=== design hierarchy ===

   axe_top_fc0                       1
"""


def test_parse_stat_sums_submodules_into_the_five_figures():
    modules = {k.lstrip("\\"): v for k, v in parse_stat(STAT).items()}
    assert modules["axe_top_fc0"] == Counter({"$paramod$1b5d\\axe_mvau": 2})
    fc0 = figures(flatten_counts(modules, "axe_top_fc0"))
    # two instances; RAM32M counts 4 LUTs, INV 1; RAMB18E1 is one 18 Kb block
    assert fc0 == {"luts": 2 * (5 + 6 + 2 * 4), "ffs": 2 * 38, "carry4": 6, "dsps": 0, "brams": 2}
    assert tuple(fc0) == KEYS


@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed")
def test_figures_move_with_the_accumulator_width(tmp_path):
    rng = np.random.default_rng(0)
    exact = random_mvau(rng, "fc", 8, 2, SIMD=2, PE=2, input_bits=4, n_thresholds=3)
    wide_bits = exact.acc_bits + 12
    wide = random_mvau(np.random.default_rng(0), "fc", 8, 2, SIMD=2, PE=2, input_bits=4,
                       n_thresholds=3, acc_bits=wide_bits)
    assert np.array_equal(exact.weights, wide.weights)
    narrow = synthesize(write_rtl([exact], tmp_path / "narrow"), jobs=1)
    broad = synthesize(write_rtl([wide], tmp_path / "wide"), jobs=1)
    assert narrow.top == narrow.layers["fc"]  # one layer, no converters or FIFOs
    # each of the PE = 2 accumulator registers is 12 flip-flops narrower
    assert broad.top["ffs"] - narrow.top["ffs"] >= 2 * 12
    assert narrow.top["luts"] < broad.top["luts"]
    assert narrow.top["carry4"] <= broad.top["carry4"]
    assert (tmp_path / "narrow" / "synth" / "group0.log").exists()


@pytest.mark.skipif(shutil.which("yosys") is None or shutil.which("iverilog") is None,
                    reason="yosys and iverilog needed")
def test_hw_mlp_benchmark_quick(tmp_path):
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "hw_mlp.py"
    proc = subprocess.run([sys.executable, str(script), "--quick", "--out", str(tmp_path)],
                          capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads((tmp_path / "hw_mlp.json").read_text())
    assert result["bit_exact_vectors"] == result["vectors"] == 20
    assert result["interval_measured"] == result["interval_estimated"]
    assert result["synth"]["luts"] > 0 and set(result["synth"]) == set(KEYS)
