"""Integer sums that are not dot products (issue 24): the residual Add of two equally
scaled quantized tensors and average-pool window sums, annotated with their exact
ranges, recomputed by check, and validated on real inputs."""

import brevitas.nn as qnn
import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper
from qonnx.core.modelwrapper import ModelWrapper
from torch import nn

from axe_deploy.graph.annotate import AnnotateAccumulators
from axe_deploy.graph.annotation import Annotation
from axe_deploy.graph.check import check_rows
from axe_deploy.graph.layers import QuantSpec
from axe_deploy.graph.sums import SumNode, sum_nodes, unaligned_adds
from axe_deploy.graph.validate import integer_check, run_qonnx
from axe_deploy.quant.export import export_model
from axe_deploy.quant.quantizers import WeightQuant, input_quant

torch.set_num_threads(1)
QONNX_DOMAIN = "qonnx.custom_op.general"


def quant(name, inp, out, scale, bits, signed):
    return helper.make_node("Quant", [inp, scale, "zp", bits], [out], name=name, domain=QONNX_DOMAIN,
                            signed=int(signed), narrow=0, rounding_mode="ROUND")


def sums_graph(scale_b=0.25):
    """x -> Quant a (UINT4) and Quant b (INT5) -> Add; a -> AveragePool 2x2/2 and GlobalAveragePool."""
    inits = {"s": 0.25, "s_b": scale_b, "zp": 0.0, "b4": 4.0, "b5": 5.0}
    nodes = [quant("qa", "x", "a", "s", "b4", False), quant("qb", "x", "b", "s_b", "b5", True),
             helper.make_node("Add", ["a", "b"], ["y"], name="residual"),
             helper.make_node("AveragePool", ["a"], ["p"], name="pool", kernel_shape=[2, 2], strides=[2, 2]),
             helper.make_node("GlobalAveragePool", ["a"], ["g"], name="gap")]
    graph = helper.make_graph(nodes, "sums", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 6])],
                              [helper.make_tensor_value_info(n, TensorProto.FLOAT, None) for n in ("y", "p", "g")],
                              [numpy_helper.from_array(np.asarray(v, dtype=np.float32), k) for k, v in inits.items()])
    model = ModelWrapper(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))
    from qonnx.transformation.infer_shapes import InferShapes
    return model.transform(InferShapes())


def test_add_and_pools_annotated_exact():
    model = sums_graph().transform(AnnotateAccumulators())
    found = {s.name: s for s in sum_nodes(model)}
    assert {n: (s.kind, s.terms) for n, s in found.items()} == {
        "residual": ("add", 2), "pool": ("window_sum", 4), "gap": ("window_sum", 24)}
    got = {n.name: Annotation.of(n) for n in model.graph.node if n.name in found}
    # UINT4 [0, 15] + INT5 [-16, 15] = [-16, 30]; 4 and 24 UINT4 terms: [0, 60], [0, 360]
    assert {n: (a.accumulator_range, a.accumulator_datatype) for n, a in got.items()} == {
        "residual": ((-16, 30), "INT6"), "pool": ((0, 60), "UINT6"), "gap": ((0, 360), "UINT9")}
    assert got["residual"].input_datatype == "UINT4,INT5" and got["residual"].accumulator_kind == "add"
    assert got["gap"].props()["accumulator_kind"] == "window_sum" and got["gap"].props()["terms"] == "24"
    rows = check_rows(model)
    assert [(r["name"], r["op"], r["status"], r["slack_bits"]) for r in rows] == [
        ("residual", "Add", "OK", 0), ("pool", "AveragePool", "OK", 0), ("gap", "GlobalAveragePool", "OK", 0)]


def test_sums_checked_on_real_and_worst_case_inputs():
    model = sums_graph().transform(AnnotateAccumulators())
    x = np.full((3, 2, 4, 6), 100.0, dtype=np.float32)  # saturates both: a = 15, b = 15
    x[0] = -100.0  # a = 0, b = -16
    checks = {c.name: c for c in integer_check(model, run_qonnx(model, x))}
    assert checks["residual"].observed_range == (-16, 30) and checks["residual"].overflow_free
    assert checks["pool"].observed_range == (0, 60) and checks["gap"].observed_range == (0, 360)
    assert all(c.overflow_free for c in checks.values())


def test_too_narrow_sum_annotation_is_a_violation():
    model = sums_graph().transform(AnnotateAccumulators())
    node = next(n for n in model.graph.node if n.name == "gap")
    Annotation(**{**Annotation.of(node).__dict__, "accumulator_datatype": "UINT8",
                  "accumulator_range": (0, 255)}).write(node)
    row = next(r for r in check_rows(model) if r["name"] == "gap")
    assert row["status"] == "violation: annotated UINT8, the exact range [0, 360] needs UINT9"
    x = np.full((1, 2, 4, 6), 100.0, dtype=np.float32)
    check = next(c for c in integer_check(model, run_qonnx(model, x)) if c.name == "gap")
    assert not check.overflow_free and check.observed_range == (0, 360)


def test_add_of_differently_scaled_tensors_is_not_an_integer_sum():
    model = sums_graph(scale_b=0.5).transform(AnnotateAccumulators())
    assert [s.name for s in sum_nodes(model)] == ["pool", "gap"]
    assert unaligned_adds(model) == [("residual", 0.25, 0.5)]
    assert Annotation.of(next(n for n in model.graph.node if n.name == "residual")) is None


@settings(max_examples=60, deadline=None)
@given(bits=st.tuples(st.integers(1, 8), st.integers(1, 8)), signed=st.tuples(st.booleans(), st.booleans()),
       terms=st.integers(1, 64))
def test_sum_ranges_are_the_bounds_of_every_term(bits, signed, terms):
    specs = tuple(QuantSpec(b, s, False, np.ones(1), np.zeros(1)) for b, s in zip(bits, signed))
    lo_hi = [(-(2 ** (b - 1)), 2 ** (b - 1) - 1) if s else (0, 2**b - 1) for b, s in zip(bits, signed)]
    if specs[0].bipolar:
        lo_hi[0] = (-1, 1)
    if specs[1].bipolar:
        lo_hi[1] = (-1, 1)
    add = SumNode(0, "a", "Add", "add", specs, 2)
    assert add.exact_range() == (lo_hi[0][0] + lo_hi[1][0], lo_hi[0][1] + lo_hi[1][1])
    pool = SumNode(0, "p", "AveragePool", "window_sum", specs[:1], terms)
    lo, hi = pool.exact_range()
    assert (lo, hi) == (terms * lo_hi[0][0], terms * lo_hi[0][1])
    bits_needed = int(pool.exact_datatype().lstrip("UINT"))
    if lo < 0:
        assert -(2 ** (bits_needed - 1)) <= lo and hi < 2 ** (bits_needed - 1)
        assert lo < -(2 ** (bits_needed - 2)) or hi >= 2 ** (bits_needed - 2)
    else:
        assert hi < 2**bits_needed and (bits_needed == 1 or hi >= 2 ** (bits_needed - 1))


class Residual(nn.Module):
    """Brevitas: one quantizer shared by both branches of a residual, so both have its scale."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=input_quant(1.0, 4), return_quant_tensor=True)
        self.conv = qnn.QuantConv2d(2, 2, 3, padding=1, bias=False, weight_quant=WeightQuant, weight_bit_width=4)
        self.join = qnn.QuantIdentity(bit_width=5, return_quant_tensor=True)

    def forward(self, x):
        x = self.inp(x)
        return self.join(self.join(self.conv(x)) + self.join(x))


def test_brevitas_residual_add_is_annotated():
    torch.manual_seed(0)
    model = Residual().eval()
    x = torch.rand(4, 2, 4, 4)
    with torch.no_grad():
        model(x)
    qonnx, qcdq = export_model(model, x)
    annotated = qonnx.transform(AnnotateAccumulators())
    (add,) = [s for s in sum_nodes(annotated) if s.kind == "add"]
    assert add.input_datatype == "INT5,INT5" and add.exact_range() == (-32, 30)
    assert [r["status"] for r in check_rows(annotated)] == ["OK", "OK"]
    assert all(c.overflow_free for c in integer_check(annotated, run_qonnx(annotated, x.numpy())))


def test_check_command_names_an_add_on_different_scales(tmp_path):
    from click.testing import CliRunner

    from axe_deploy.cli.main import main
    path = tmp_path / "unaligned.onnx"
    sums_graph(scale_b=0.5).transform(AnnotateAccumulators()).save(str(path))
    result = CliRunner().invoke(main, ["check", str(path)], catch_exceptions=False)
    assert result.exit_code == 0 and "2/2 layers OK" in result.output
    assert "note: Add 'residual' sums two quantized tensors on different scales (0.25, 0.5)" in result.output
