"""CI cannot skip the RTL tests: with AXE_DEPLOY_REQUIRE_TOOLS=1 a missing simulator or
synthesizer fails the installer and the test session (on a PATH without the tools)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
TOOLS = ("verilator", "iverilog", "vvp", "yosys", "apt-get")


@pytest.fixture
def path_without_tools(tmp_path):
    """A PATH with the usual commands but none of the hardware tools and no apt-get."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("bash", "sh", "env", "id", "cat", "echo"):
        for d in ("/usr/bin", "/bin"):
            if Path(d, name).exists() and not (bin_dir / name).exists():
                (bin_dir / name).symlink_to(Path(d, name))
    assert not any((bin_dir / t).exists() for t in TOOLS)
    return bin_dir


def _install(path: Path, require: bool, fake_apt: str | None = None):
    env = {"PATH": str(path), "AXE_DEPLOY_REQUIRE_TOOLS": "1" if require else "0"}
    if fake_apt is not None:
        (path / "apt-get").write_text(f"#!/bin/sh\n{fake_apt}\n")
        (path / "apt-get").chmod(0o755)
    return subprocess.run(["bash", str(ROOT / "docker" / "install-system-tools.sh")], env=env,
                          capture_output=True, text=True)


def test_installer_fails_loudly_when_it_cannot_install(path_without_tools):
    got = _install(path_without_tools, require=True)
    assert got.returncode == 1 and "ERROR" in got.stderr and "verilator iverilog yosys" in got.stderr
    # apt-get that fails, or that "succeeds" without giving the tools (only root gets that far)
    if os.geteuid() == 0:
        got = _install(path_without_tools, require=False, fake_apt="exit 100")
        assert got.returncode == 1 and "apt-get update failed" in got.stderr
        got = _install(path_without_tools, require=False, fake_apt="exit 0")
        assert got.returncode == 1 and "still missing verilator iverilog yosys" in got.stderr
    else:  # a developer without root: a warning, and the RTL tests skip
        got = _install(path_without_tools, require=False)
        assert got.returncode == 0 and "skipped" in got.stderr


def test_test_session_fails_without_tools_when_required(path_without_tools):
    env = {**os.environ, "PATH": str(path_without_tools), "AXE_DEPLOY_REQUIRE_TOOLS": "1",
           "PYTHONPATH": str(ROOT)}
    got = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
                          str(ROOT / "tests" / "test_config.py")], env=env, cwd=ROOT,
                         capture_output=True, text=True)
    assert got.returncode != 0
    assert "AXE_DEPLOY_REQUIRE_TOOLS=1 but verilator, iverilog, vvp, yosys not on PATH" in got.stdout + got.stderr
