"""Grouped and depthwise Conv in the graph (issue 24): rows of K = C/g·kh·kw, exact
per-channel ranges from each channel's own weights, integer_check per group on real and
worst-case inputs, annotate/check exact with 0 slack; lowering refuses them by name."""

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from torch import nn

from axe_deploy.dataflow.lower import lower
from axe_deploy.graph.annotate import AnnotateAccumulators
from axe_deploy.graph.annotation import Annotation
from axe_deploy.graph.check import check_rows
from axe_deploy.graph.layers import GraphError, quant_layers
from axe_deploy.graph.validate import group_dot, im2col, integer_check, run_qonnx
from axe_deploy.quant.export import export_model
from axe_deploy.quant.quantizers import ReluQuant, WeightQuant, input_quant

torch.set_num_threads(1)
QONNX_DOMAIN = "qonnx.custom_op.general"


class DepthwiseNet(nn.Module):
    """input quant -> depthwise 3x3 (groups=C) -> ReLU quant -> grouped 1x1 (groups=2)."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=input_quant(1.0, 4), return_quant_tensor=True)
        self.dw = qnn.QuantConv2d(4, 4, 3, padding=1, groups=4, bias=False, weight_quant=WeightQuant,
                                  weight_bit_width=4)
        self.relu = qnn.QuantReLU(act_quant=ReluQuant, bit_width=3, return_quant_tensor=True)
        self.pw = qnn.QuantConv2d(4, 6, 1, groups=2, bias=False, weight_quant=WeightQuant, weight_bit_width=3)

    def forward(self, x):
        return self.pw(self.relu(self.dw(self.inp(x))))


@pytest.fixture(scope="module")
def exported():
    torch.manual_seed(0)
    model = DepthwiseNet().eval()
    x = torch.rand(8, 4, 5, 5)
    with torch.no_grad():
        model(x)
    qonnx, _ = export_model(model, x)
    return qonnx, x.numpy()


def exact_range(q, x_min, x_max):
    """Independent per-row worst case, in Python ints."""
    lo = [sum(int(v) * (x_min if v > 0 else x_max) for v in row) for row in q]
    hi = [sum(int(v) * (x_max if v > 0 else x_min) for v in row) for row in q]
    return min(lo), max(hi)


def test_grouped_layers_have_rows_of_their_own_group(exported):
    model, _ = exported
    layers = quant_layers(model)
    assert [(l.layer_name, l.M, l.K, l.group) for l in layers] == [("dw", 4, 9, 4), ("pw", 6, 2, 2)]
    assert [l.input.datatype for l in layers] == ["UINT4", "UINT3"]
    annotated = model.transform(AnnotateAccumulators())
    for layer, (x_max) in zip(quant_layers(annotated), (15, 7)):
        ann = Annotation.of(annotated.graph.node[layer.node_index])
        assert ann.accumulator_range == exact_range(layer.q, 0, x_max)
    rows = check_rows(annotated)
    assert [(r["status"], r["slack_bits"]) for r in rows] == [("OK", 0), ("OK", 0)]


def test_integer_check_runs_grouped_dot_products(exported):
    model, x = exported
    annotated = model.transform(AnnotateAccumulators())
    checks = integer_check(annotated, run_qonnx(annotated, x))
    assert all(c.overflow_free for c in checks)
    for layer, c in zip(quant_layers(annotated), checks):
        assert c.worst_case_range == exact_range(layer.q, 0, 2**layer.input.bits - 1)
        assert c.observed_range[0] >= c.worst_case_range[0] and c.observed_range[1] <= c.worst_case_range[1]


def test_group_dot_equals_a_grouped_convolution():
    """group_dot on per-group patches is torch's grouped conv, in integers."""
    gen = np.random.default_rng(0)
    x = gen.integers(0, 8, (2, 6, 4, 4))
    w = gen.integers(-3, 4, (6, 2, 3, 3))  # groups=3: 2 in, 2 out channels per group
    attrs = {"pads": [1, 1, 1, 1]}
    patches = np.stack([im2col(xg, attrs, (3, 3)) for xg in np.split(x, 3, axis=1)])
    got = group_dot(patches, w.reshape(6, -1))
    ref = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                     padding=1, groups=3)
    assert np.array_equal(got, ref.permute(0, 2, 3, 1).reshape(-1, 6).numpy().astype(np.int64))
    tiles = group_dot(patches, w.reshape(6, -1), tile_size=4)
    assert tiles.shape == (32, 6, 5) and np.array_equal(tiles.sum(2), got)


def helper_depthwise(w_int, group):
    """Quant(x) -> Conv(Quant(W), group) built with onnx.helper; UINT4 input, INT4 weights."""
    M = w_int.shape[0]
    C = w_int.shape[1] * group
    inits = {"s_in": 0.1, "zp": 0.0, "b_in": 4.0, "s_w": np.full((M, 1, 1, 1), 0.5), "b_w": 4.0,
             "conv.weight": w_int * 0.5}
    nodes = [helper.make_node("Quant", ["x", "s_in", "zp", "b_in"], ["xq"], name="in_quant", domain=QONNX_DOMAIN,
                              signed=0, narrow=0, rounding_mode="ROUND"),
             helper.make_node("Quant", ["conv.weight", "s_w", "zp", "b_w"], ["wq"], name="w_quant",
                              domain=QONNX_DOMAIN, signed=1, narrow=1, rounding_mode="ROUND"),
             helper.make_node("Conv", ["xq", "wq"], ["y"], name="conv", group=group, kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1])]
    graph = helper.make_graph(nodes, "dw", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, C, 4, 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, M, 4, 4])],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    return ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def test_helper_built_depthwise_conv_exact_per_channel():
    # channel 0: all +7 -> [0, 9·7·15]; channel 1: one -7 -> [-105, 0]; channel 2: 7 and -7
    w = np.zeros((3, 1, 3, 3), dtype=np.int64)
    w[0] = 7
    w[1, 0, 1, 1] = -7
    w[2, 0, 0, 0], w[2, 0, 2, 2] = 7, -7
    model = helper_depthwise(w, group=3).transform(AnnotateAccumulators())
    (layer,) = quant_layers(model)
    assert (layer.M, layer.K, layer.group) == (3, 9, 3)
    ann = Annotation.of(model.graph.node[layer.node_index])
    assert ann.accumulator_range == (-105, 945) and ann.accumulator_datatype == "INT11"
    assert ann.datatype_bound_bits == 12  # log2(9) + 4 + 4 - 1: from K = C/g·kh·kw = 9, not C·kh·kw = 27
    assert [(r["status"], r["slack_bits"]) for r in check_rows(model)] == [("OK", 0)]
    x = np.full((2, 3, 4, 4), 1.5, dtype=np.float32)  # integer 15 everywhere: the centre patch is the worst case
    (c,) = integer_check(model, run_qonnx(model, x))
    assert c.overflow_free and c.observed_range == (-105, 945) and c.worst_case_range == (-105, 945)


def test_wrong_annotation_of_a_grouped_conv_is_caught():
    w = np.full((2, 2, 3, 3), 7, dtype=np.int64)  # groups=2 over 4 input channels: K = 18
    model = helper_depthwise(w, group=2).transform(AnnotateAccumulators())
    ann = Annotation.of(model.graph.node[-1])
    assert ann.accumulator_range == (0, 18 * 7 * 15)
    Annotation(**{**ann.__dict__, "accumulator_datatype": "INT11", "accumulator_range": (0, 1023)}).write(
        model.graph.node[-1])
    assert check_rows(model)[0]["status"].startswith("violation: annotated INT11")
    (c,) = integer_check(model, run_qonnx(model, np.full((1, 4, 4, 4), 1.5, dtype=np.float32)))
    assert not c.overflow_free and c.worst_case_range == (0, 1890)


def test_group_not_dividing_channels_and_lowering_are_refused(exported):
    model, _ = exported
    with pytest.raises(GraphError, match=r"\(dw\): grouped/depthwise convolution \(group=4\) has no MVAU"):
        lower(model.transform(AnnotateAccumulators()))
    bad = helper_depthwise(np.ones((3, 1, 3, 3), dtype=np.int64), group=3)
    bad.graph.node[-1].attribute[0].i = 2  # group=2 with M=3
    with pytest.raises(GraphError, match="group=2 does not divide its 3 output channels"):
        quant_layers(bad)


@settings(max_examples=25, deadline=None)
@given(groups=st.integers(1, 4), m_per=st.integers(1, 3), c_per=st.integers(1, 3), k=st.sampled_from([1, 3]),
       seed=st.integers(0, 2**16))
def test_grouped_annotation_is_each_rows_own_worst_case(groups, m_per, c_per, k, seed):
    """For any grouping, the annotated range is the exact worst case over each output
    channel's own C/g·kh·kw weights, and the real grouped dot products stay inside it."""
    gen = np.random.default_rng(seed)
    w = gen.integers(-7, 8, (groups * m_per, c_per, k, k))
    model = helper_depthwise_k(w, groups, k).transform(AnnotateAccumulators())
    (layer,) = quant_layers(model)
    assert (layer.K, layer.group) == (c_per * k * k, groups)
    ann = Annotation.of(model.graph.node[layer.node_index])
    assert ann.accumulator_range == exact_range(w.reshape(len(w), -1), 0, 15)
    x = gen.integers(0, 16, (2, groups * c_per, 4, 4))
    attrs = {"pads": [k // 2] * 4}
    patches = np.stack([im2col(xg, attrs, (k, k)) for xg in np.split(x, groups, axis=1)])
    ref = torch.nn.functional.conv2d(torch.tensor(x, dtype=torch.float64), torch.tensor(w, dtype=torch.float64),
                                     padding=k // 2, groups=groups).permute(0, 2, 3, 1).reshape(-1, len(w))
    got = group_dot(patches, layer.q)
    assert np.array_equal(got, ref.numpy().astype(np.int64))
    lo, hi = ann.accumulator_range
    assert got.min() >= lo and got.max() <= hi


def helper_depthwise_k(w_int, group, k):
    model = helper_depthwise(np.zeros((w_int.shape[0], w_int.shape[1], 3, 3), dtype=np.int64), group)
    model.set_initializer("conv.weight", (w_int * 0.5).astype(np.float32))
    conv = model.graph.node[-1]
    for a in conv.attribute:
        if a.name == "kernel_shape":
            a.ints[:] = [k, k]
        if a.name == "pads":
            a.ints[:] = [k // 2] * 4
    return model


def test_tiled_grouped_conv_checks_per_tile(exported):
    model, x = exported
    annotated = model.transform(AnnotateAccumulators({"*": 4}))
    dw = Annotation.of(annotated.graph.node[quant_layers(annotated)[0].node_index])
    assert dw.tile_size == 4 and dw.outer_accumulator_range == exact_range(quant_layers(annotated)[0].q, 0, 15)
    assert [r["status"] for r in check_rows(annotated)] == ["OK", "OK"]
    checks = integer_check(annotated, run_qonnx(annotated, x))
    assert all(c.overflow_free for c in checks)
    assert checks[0].worst_case_range == dw.accumulator_range  # the widest tile's exact range
