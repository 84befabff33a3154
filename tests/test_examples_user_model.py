"""The "your own model" examples (issue 11): the plain PyTorch MLP and CNN of
examples/my_models.py run by their flow files reach targets three bits below the widths
round-to-nearest needs, with every annotated width <= its target, 0 overflows and the RTL
bit-exact (a subset of the test split is simulated; synthesis is left to the full run)."""

import copy
from pathlib import Path

import pytest

from axe_deploy.flow import config
from axe_deploy.flow.runner import run_flow

EXAMPLES = Path(__file__).parents[1] / "examples"
SOFTWARE = ["build_models", "quantize", "export", "annotate", "validate", "report"]
HARDWARE = SOFTWARE[:-1] + ["lower", "fold", "rtl", "simulate", "report"]


@pytest.mark.slow
@pytest.mark.parametrize("flow", ["my_mlp.toml", "my_cnn.toml"])
def test_example_reaches_three_bits_below_round_to_nearest_bit_exactly(flow, tmp_path):
    path = EXAMPLES / flow
    cfg = config.load(path, ["hardware.sim_vectors=48"])
    targets = {pattern: s["accumulator_bits"] for pattern, s in cfg.quant.layers.items()}
    rtn = copy.deepcopy(cfg)
    rtn.quant.algorithm, rtn.quant.layers = "rtn", {}
    rtn.flow.steps = SOFTWARE
    needed = {l["name"]: l["exact_bits"] for l in
              run_flow(rtn, tmp_path / "rtn", where=str(path), progress=lambda s: None)["layers"]}
    assert needed == {name: P + 3 for name, P in targets.items()}  # the file's targets: 3 bits below
    cfg.flow.steps = HARDWARE
    report = run_flow(cfg, tmp_path / "axe", where=str(path), progress=lambda s: None)
    for layer in report["layers"]:
        assert layer["exact_bits"] <= targets[layer["name"]] and layer["overflow_free"]
    sim = report["hardware"]["rtl_sim"]
    assert sim["vectors"] == sim["bit_exact_vectors"] == 48 and sim["overflows"] == 0
    assert report["metrics"]["quant_accuracy"] >= report["metrics"]["float_accuracy"] - 0.03
    assert all(c["passed"] for c in report["checks"].values()), report["checks"]


@pytest.mark.slow
@pytest.mark.parametrize("flow, adds", [("resnet_digits.toml", 2), ("mobilenet_digits.toml", 2)])
def test_real_network_examples_hold_p_with_exact_sums(flow, adds, tmp_path):
    """The ResNet and MobileNetV2-style examples (issue 24) through graph mode and AXE-OPTQ:
    every conv/linear within the flow's P, residual Adds and the global pool annotated
    exactly, 0 overflows, and `check` OK on the written graph."""
    from axe_deploy.graph.check import check_rows
    from axe_deploy.graph.foreign import read_graph
    path = EXAMPLES / flow
    cfg = config.load(path)
    report = run_flow(cfg, tmp_path, where=str(path), progress=lambda s: None)
    P = cfg.quant.accumulator_bits
    dots = [l for l in report["layers"] if l["op"] in ("Conv", "Gemm")]
    sums = [l for l in report["layers"] if l.get("accumulator_kind")]
    assert dots and all(l["exact_bits"] <= P and l["overflow_free"] for l in dots)
    assert [l["accumulator_kind"] for l in sums] == ["add"] * adds + ["window_sum"]
    assert all(l["overflow_free"] for l in sums)
    assert all(c["passed"] for c in report["checks"].values()), report["checks"]
    assert report["metrics"]["quant_accuracy"] >= report["metrics"]["float_accuracy"] - 0.03
    rows = check_rows(read_graph(tmp_path / "model.qonnx.onnx"))
    assert len(rows) == len(report["layers"]) and all(r["status"] == "OK" for r in rows)
