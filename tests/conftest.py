import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _model_cache(tmp_path_factory):
    """Trained float models go to a cache of this test session, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AXE_DEPLOY_CACHE", str(tmp_path_factory.mktemp("cache")))
    yield
    mp.undo()
