import os
import shutil

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

# The simulators and the synthesizer the RTL tests need (docker/install-system-tools.sh).
HARDWARE_TOOLS = ("verilator", "iverilog", "vvp", "yosys")


def pytest_sessionstart(session):
    """With AXE_DEPLOY_REQUIRE_TOOLS=1 (CI sets it) a missing tool fails the session: the RTL
    tests must run, not skip."""
    if os.environ.get("AXE_DEPLOY_REQUIRE_TOOLS") == "1":
        missing = [t for t in HARDWARE_TOOLS if shutil.which(t) is None]
        if missing:
            raise pytest.UsageError(
                f"AXE_DEPLOY_REQUIRE_TOOLS=1 but {', '.join(missing)} not on PATH: run "
                "`bash docker/install-system-tools.sh` as root (the RTL tests would skip)")


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory):
    """Trained float models go to a cache of this test session, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AXE_DEPLOY_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()


def pytest_collection_modifyitems(items):
    """The container test (tests/test_docker.py) first: where it runs it waits minutes on
    image builds, so under `pytest -n 2` it overlaps the rest of the suite instead of
    ending it. The sort is stable and the same on every worker."""
    items.sort(key=lambda item: item.path.name != "test_docker.py")
