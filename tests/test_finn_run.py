"""Which FINN the `finn` step runs, without running FINN: the routes' settings and their
errors, a failed finn-plus install, the handoff's build.py without Vivado. (FINN itself runs
in test_handoff_compilers.py.)"""

import os
import subprocess
import sys
import threading

import pytest

from axe_deploy.handoff import finn_run
from axe_deploy.handoff.finn import BUILD_PY, LAST_VIVADO_FREE_STEP


@pytest.fixture(autouse=True)
def _no_finn_settings(monkeypatch):
    monkeypatch.delenv("FINN_ROOT", raising=False)
    monkeypatch.delenv("AXE_DEPLOY_FINN_VENV", raising=False)


def test_a_named_venv_is_finn_plus_unless_a_root_is_named(tmp_path):
    venv = tmp_path / "venv"
    (venv / "lib" / "python3.11" / "site-packages" / "finn_plus-1.6.1.dist-info").mkdir(parents=True)
    finn = finn_run.resolve(venv=str(venv))
    assert (finn.route, finn.version, finn.commit) == ("finn-plus", "1.6.1", None)
    assert finn.record() == {"finn_route": "finn-plus", "finn_version": "1.6.1", "finn_commit": None}
    env = finn.env(tmp_path / "build")
    assert "FINN_ROOT" not in env and "PYTHONPATH" not in env and env["FINN_BUILD_DIR"] == str(tmp_path / "build")
    with pytest.raises(finn_run.FinnSetupError, match=r"has no finn-plus: unset it"):
        finn_run.resolve(venv=str(tmp_path))


def test_a_root_selects_the_checkout_route(tmp_path, monkeypatch):
    with pytest.raises(finn_run.FinnSetupError, match=r"has no src/finn"):
        finn_run.resolve(root=str(tmp_path))
    (tmp_path / "src" / "finn").mkdir(parents=True)
    (tmp_path / "README.md").write_text("snapshot of FINN dev at commit `73ba5ed`\n")
    monkeypatch.setenv("FINN_ROOT", str(tmp_path))
    with pytest.raises(finn_run.FinnSetupError, match=r"has no finn_env.sh: build it with `bash .*make_venv.sh"):
        finn_run.resolve(venv=str(tmp_path / "venv"))
    (tmp_path / "venv").mkdir()
    (tmp_path / "venv" / "finn_env.sh").write_text("")
    finn = finn_run.resolve(venv=str(tmp_path / "venv"))
    assert (finn.route, finn.commit, finn.version) == ("checkout", "73ba5ed", None)
    assert finn.env(tmp_path)["PYTHONPATH"] == str(tmp_path / "src")


def test_a_failed_finn_plus_install_is_one_line_naming_its_log(tmp_path, monkeypatch):
    monkeypatch.setattr(sys, "executable", "false")  # the venv stage fails at once
    lines = []
    with pytest.raises(finn_run.FinnSetupError) as e:
        finn_run.build_finn_plus_venv(tmp_path / "finn-plus", progress=lines.append)
    log = tmp_path / "finn-plus.log"
    assert str(e.value) == f"building the finn-plus venv failed at 'venv' (exit 1): see {log}"
    assert log.read_text().startswith("$ false -m venv")
    assert not (tmp_path / "finn-plus" / finn_run.COMPLETE).exists()
    assert [line.split(" (")[0] for line in lines[1:]] == ["[axe-deploy]   1/4 venv"]


def test_finn_plus_venv_builders_take_turns(tmp_path):
    """A second builder (pytest -n 2) waits for the first, then finds the venv complete."""
    venv = tmp_path / "finn-plus"
    lock = finn_run._locked(venv)  # the first builder, mid-build
    (venv / finn_run.COMPLETE).parent.mkdir()
    (venv / finn_run.COMPLETE).write_text("")
    second = threading.Thread(target=finn_run.build_finn_plus_venv, args=(venv,), kwargs={"progress": print})
    second.start()
    second.join(0.5)
    assert second.is_alive()
    lock.close()
    second.join(5)
    assert not second.is_alive()


def test_build_py_without_vivado_runs_only_the_vivado_free_steps(tmp_path):
    (tmp_path / "build.py").write_text(BUILD_PY % {"last": LAST_VIVADO_FREE_STEP})
    env = {k: v for k, v in os.environ.items() if k != "XILINX_VIVADO"}
    proc = subprocess.run([sys.executable, "build.py"], cwd=tmp_path, env=env, capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("FINN's full build needs Vivado: set XILINX_VIVADO (source Vivado's "
                                   "settings64.sh) or pass --vivado-free")
