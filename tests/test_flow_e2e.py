"""The default flow end to end: float model -> Brevitas -> annotated QONNX/QCDQ -> validation."""

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.core import accumulator

from axe_deploy.flow import config
from axe_deploy.graph.annotation import PREFIX, Annotation
from axe_deploy.flow.runner import SOFTWARE_STEPS, STEPS, run_flow
from axe_deploy.graph.layers import quant_layers
from axe_deploy.flow.outdir import MARKER
from axe_deploy.graph.validate import integer_check, run_onnxruntime, run_qonnx
from axe_deploy.zoo import shipped

DEFAULT = Path(__file__).parents[1] / "flows" / "digits_mlp.toml"
SW = "flow.steps=" + str(SOFTWARE_STEPS).replace("'", '"')


def read_annotation(node):
    """The node's annotation as the strings written to it (by key), or None."""
    annotation = Annotation.of(node)
    return annotation.props() if annotation else None


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    out = tmp_path_factory.mktemp("b") / "digits_mlp"
    report = run_flow(config.load(DEFAULT, [SW]), out, progress=lambda s: None)
    return out, report


def test_report_contract(build):
    out, report = build
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["flow"] == "digits_mlp" and on_disk["model"] == "digits-mlp"
    for key in ("float_accuracy", "quant_accuracy", "qonnx_accuracy", "onnxruntime_accuracy",
                "qonnx_max_abs_diff", "onnxruntime_max_abs_diff"):
        assert key in on_disk["metrics"]
    layer_keys = {"name", "op", "M", "K", "weight_datatype", "input_datatype", "tile_size",
                  "accumulator_datatype", "accumulator_range", "datatype_bound_bits", "exact_bits", "overflow_free"}
    assert [l["name"] for l in on_disk["layers"]] == ["fc1", "fc2", "fc3"]
    assert all(layer_keys <= set(l) for l in on_disk["layers"])
    assert list(on_disk["timings_s"]) == SOFTWARE_STEPS
    assert on_disk["checks"] == {name: {"passed": True, "detail": on_disk["checks"][name]["detail"]}
                                 for name in ("qonnx_vs_torch", "onnxruntime_vs_torch", "integer_overflow")}
    for rel in on_disk["artifacts"].values():
        assert (out / rel).is_file()


def test_runtimes_agree_with_brevitas(build):
    _, report = build
    m = report["metrics"]
    assert m["qonnx_max_abs_diff"] <= 1e-4 and m["onnxruntime_max_abs_diff"] <= 1e-4
    assert m["quant_accuracy"] == m["qonnx_accuracy"] == m["onnxruntime_accuracy"]
    # the shipped float weights score what they scored when made; the quantized model is judged
    # against the same run's float model (the flow warns when it falls 5 points below)
    assert m["float_accuracy"] == pytest.approx(shipped.manifest()["digits-mlp-seed0.pt"]["float_accuracy"], abs=1e-6)
    assert report["warnings"] == [] and m["quant_accuracy"] > m["float_accuracy"] - 0.05


def test_every_layer_annotated_with_its_minimal_width(build):
    out, report = build
    model = ModelWrapper(str(out / "model.qonnx.onnx"))
    by_name = {l["name"]: l for l in report["layers"]}
    layers = quant_layers(model)
    assert [l.layer_name for l in layers] == ["fc1", "fc2", "fc3"]
    for layer in layers:
        props = read_annotation(model.graph.node[layer.node_index])
        # unsigned inputs in [0, x_max]: recomputed here, independent of the annotator
        x_max = 2**layer.input.bits - 1
        lo = int(np.minimum(layer.q, 0).sum(1).min() * x_max)
        hi = int(np.maximum(layer.q, 0).sum(1).max() * x_max)
        assert json.loads(props["accumulator_range"]) == [lo, hi]
        dt = DataType[props["accumulator_datatype"]]
        assert dt.min() <= lo and hi <= dt.max()
        narrower = DataType[f"INT{dt.bitwidth() - 1}"]
        assert lo < narrower.min() or hi > narrower.max()
        entry = by_name[layer.layer_name]
        assert entry["exact_bits"] == dt.bitwidth() and entry["overflow_free"] is True
        assert entry["exact_bits"] <= entry["datatype_bound_bits"]
    assert by_name["fc1"]["input_datatype"] == "UINT8" and by_name["fc2"]["input_datatype"] == "UINT4"
    assert all(l["weight_datatype"] == "INT4" for l in report["layers"])


def test_annotations_pass_checker_and_onnxruntime(build):
    out, report = build
    for name in ("model.qonnx.onnx", "model.qcdq.onnx"):
        m = onnx.load(str(out / name))
        if name == "model.qcdq.onnx":  # QONNX Quant nodes are custom ops the checker cannot know
            onnx.checker.check_model(m)
        annotated = [n for n in m.graph.node if any(p.key.startswith(PREFIX) for p in n.metadata_props)]
        assert [n.op_type for n in annotated] == ["Gemm"] * 3
    x = np.random.default_rng(0).integers(0, 17, (7, 64)).astype(np.float32) / 16
    assert run_onnxruntime(out / "model.qcdq.onnx", x).shape == (7, 10)


def test_integer_check_catches_a_too_narrow_annotation(build):
    out, _ = build
    model = ModelWrapper(str(out / "model.qonnx.onnx"))
    x = np.random.default_rng(1).integers(0, 17, (20, 64)).astype(np.float32) / 16
    context = run_qonnx(model, x)
    assert all(c.overflow_free for c in integer_check(model, context))
    node = model.graph.node[quant_layers(model)[1].node_index]
    for p in node.metadata_props:
        if p.key == PREFIX + "accumulator_datatype":
            p.value = f"INT{int(p.value[3:]) - 1}"
    checks = {c.name: c for c in integer_check(model, context)}
    assert not checks["fc2"].overflow_free and "exceed" in checks["fc2"].detail
    assert checks["fc1"].overflow_free and checks["fc3"].overflow_free


def test_multi_stage_annotation(tmp_path):
    cfg = config.load(DEFAULT, ["quant.tile_size=16", SW])
    report = run_flow(cfg, tmp_path / "t16", progress=lambda s: None)
    model = ModelWrapper(str(tmp_path / "t16" / "model.qonnx.onnx"))
    for layer, entry in zip(quant_layers(model), report["layers"]):
        props = read_annotation(model.graph.node[layer.node_index])
        info = accumulator.analyze(layer.q, input_bits=layer.input.bits, input_signed=False,
                                   weight_bits=4, tile_size=16)
        assert props["tile_size"] == "16" and entry["tile_size"] == 16
        assert props["accumulator_datatype"] == info.datatype
        assert props["outer_accumulator_datatype"] == info.outer_datatype
        assert info.exact_bits <= info.outer_bits and entry["overflow_free"]


def test_failed_flow_leaves_previous_output_untouched(tmp_path, monkeypatch):
    out = tmp_path / "keep"
    out.mkdir()
    (out / MARKER).write_text("an earlier build")
    (out / "marker").write_text("old")

    def boom(state, cfg):
        (state.out / "half-written").write_text("x")
        raise RuntimeError("export failed")

    monkeypatch.setitem(STEPS, "export", boom)
    with pytest.raises(RuntimeError):
        run_flow(config.load(DEFAULT, [SW]), out, progress=lambda s: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "marker"]
