"""The same integers on any x86-64 CPU: the demo's PTQ under settings that change the float
kernels (MKL's code path, ATen's vector width) gives the integers of the default run.
With float32 statistics MKL_CBWR=COMPATIBLE moved fc2's and fc3's integers, and float32
forward passes the bias correction's last bits (issue #28)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = """
import hashlib, json, sys
import numpy as np, torch
torch.set_num_threads(1)
from axe_deploy.flow import config
from axe_deploy.flow.software import step_build_models, step_quantize
from axe_deploy.flow.state import BuildState
cfg = config.load(sys.argv[1], [])
state = step_quantize(step_build_models(BuildState(out=None), cfg), cfg)
model = state.bundle.quant_model
out = {name: hashlib.sha256(model.get_submodule(name).quant_weight().int().numpy().astype(np.int64).tobytes()
                            + model.get_submodule(name).bias.detach().numpy().tobytes()).hexdigest()
       for name in ("fc1", "fc2", "fc3")}
out["accuracy"] = state.bundle.evaluate(model)
print(json.dumps(out))
"""


def run(tmp_path, **env):
    full = {k: v for k, v in os.environ.items() if k not in ("MKL_CBWR", "ATEN_CPU_CAPABILITY")}
    full.update(PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", AXE_DEPLOY_CACHE=str(tmp_path), **env)
    done = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "flows" / "digits_mlp.toml")], env=full,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_ptq_integers_do_not_depend_on_the_float_kernels(tmp_path):
    default = run(tmp_path)
    assert run(tmp_path, MKL_CBWR="COMPATIBLE") == default
    assert run(tmp_path, ATEN_CPU_CAPABILITY="default") == default
