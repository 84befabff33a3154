"""``axe-deploy sweep``: the naive baseline's bit search, the sweep.json contract, resuming,
the 1%-of-unconstrained summary and Brevitas's own A2GPTQ on the same model."""

import json

import pytest
from click.testing import CliRunner

from axe_deploy.core import accumulator

from axe_deploy.flow import config, sweep
from axe_deploy.cli.main import DEFAULT_FLOW, main


def test_naive_bits_lowers_the_widest_first_until_the_bound_fits():
    # one signed layer, K = 16: alpha = 4 + i + w - 2 must stay <= 8 at P = 10, so i + w <= 6;
    # the input goes 8 -> 4, then weights and input take turns (activations are unused)
    assert sweep.naive_bits([(16, True)], 10, 4, 8, 8) == (3, 8, 3)
    assert sweep.naive_bits([(16, False)], 10, 4, 8, 8) == (2, 8, 3)  # one more bit: i + w <= 5
    # a tile of 16 out of 64 inputs is the same bound as K = 16
    assert sweep.naive_bits([(64, True)], 10, 4, 8, 8, tile_size=16) == (3, 8, 3)
    assert sweep.naive_bits([(64, True)], 10, 4, 8, 8) == (2, 8, 2)
    # a second layer over P lowers the activations too
    assert sweep.naive_bits([(16, True), (16, True)], 10, 4, 8, 8) == (3, 3, 3)
    assert sweep.naive_bits([(16, True)], 3, 4, 8, 8) is None


def test_naive_bits_fit_and_change_only_when_needed():
    layers = [(64, False), (32, False), (32, False)]

    def widest(w, a, i):
        return max(accumulator.datatype_bound_bits(k, i if j == 0 else a, w, False) for j, (k, _) in enumerate(layers))

    assert widest(4, 4, 8) == 19
    for P in range(8, 22):
        found = sweep.naive_bits(layers, P, 4, 4, 8)
        if found is None:
            assert P < widest(2, 1, 1)
            continue
        assert widest(*found) <= P
        assert (found == (4, 4, 8)) == (P >= 19)


@pytest.fixture(scope="module")
def small_sweep(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep")
    cfg = config.load(DEFAULT_FLOW, ["quant.calibration_samples=256"])
    result = sweep.sweep(cfg, out, bits=[11, 13], tiles=[0], methods=["rtn", "axe-rtn", "naive", "axe-gpfq",
                                                                         "gpfq"],
                         seeds=[0], progress=False)
    return cfg, out, result


def test_sweep_json_contract(small_sweep):
    _, out, result = small_sweep
    on_disk = json.loads((out / "sweep.json").read_text())
    assert on_disk == result
    assert (out / "sweep.png").stat().st_size > 10_000
    assert {"model", "metric_name", "higher_is_better", "float_metric", "points"} <= set(result)
    assert result["model"] == "digits-mlp" and result["higher_is_better"] is True
    for p in result["points"]:
        assert {"method", "P", "T", "seed", "metric", "seconds"} <= set(p)
    methods = {(p["method"], p["P_requested"]) for p in result["points"]}
    assert methods == {("rtn", None), ("gpfq", None), ("axe-rtn", 11), ("axe-rtn", 13), ("naive", 11),
                       ("naive", 13), ("axe-gpfq", 11), ("axe-gpfq", 13)}


def test_axe_points_fit_and_naive_points_lower_bits(small_sweep):
    _, _, result = small_sweep
    for p in result["points"]:
        if p["method"].startswith("axe-"):
            assert p["exact_bits"] <= p["P"]
        if p["method"] == "naive" and p["P"] == 11:
            # digits-mlp's 256-input layer needs 12 bits even at 2-bit weights, 1-bit activations
            assert p["metric"] is None and p["note"] == "no bit widths fit P"
        elif p["method"] == "naive":
            assert p["bits"] == {"weight": 2, "act": 2, "input": 3}
            assert p["exact_bits"] <= p["P"]  # the data-type bound fits, so the exact width does too
        if p["method"] == "rtn":  # unconstrained: P is its exact width, above every target of the sweep
            assert p["P"] == p["exact_bits"] > max(q["P_requested"] or 0 for q in result["points"])


def test_summary_reads_the_points(small_sweep):
    _, _, result = small_sweep
    rows = {r["method"]: r for r in result["summary"]}
    assert set(rows) == {"axe-rtn", "axe-gpfq"}
    ceiling = next(p["metric"] for p in result["points"] if p["method"] == "gpfq")
    assert rows["axe-gpfq"]["unconstrained"] == pytest.approx(ceiling)
    assert rows["axe-gpfq"]["threshold"] == pytest.approx(0.99 * ceiling)
    for r in rows.values():
        if r["P_within"] is not None:
            met = [p for p in result["points"] if p["method"] == r["method"] and p["P"] >= r["P_within"]]
            assert all(p["metric"] >= r["threshold"] for p in met)


def test_smallest_p_within_needs_every_larger_p():
    assert sweep.smallest_p_within({10: 0.5, 11: 0.95, 12: 0.9, 13: 0.96}, 0.95, True) == 13
    assert sweep.smallest_p_within({10: 0.96, 11: 0.97}, 0.95, True) == 10
    assert sweep.smallest_p_within({10: 6.0, 11: 5.5}, 5.6, False) == 11
    assert sweep.smallest_p_within({10: 0.5}, 0.95, True) is None


def test_sweep_resumes_without_recomputing(small_sweep, monkeypatch):
    cfg, out, result = small_sweep

    def fail(*args, **kw):
        raise AssertionError("a finished point was recomputed")

    monkeypatch.setattr(sweep, "run_point", fail)
    again = sweep.sweep(cfg, out, bits=[11, 13], tiles=[0], methods=["rtn", "axe-rtn"], seeds=[0], progress=False)
    assert again["points"] == result["points"]


def test_cli_table_and_unknown_method(small_sweep, tmp_path):
    _, out, _ = small_sweep
    runner = CliRunner()
    res = runner.invoke(main, ["sweep", "--out", str(out), "--accumulator-bits", "11,13", "--methods", "rtn,axe-rtn"])
    assert res.exit_code == 0, res.output
    assert "axe-rtn" in res.output and "within 1% of unconstrained" in res.output
    res = runner.invoke(main, ["sweep", "--out", str(out), "--accumulator-bits", "11,13", "--methods", "rtn,axe-rtn",
                               "--markdown"])
    lines = res.output.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("| method |"))
    assert lines[header] == "| method | unconstrained (P needed) | P = 11 | P = 13 |"
    assert lines[header + 1] == "| --- | --- | --- | --- |"
    rtn = next(line for line in lines if line.startswith("| rtn |"))
    assert rtn.count("|") == 5 and "(" in rtn
    assert not any(line.startswith(("| axe-gpfq", "| naive", "| gpfq")) for line in lines)  # only what was asked
    res = runner.invoke(main, ["sweep", "--out", str(tmp_path), "--methods", "axe-magic"])
    assert res.exit_code != 0 and "unknown method" in res.output and "axe-gpfq" in res.output


def test_brevitas_a2gptq_point_records_its_exact_width(tmp_path):
    cfg = config.load(DEFAULT_FLOW, ["quant.calibration_samples=256"])
    point = sweep.run_point(cfg, "brevitas-a2gptq", 13, 0, 0)
    assert point["fits"] == (point["exact_bits"] <= 13)
    assert 0.1 < point["metric"] <= 1.0
