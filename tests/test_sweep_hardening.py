"""``axe-deploy sweep`` against bad requests: ranges and options that cannot run stop with
one line before anything is written; an infeasible P is recorded and skipped; a failing
point is recorded, the others still run, and a resumed sweep runs it again."""

import json

import pytest
from click.testing import CliRunner

from axe_deploy.flow import config, sweep
from axe_deploy.cli.main import DEFAULT_FLOW, main, sweep_table


@pytest.mark.parametrize("args, expected", [
    (["--accumulator-bits", "20:10"], "--accumulator-bits '20:10': use LO:HI with LO <= HI"),
    (["--accumulator-bits", "10:x"], "--accumulator-bits '10:x': use LO:HI"),
    (["--accumulator-bits", "1:4"], "--accumulator-bits: [1] out of range; values must be between 2 and 64"),
    (["--accumulator-bits", "1020"], "values must be between 2 and 64"),
    (["--tile-size", "-4"], "--tile-size: [-4] out of range; values must be >= 0"),
    (["--seeds", ","], "--seeds ',': use LO:HI"),
    (["--methods", ","], "--methods: name at least one of"),
    (["--workers", "2"], "--workers sets the CPUs of a local Ray runtime; add --ray"),
    (["--ray", "--workers", "0"], "--workers 0: give at least 1"),
    (["--ray", "x.toml"], "--ray took 'x.toml' as the cluster address; put FLOW before --ray"),
    (["--ray", "127.0.0.1:1"], "--ray 127.0.0.1:1: no Ray cluster answers there (Connection refused)"),
    (["--ray", "head-node"], "--ray head-node: no Ray cluster answers there (not HOST:PORT)"),
])
def test_bad_requests_are_one_line_and_write_nothing(tmp_path, args, expected):
    out = tmp_path / "sweep"
    res = CliRunner().invoke(main, ["sweep", "--out", str(out), "--methods", "rtn,axe-rtn", *args])
    assert res.exit_code != 0
    assert res.output.startswith("Error: ") and len(res.output.strip().splitlines()) == 1, res.output
    assert expected in res.output
    assert not out.exists()


@pytest.fixture(scope="module")
def cfg():
    return config.load(DEFAULT_FLOW, ["quant.calibration_samples=128"])


def test_infeasible_p_is_recorded_and_skipped(cfg, tmp_path, monkeypatch):
    # digits-mlp sees 8-bit unsigned inputs: a weight of +-1 already needs 9 bits
    asked = dict(bits=[8, 12], tiles=[0], methods=["axe-rtn", "brevitas-a2gptq", "rtn"], seeds=[0])
    result = sweep.sweep(cfg, tmp_path, progress=False, **asked)
    points = {(p["method"], p["P_requested"]): p for p in result["points"]}
    assert set(points) == {("axe-rtn", 8), ("axe-rtn", 12), ("brevitas-a2gptq", 8), ("brevitas-a2gptq", 12),
                           ("rtn", None)}
    for method in ("axe-rtn", "brevitas-a2gptq"):
        low, ok = points[(method, 8)], points[(method, 12)]
        assert low["infeasible"] is True and low["metric"] is None and low["P"] == 8
        assert "P=8 is infeasible for digits-mlp" in low["note"] and "P >= 9" in low["note"]
        assert 0.1 < ok["metric"] <= 1 and "infeasible" not in ok
    assert points[("axe-rtn", 12)]["exact_bits"] <= 12
    assert "–" in sweep_table(sweep.select(result, **asked))  # shown as no value
    monkeypatch.setattr(sweep, "run_point", lambda *a: pytest.fail("a recorded point ran again"))
    assert sweep.sweep(cfg, tmp_path, progress=False, **asked)["points"] == result["points"]


def test_a_failing_point_is_recorded_then_retried(cfg, tmp_path, monkeypatch):
    real = sweep.run_point

    def flaky(cfg, method, P, T, seed):
        if P == 12:
            raise RuntimeError("worker lost")
        return real(cfg, method, P, T, seed)

    asked = dict(bits=[11, 12], tiles=[0], methods=["axe-rtn"], seeds=[0])
    monkeypatch.setattr(sweep, "run_point", flaky)
    first = sweep.sweep(cfg, tmp_path, progress=False, **asked)
    failed = [p for p in first["points"] if "error" in p]
    assert [(p["P_requested"], p["error"], p["metric"]) for p in failed] == [(12, "RuntimeError: worker lost", None)]
    assert [p["P"] for p in first["points"] if "error" not in p] == [11]
    assert json.loads((tmp_path / "sweep.json").read_text()) == first
    res = CliRunner().invoke(main, ["sweep", "--out", str(tmp_path), "--accumulator-bits", "11,12",
                                    "--methods", "axe-rtn", "--set", "quant.calibration_samples=128"])
    assert res.exit_code == 1 and "1 point(s) failed" in res.output and "run the same command again" in res.output
    monkeypatch.setattr(sweep, "run_point", real)
    again = sweep.sweep(cfg, tmp_path, progress=False, **asked)
    assert [(p["P"], "error" in p) for p in again["points"]] == [(11, False), (12, False)]
    assert again["points"][0] == first["points"][0]  # the finished point was not run again
