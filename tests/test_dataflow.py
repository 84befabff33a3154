"""Lowering: exact integer thresholds and the dataflow executor against onnxruntime."""

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.flow import config
from axe_deploy.dataflow.execute import execute_dataflow
from axe_deploy.dataflow.hw_bridge import hw_layers
from axe_deploy.dataflow.lower import lower
from axe_deploy.dataflow.thresholds import apply_thresholds, layer_thresholds, quant_thresholds
from axe_deploy.flow.runner import SOFTWARE_STEPS, run_flow
from axe_deploy.graph.layers import GraphError
from axe_deploy.graph.validate import run_onnxruntime

DEFAULT = Path(__file__).parents[1] / "flows" / "digits_mlp.toml"


def round_half_even(v: Fraction) -> int:
    f = v.numerator // v.denominator
    rest = v - f
    return f + 1 if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and f % 2) else f


@settings(max_examples=200, deadline=None)
@given(st.fractions(min_value=Fraction(1, 1000), max_value=10).filter(lambda r: r > 0),
       st.fractions(min_value=-50, max_value=50), st.integers(1, 4))
def test_thresholds_equal_relu_quant_semantics(ratio, bias, bits):
    levels = 2**bits - 1
    t = quant_thresholds(ratio, bias, levels)
    assert t == sorted(t)
    for acc in range(t[0] - 3, t[-1] + 4):
        expected = min(max(round_half_even(max((acc + bias) * ratio, Fraction(0))), 0), levels)
        assert sum(acc >= tk for tk in t) == expected, (acc, t)


def test_ties_round_to_even():
    # r = 1/2, b = 0: (acc)/2 = k - 1/2 at acc = 2k - 1; even k rounds up there, odd k down
    assert quant_thresholds(Fraction(1, 2), Fraction(0), 3) == [2, 3, 6]


def test_layer_thresholds_from_float_scales_are_exact():
    s_x, s_a = 0.0625, 0.13836947083473206
    s_w = np.array([0.0178, 0.02], dtype=np.float32)
    bias = np.array([0.3, -1.25], dtype=np.float32)
    t = layer_thresholds(s_x, s_w, s_a, bias, 4)
    acc = np.arange(-500, 500)[:, None].repeat(2, axis=1)
    got = apply_thresholds(acc, t)
    exact = [[min(15, round_half_even(max(Fraction(0), (Fraction(int(a)) * Fraction(s_x) * Fraction(float(w))
                                                       + Fraction(float(b))) / Fraction(s_a))))
              for a, w, b in zip(row, s_w, bias)] for row in acc]
    assert np.array_equal(got, np.array(exact))


@pytest.fixture(scope="module")
def annotated(tmp_path_factory):
    out = tmp_path_factory.mktemp("df") / "b"
    cfg = config.load(DEFAULT, ["flow.steps=" + str(SOFTWARE_STEPS).replace("'", '"')])
    run_flow(cfg, out, progress=lambda s: None)
    return out


def test_executor_matches_onnxruntime_on_whole_test_split(annotated):
    from axe_deploy.zoo.digits import digits_split
    model = lower(ModelWrapper(str(annotated / "model.qonnx.onnx")))
    assert [n.op_type for n in model.graph.node] == ["InputQuant", "MVAU", "MVAU", "MVAU", "ChannelwiseAffine"]
    _, x, _, _ = digits_split()
    out = execute_dataflow(model, x)[model.graph.output[0].name]
    ort = run_onnxruntime(annotated / "model.qcdq.onnx", x)
    assert np.abs(out - ort).max() < 1e-4
    assert np.array_equal(out.argmax(1), ort.argmax(1))
    layers = hw_layers(model)
    assert [l.acc_bits for l in layers] == [int(n) for n in
            [p.value[3:] for n in ModelWrapper(str(annotated / "model.qonnx.onnx")).graph.node
             for p in n.metadata_props if p.key == "axe_deploy.accumulator_datatype"]]
    assert layers[-1].thresholds is None and layers[0].thresholds.shape == (256, 15)


def test_unannotated_layer_is_refused(annotated):
    model = ModelWrapper(str(annotated / "model.qonnx.onnx"))
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    del gemm.metadata_props[:]
    with pytest.raises(GraphError, match="no accumulator annotation"):
        lower(model)
