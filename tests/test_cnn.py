"""The digits CNN through the flow: model, conv annotation, lowering to sliding windows,
MVAUs and a max-pool (executor == onnxruntime), conv layout contract, RTL simulation."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.flow import config
from axe_deploy.graph.annotation import Annotation
from axe_deploy.dataflow.conv_geometry import ConvGeometry
from axe_deploy.dataflow.execute import execute_dataflow
from axe_deploy.dataflow.hw_bridge import hw_layers
from axe_deploy.dataflow.lower import lower
from axe_deploy.flow.runner import SOFTWARE_STEPS, run_flow
from axe_deploy.graph.layers import GraphError, quant_layers
from axe_deploy.hw.spec import MaxPoolLayer, MVAULayer, SlidingWindowLayer, check_chain
from axe_deploy.quant.driver import patch_rows
from axe_deploy.graph.validate import run_onnxruntime
from axe_deploy.zoo import shipped

FLOW = Path(__file__).parents[1] / "flows" / "digits_cnn.toml"
SIMULATOR = shutil.which("verilator") or shutil.which("iverilog")
STEPS = SOFTWARE_STEPS[:-1] + ["lower", "fold", "rtl", "simulate", "report"]  # all but synthesis


def read_annotation(node):
    """The node's annotation as the strings written to it (by key), or None."""
    annotation = Annotation.of(node)
    return annotation.props() if annotation else None


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    if SIMULATOR is None:  # with AXE_DEPLOY_REQUIRE_TOOLS=1 (CI) the session has failed already
        pytest.skip("neither verilator nor iverilog installed: run docker/install-system-tools.sh as root")
    out = tmp_path_factory.mktemp("cnn") / "digits_cnn"
    cfg = config.load(FLOW, ["flow.steps=" + json.dumps(STEPS), "hardware.sim_vectors=0"])
    return out, run_flow(cfg, out, progress=lambda s: None)


def test_float_accuracy_and_runtimes_agree(build):
    _, report = build
    m = report["metrics"]
    # the shipped float weights score what they scored when made, on any machine
    assert m["float_accuracy"] == pytest.approx(shipped.manifest()["digits-cnn-seed0.pt"]["float_accuracy"], abs=1e-6)
    assert m["qonnx_max_abs_diff"] <= 1e-4 and m["onnxruntime_max_abs_diff"] <= 1e-4
    assert m["quant_accuracy"] == m["onnxruntime_accuracy"]


def test_conv_layers_annotated_with_k_of_c_kh_kw_and_overflow_free(build):
    out, report = build
    model = ModelWrapper(str(out / "model.qonnx.onnx"))
    layers = quant_layers(model)
    assert [(l.layer_name, l.op, l.M, l.K) for l in layers] == [
        ("conv1", "Conv", 16, 1 * 3 * 3), ("conv2", "Conv", 32, 16 * 3 * 3), ("fc", "Gemm", 10, 32 * 4 * 4)]
    # the fc's input is traced back through Flatten and MaxPool to relu2's 4-bit quantizer
    assert [l.input.datatype for l in layers] == ["UINT5", "UINT4", "UINT4"]
    for layer, entry in zip(layers, report["layers"]):
        props = read_annotation(model.graph.node[layer.node_index])
        x_max = 2**layer.input.bits - 1  # exact worst case, recomputed independently
        lo, hi = int(np.minimum(layer.q, 0).sum(1).min() * x_max), int(np.maximum(layer.q, 0).sum(1).max() * x_max)
        assert json.loads(props["accumulator_range"]) == [lo, hi]
        assert entry["overflow_free"] and entry["exact_bits"] <= 12 == entry["target_accumulator_bits"]


def test_non_zero_zero_point_is_refused(build):
    """An unsigned input with an offset would pad with a non-zero integer (and its dot
    products would need a zero-point correction): the graph is refused, not mis-lowered."""
    out, _ = build
    model = ModelWrapper(str(out / "model.qonnx.onnx"))
    inp = next(n for n in model.graph.node if n.op_type == "Quant" and n.input[0] == model.graph.input[0].name)
    model.set_initializer(inp.input[2], np.array(3.0, dtype=np.float32))
    with pytest.raises(GraphError, match="non-zero zero point"):
        quant_layers(model)
    with pytest.raises(GraphError, match="non-zero zero point"):
        lower(model)


def test_lowered_cnn_matches_onnxruntime_on_whole_test_split(build):
    from axe_deploy.zoo.digits import digits_split
    out, _ = build
    qonnx = ModelWrapper(str(out / "model.qonnx.onnx"))
    model = lower(qonnx)
    assert [n.op_type for n in model.graph.node] == [
        "InputQuant", "ConvolutionInputGenerator", "MVAU", "ConvolutionInputGenerator", "MVAU",
        "StreamingMaxPool", "Flatten", "MVAU", "ChannelwiseAffine"]
    _, x, _, _ = digits_split()
    x = x.reshape(-1, 1, 8, 8)
    got = execute_dataflow(model, x)[model.graph.output[0].name]
    ort = run_onnxruntime(out / "model.qcdq.onnx", x)
    assert np.abs(got - ort).max() < 1e-4 and np.array_equal(got.argmax(1), ort.argmax(1))
    layers = hw_layers(model)
    check_chain(layers)
    assert [type(l) for l in layers] == [SlidingWindowLayer, MVAULayer, SlidingWindowLayer, MVAULayer,
                                         MaxPoolLayer, MVAULayer]
    assert [l.num_vectors for l in layers if isinstance(l, MVAULayer)] == [64, 64, 1]
    annotated = [read_annotation(n)["accumulator_datatype"] for n in qonnx.graph.node if read_annotation(n)]
    assert [f"INT{l.acc_bits}" for l in layers if isinstance(l, MVAULayer)] == annotated


def test_unsupported_conv_and_pool_are_refused(build):
    out, _ = build
    for op, attr, value, match in [("Conv", "dilations", [2, 2], "sliding-window generator"),
                                   ("Conv", "pads", [1, 1, 0, 0], "sliding-window generator"),
                                   ("MaxPool", "kernel_shape", [3, 3], "2x2 max-pool")]:
        model = ModelWrapper(str(out / "model.qonnx.onnx"))
        node = next(n for n in model.graph.node if n.op_type == op)
        attrs = [a for a in node.attribute if a.name == attr]
        if attrs:
            del attrs[0].ints[:]
            attrs[0].ints.extend(value)
        else:
            from onnx import helper
            node.attribute.append(helper.make_attribute(attr, value))
        with pytest.raises(GraphError, match=match):
            lower(model)


@settings(max_examples=60, deadline=None)
@given(C=st.integers(1, 3), M=st.integers(1, 3), H=st.integers(1, 5), W=st.integers(1, 5),
       K=st.integers(1, 3), stride=st.integers(1, 3), pad=st.integers(0, 2), seed=st.integers(0, 2**31))
def test_conv_layout_contract(C, M, H, W, K, stride, pad, seed):
    """Sliding window (channels-last, (kh, kw, c) windows, zero border) times the reordered
    weight columns is the integer convolution with zero padding, border pixels included."""
    stride, pad = min(stride, K), min(pad, K - 1)
    g = ConvGeometry(H=H, W=W, C=C, K=K, stride=stride, pad=pad)
    if g.OH < 1 or g.OW < 1:
        return
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 16, (2, C, H, W))
    w = rng.integers(-7, 8, (M, C, K, K))
    swg = SlidingWindowLayer("s", H, W, C, K, 1, 4, False, stride, pad)
    windows = swg.reference(x.transpose(0, 2, 3, 1).reshape(2, -1)).reshape(2, g.OH, g.OW, -1)
    got = windows @ g.channels_last_columns(w.reshape(M, -1)).T  # [n, OH, OW, M]
    want = torch.nn.functional.conv2d(torch.from_numpy(x).double(), torch.from_numpy(w).double(),
                                      stride=stride, padding=pad).numpy()
    assert np.array_equal(got.transpose(0, 3, 1, 2), want.astype(np.int64))


def test_calibration_patches_sample_conv_rows_only():
    conv, linear = torch.nn.Conv2d(2, 3, 3), torch.nn.Linear(4, 3)
    rows = patch_rows(conv, 1000, 100, seed=0)
    assert len(rows) == 100 and len(set(rows.tolist())) == 100 and rows.max() < 1000
    assert torch.equal(rows, patch_rows(conv, 1000, 100, seed=0))
    assert patch_rows(conv, 1000, 0, seed=0) == slice(None) == patch_rows(conv, 50, 100, seed=0)
    assert patch_rows(linear, 1000, 100, seed=0) == slice(None)
    with pytest.raises(config.FlowConfigError, match="calibration_patches"):
        config.load(FLOW, ["quant.calibration_patches=-1"])


def test_rtl_simulation_bit_exact_on_the_whole_test_split(build):
    _, report = build
    sim = report["hardware"]["rtl_sim"]
    assert sim["vectors"] == report["metrics"]["test_samples"] == 360
    assert sim["bit_exact_vectors"] == 360 and sim["overflows"] == 0
    assert sim["cycles_measured"]["interval"] <= 1.1 * sim["cycles_estimated"]
    kinds = [l["kind"] for l in report["hardware"]["layers"]]
    assert kinds == ["SlidingWindow", "MVAU", "SlidingWindow", "MVAU", "MaxPool", "MVAU"]
    assert report["dataflow"]["executor_max_abs_diff_vs_onnxruntime"] <= 1e-4  # float32 rounding
    assert all(c["passed"] for c in report["checks"].values()), report["checks"]
    assert {"executor_vs_onnxruntime", "rtl_bit_exact", "rtl_overflows", "rtl_worst_case"} <= set(report["checks"])
    worst = report["hardware"]["rtl_worst_case"]["layers"]
    assert [w["name"] for w in worst] == ["conv1", "conv2", "fc"]
    for w, layer in zip(worst, report["layers"]):
        assert w["observed_range"] == w["annotated_range"] == layer["accumulator_range"]
        assert w["overflows"] == 0 and w["narrower_overflows"] > 0
