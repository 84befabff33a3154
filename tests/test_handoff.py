"""The FINN and hls4ml handoff files: graphs that compute the same function, widths from the
annotation, folding under FINN's names, the accumulator check. (The compilers themselves run
in test_handoff_compilers.py.)"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.util.basic import qonnx_make_model

from axe_deploy.flow import config
from axe_deploy.graph.annotate import AnnotateAccumulators
from axe_deploy.flow.runner import run_flow
from axe_deploy.graph.layers import quant_layers
from axe_deploy.handoff import axe_finn_steps
from axe_deploy.handoff.finn import accumulator_entries, folding_config
from axe_deploy.handoff.finn_graph import input_quantization, quantize_input
from axe_deploy.handoff.hls4ml import hls_config, narrower_config, worst_case_inputs
from axe_deploy.handoff.hls4ml_graph import FoldWeightScales
from axe_deploy.hw.spec import MaxPoolLayer, MVAULayer, SlidingWindowLayer
from axe_deploy.graph.validate import run_qonnx

FLOWS = Path(__file__).parents[1] / "flows"
TO_HANDOFF = 'flow.steps=["build_models","quantize","export","annotate","validate","lower","fold","handoff"]'


@pytest.fixture(scope="module")
def mlp(tmp_path_factory):
    out = tmp_path_factory.mktemp("handoff") / "mlp"
    # round-to-nearest, unconstrained: the widths below are the ones it needs (16/15/13)
    cfg = config.load(FLOWS / "digits_mlp.toml", [TO_HANDOFF, "hardware.target_cycles=4096", 'quant.algorithm="rtn"',
                                                  "quant.layers={}"])
    return out, run_flow(cfg, out, progress=lambda s: None)


def _test_inputs(n=40):
    from axe_deploy import zoo

    b = zoo.build("digits-mlp", weight_bits=4, act_bits=4, input_bits=8)
    return b.test_x.numpy()[:n]


def test_finn_model_takes_integer_input_at_batch_one_and_computes_the_same(mlp):
    out, report = mlp
    original = ModelWrapper(str(out / "model.qonnx.onnx"))
    finn = ModelWrapper(str(out / "finn" / "model.onnx"))
    inp = finn.graph.input[0].name
    # FINN refuses an unsigned identity Quant: the input is annotated UINT8 and scaled by a Mul
    assert finn.get_tensor_datatype(inp) == DataType["UINT8"]
    assert [n.op_type for n in finn.find_consumers(inp)] == ["Mul"]
    assert finn.get_tensor_shape(inp) == [1, 64] and finn.get_tensor_shape(finn.graph.output[0].name) == [1, 10]
    iq = json.loads((out / "finn" / "input_quantization.json").read_text())
    assert (iq["datatype"], iq["min"], iq["max"], iq["scale"]) == ("UINT8", 0, 255, 0.0625)
    # every annotation travels with the graph
    assert [n.metadata_props for n in finn.graph.node if n.op_type == "Gemm"] == \
           [n.metadata_props for n in original.graph.node if n.op_type == "Gemm"]
    x = _test_inputs()
    x_int = quantize_input(x, input_quantization(original))
    assert np.array_equal(x_int, np.rint(x_int)) and x_int.max() <= 255
    ref = run_qonnx(original, x)[original.graph.output[0].name]
    got = run_qonnx(finn, x_int)[finn.graph.output[0].name]
    assert np.array_equal(got, ref)


def test_folding_entries_use_finns_specialized_names():
    layers = [SlidingWindowLayer("c1_swg", H=8, W=8, C=1, K=3, SIMD=1, bits=5, signed=False, pad=1),
              MVAULayer("c1", MW=9, MH=16, PE=2, SIMD=3, num_vectors=64, input_bits=5, input_signed=False,
                        weight_bits=4, acc_bits=12, acc_signed=True, weights=np.zeros((16, 9), dtype=np.int64),
                        thresholds=None),
              SlidingWindowLayer("c2_swg", H=8, W=8, C=16, K=3, SIMD=4, bits=4, signed=False, pad=0),
              MaxPoolLayer("pool", H=6, W=6, C=16, PE=8, bits=4, signed=False)]
    cfg = folding_config(layers)
    assert cfg["FMPadding_rtl_0"] == {"SIMD": 1}
    assert cfg["ConvolutionInputGenerator_rtl_0"]["SIMD"] == 1
    assert cfg["MVAU_hls_0"]["PE"] == 2 and cfg["MVAU_hls_0"]["SIMD"] == 3
    assert "FMPadding_rtl_1" not in cfg  # no padding, no FMPadding node in FINN's graph
    assert cfg["ConvolutionInputGenerator_rtl_1"]["SIMD"] == 4
    assert cfg["ConvolutionInputGenerator_rtl_2"]["SIMD"] == 8 and cfg["Pool_hls_0"] == {"PE": 8}


def _mvau(name, acc, no_act=0, then=None):
    nodes = [helper.make_node("MVAU", ["x"], ["y"], name=name, domain="finn.custom_op.fpgadataflow",
                              accDataType=acc, noActivation=no_act)]
    if then:
        nodes.append(helper.make_node("Identity", ["y"], ["z"], name=then))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", 1, [1, 4])],
                              [helper.make_tensor_value_info("z" if then else "y", 1, [1, 4])])
    return ModelWrapper(qonnx_make_model(graph))


def test_finn_accumulator_check_raises_on_narrower_reports_wider():
    ours = [{"name": "fc3", "accumulator_datatype": "INT13", "accumulator_range": [-3030, 1995]}]
    with pytest.raises(RuntimeError, match="INT12 is narrower than the proven INT13"):
        axe_finn_steps.check_accumulators(_mvau("MVAU_hls_2", "INT12"), ours)
    # UINT12 holds [0, 4095] but not -3030: narrower in range although it has 12 bits
    with pytest.raises(RuntimeError, match="narrower"):
        axe_finn_steps.check_accumulators(_mvau("MVAU_hls_2", "UINT16"), ours)
    [row] = axe_finn_steps.check_accumulators(_mvau("MVAU_hls_2", "INT13"), ours)
    assert row["status"] == "equal"
    # FINN pads a last MVAU without activation to a multiple of 8 bits: reported, with the reason
    [row] = axe_finn_steps.check_accumulators(_mvau("MVAU_hls_2", "INT16", no_act=1), ours)
    assert row["status"] == "wider" and "multiple of 8" in row["reason"]
    [row] = axe_finn_steps.check_accumulators(_mvau("MVAU_hls_2", "INT16", no_act=1, then="next"), ours)
    assert row["status"] == "wider" and "reason" not in row
    with pytest.raises(RuntimeError, match="do not correspond"):
        axe_finn_steps.check_accumulators(_mvau("MVAU_hls_0", "INT13"), ours * 2)


def test_finn_check_refuses_folding_names_not_in_the_graph():
    model = _mvau("MVAU_rtl_0", "INT13")
    axe_finn_steps.check_folding_names(model, {"Defaults": {}, "MVAU_rtl_0": {"PE": 1}})
    with pytest.raises(RuntimeError, match=r"\['MVAU_hls_0'\] name no node"):
        axe_finn_steps.check_folding_names(model, {"Defaults": {}, "MVAU_hls_0": {"PE": 1}})


def test_multi_stage_layers_hand_finn_the_outer_width(mlp):
    out, _ = mlp
    model = ModelWrapper(str(out / "model.qonnx.onnx")).transform(AnnotateAccumulators({"fc1": 16}))
    entries, notes = accumulator_entries(model)
    fc1 = entries[0]
    assert fc1["tile_size"] == 16 and fc1["inner_accumulator_datatype"] != fc1["accumulator_datatype"]
    layer = quant_layers(model)[0]
    lo, hi = fc1["accumulator_range"]
    from axe_deploy.core.accumulator import input_bounds, row_ranges
    rlo, rhi = row_ranges(layer.q, *input_bounds(8, False))
    assert (lo, hi) == (rlo.min(), rhi.max())  # the whole dot product, what FINN's one accumulator holds
    assert len(notes) == 1 and "outer width" in notes[0] and "fc1" in notes[0]
    config, layers, notes = hls_config(model)  # hls4ml too: one accumulator per layer, the outer one
    assert layers["fc1"]["accumulator_datatype"] == fc1["accumulator_datatype"]
    assert config["LayerName"][layers["fc1"]["node"]]["Precision"]["accum"].startswith(
        f"fixed<{int(fc1['accumulator_datatype'][3:])},")
    assert len(notes) == 1 and "outer width" in notes[0]


def test_hls4ml_graph_has_integer_weights_and_the_same_function(mlp):
    out, _ = mlp
    original = ModelWrapper(str(out / "model.qonnx.onnx"))
    folded = original.transform(FoldWeightScales())
    for layer, before in zip(quant_layers(folded), quant_layers(original), strict=True):
        assert np.all(layer.weight.scale == 1) and np.array_equal(layer.q, before.q)  # the integers themselves
    assert not [n for n in folded.graph.node if n.op_type == "Gemm"]
    x = _test_inputs()
    ref = run_qonnx(original, x)[original.graph.output[0].name]
    # The same integers, the scale applied before (Gemm) or after (MatMul, Mul) the float32 sum
    # of the last layer (the earlier layers' outputs are requantized to the same integers): two
    # float32 sums of K terms differ by at most 2·K·2^-24·Σ|terms| (Σ|terms| <= the row's
    # ||W||₁·max x), plus the rounding of the output itself.
    last = quant_layers(original)[-1]
    row_l1 = float((np.abs(last.q) * np.abs(last.weight.scale).reshape(-1, 1)).sum(axis=1).max())
    x_max = float(np.abs(last.input.scale).max()) * (2**last.input.bits - 1)
    atol = 2 * last.K * 2.0**-24 * row_l1 * x_max + 2.0**-24 * float(np.abs(ref).max())
    got = run_qonnx(folded, x)[folded.graph.output[0].name]
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)
    hls = ModelWrapper(str(out / "hls4ml" / "model.onnx"))
    assert not [n for n in hls.graph.node if n.op_type in ("Gemm",)]
    got = run_qonnx(hls, x)[hls.graph.output[0].name]
    np.testing.assert_allclose(got, ref, rtol=0, atol=atol)


def test_hls4ml_graph_of_a_bias_free_linear(tmp_path):
    """Brevitas exports a Linear without bias as Quant -> Transpose -> MatMul: the fold
    reads the weights through the Transpose (it used to take the Transpose for the Quant,
    and the hls4ml handoff was skipped)."""
    import warnings

    import brevitas.nn as qnn
    import torch
    from brevitas.export import export_qonnx
    from brevitas.quant import Uint8ActPerTensorFloat

    torch.manual_seed(0)
    model = torch.nn.Sequential(qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True),
                                qnn.QuantLinear(6, 5, bias=False, weight_bit_width=4),
                                qnn.QuantReLU(bit_width=4, return_quant_tensor=True),
                                qnn.QuantLinear(5, 3, bias=False, weight_bit_width=4)).eval()
    x = torch.rand(16, 6)
    path = tmp_path / "bias_free.onnx"
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        model(x)
        export_qonnx(model, args=x[:1], export_path=str(path), dynamo=False)
    original = ModelWrapper(str(path)).transform(AnnotateAccumulators())
    assert [n.op_type for n in original.graph.node].count("Transpose") == 2
    folded = original.transform(FoldWeightScales())
    for layer, before in zip(quant_layers(folded), quant_layers(original), strict=True):
        assert np.all(layer.weight.scale == 1) and np.array_equal(layer.q, before.q)
    assert not [n for n in folded.graph.node if n.op_type == "Transpose"]
    ref = run_qonnx(original, x.numpy())[original.graph.output[0].name]
    got = run_qonnx(folded, x.numpy())[folded.graph.output[0].name]
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5)


def test_hls4ml_config_accum_is_the_annotated_width(mlp):
    out, report = mlp
    cfg = json.loads((out / "hls4ml" / "hls4ml_config.json").read_text())
    layers = report["handoff"]["hls4ml"]["layers"]
    for entry in report["layers"]:
        rec = layers[entry["name"]]
        p = cfg["LayerName"][rec["node"]]["Precision"]
        bits = int(re.search(r"\d+", entry["accumulator_datatype"]).group())
        w, i = map(int, re.fullmatch(r"fixed<(\d+),(-?\d+)>", p["accum"]).groups())
        assert w == bits and p["result"] == p["accum"] and p["weight"] == "fixed<4,4>"
        # fc1 reads the input (scale 1/16, kept by hls4ml as 4 fractional bits), the others integers
        assert w - i == (4 if entry["name"] == "fc1" else 0)
    narrow = narrower_config(cfg)
    fields = lambda c: [tuple(map(int, re.fullmatch(r"fixed<(\d+),(-?\d+)>", v["Precision"]["accum"]).groups()))
                        for v in c["LayerName"].values()]
    # one bit less, taken from the integer part: the same fractional bits, one bit too few for the range
    assert fields(narrow) == [(w - 1, i - 1) for w, i in fields(cfg)] and len(fields(cfg)) == len(report["layers"])


def test_worst_case_inputs_reach_the_proven_range(mlp):
    out, report = mlp
    model = ModelWrapper(str(out / "model.qonnx.onnx"))
    x = worst_case_inputs(model)
    assert np.array_equal(np.load(out / "hls4ml" / "worst_case_inputs.npy"), x)
    layer = quant_layers(model)[0]
    x_int = x.reshape(len(x), -1) / float(layer.input.scale.reshape(-1)[0])
    assert np.array_equal(x_int, np.rint(x_int))
    M = layer.M
    acc = np.einsum("nk,nk->n", x_int.astype(np.int64), np.concatenate([layer.q, layer.q]))
    lo, hi = report["layers"][0]["accumulator_range"]
    assert acc[:M].max() == hi and acc[M:].min() == lo


def test_hls4ml_handoff_skips_a_graph_it_cannot_rewrite_and_writes_nothing(mlp, tmp_path):
    from axe_deploy.handoff.hls4ml import write_handoff

    out, _ = mlp
    model = ModelWrapper(str(out / "model.qonnx.onnx"))
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    next(a for a in gemm.attribute if a.name == "alpha").f = 2.0  # Brevitas writes alpha = 1.0
    model.save(str(tmp_path / "alpha2.onnx"))
    record = write_handoff(tmp_path / "hls4ml", ModelWrapper(str(tmp_path / "alpha2.onnx")), None, part="xc7z020clg400-1",
                           clock_mhz=100.0)
    assert "Gemm node '/fc1/Gemm'" in record["skipped"] and "alpha" in record["skipped"]
    assert not (tmp_path / "hls4ml").exists()
