"""``axe-deploy sweep --ray``: on a local Ray runtime of 2 CPUs a small digits sweep gives
exactly the in-process points (metric, P, exact widths), and an interrupted Ray sweep
resumes without running a finished point again. The runtime is shut down at the end,
leaving no Ray process behind."""

import json
import time

import psutil
import pytest
import ray
from click.testing import CliRunner

from axe_deploy.flow import config, sweep
from axe_deploy.cli.main import DEFAULT_FLOW, main
from axe_deploy.flow.sweep_ray import RayExecutor

# P = 8 is infeasible for digits-mlp (8-bit inputs), naive finds no widths there
ASKED = dict(bits=[8, 12], tiles=[0], methods=["rtn", "axe-gpfq", "naive"], seeds=[0])


def ray_processes() -> list:
    return [p for p in psutil.Process().children(recursive=True)
            if any(n in p.name() for n in ("raylet", "gcs_server", "ray::", "default_worker"))]


@pytest.fixture(scope="module")
def on_ray():
    assert not ray.is_initialized()
    with RayExecutor(workers=2) as run:
        assert ray.cluster_resources()["CPU"] == 2
        yield run
    assert not ray.is_initialized()
    deadline = time.monotonic() + 20
    while ray_processes() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert ray_processes() == []


def comparable(points: list[dict]) -> list[dict]:
    """Points without their timing, in job order."""
    return sorted(({k: v for k, v in p.items() if k != "seconds"} for p in points),
                  key=lambda p: json.dumps([p["method"], p["P_requested"], p["T"], p["seed"]]))


@pytest.mark.slow
def test_ray_sweep_equals_in_process_and_resumes(on_ray, tmp_path):
    cfg = config.load(DEFAULT_FLOW, ["quant.calibration_samples=128"])
    local = sweep.sweep(cfg, tmp_path / "local", progress=False, **ASKED)
    jobs = sweep.plan_jobs(**ASKED)
    given = []

    def interrupted(cfg, todo):  # the driver is stopped after two points have finished
        given.append(list(todo))
        for i, point in enumerate(on_ray(cfg, todo)):
            if i == 2:
                raise KeyboardInterrupt
            yield point

    out = tmp_path / "ray"
    with pytest.raises(KeyboardInterrupt):
        sweep.sweep(cfg, out, progress=False, executor=interrupted, device_check=False, **ASKED)
    partial = json.loads((out / "sweep.json").read_text())["points"]
    assert len(partial) == 2 and given == [jobs]

    def recording(cfg, todo):
        given.append(list(todo))
        yield from on_ray(cfg, todo)

    result = sweep.sweep(cfg, out, progress=False, executor=recording, device_check=False, **ASKED)
    finished = {sweep.job_of(p) for p in partial}
    assert sorted(given[1], key=str) == sorted(set(jobs) - finished, key=str)  # only what was left
    assert all(p in result["points"] for p in partial)  # timings too: not run again
    assert comparable(result["points"]) == comparable(local["points"])
    assert result["summary"] == local["summary"] and result["float_metric"] == local["float_metric"]
    exact = {(p["method"], p["P_requested"]): (p["metric"], p["P"], p.get("exact_bits")) for p in result["points"]}
    assert exact[("axe-gpfq", 12)][1] == 12 and exact[("axe-gpfq", 12)][2] <= 12
    assert exact[("axe-gpfq", 8)][0] is None and exact[("naive", 8)][0] is None
    assert next(p for p in result["points"] if p["P_requested"] == 8 and p["method"] == "axe-gpfq")["infeasible"]

    # the CLI on the same runtime: a finished sweep resumes to nothing left to run
    res = CliRunner().invoke(main, ["sweep", "--out", str(out), "--accumulator-bits", "8,12", "--methods",
                                    "rtn,axe-gpfq,naive", "--set", "quant.calibration_samples=128", "--ray"])
    assert res.exit_code == 0, res.output
    assert json.loads((out / "sweep.json").read_text())["points"] == result["points"]
