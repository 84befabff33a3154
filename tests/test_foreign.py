"""Foreign QONNX/QCDQ files (issue 11): `axe-deploy annotate` / `check` on a Brevitas
`export_qonnx` file, its QCDQ export and FINN's bnn_pynq TFC and CNV graphs built here from
brevitas_examples (untrained, nothing downloaded) give the widths a numpy computation from
the integer weights gives; those graphs lower and simulate bit-exactly through a
`[model] onnx` flow; bad inputs stop with the node, op or pattern named."""

import json
import warnings

import brevitas.nn as qnn
import numpy as np
import onnx
import pytest
import torch
from brevitas.export import export_onnx_qcdq, export_qonnx
from brevitas.quant import Uint8ActPerTensorFloat
from click.testing import CliRunner
from torch import nn

from axe_deploy.flow import config
from axe_deploy.graph.annotation import PREFIX
from axe_deploy.cli.main import main
from axe_deploy.flow.runner import run_flow
from axe_deploy.graph.layers import GraphError

torch.set_num_threads(1)

def numpy_bits(q: np.ndarray, x_lo: int, x_hi: int) -> int:
    """Minimal signed register for every row's dot product over inputs in [x_lo, x_hi]."""
    q = q.reshape(len(q), -1).astype(np.int64)
    hi = np.maximum(q * x_lo, q * x_hi).sum(1).max()
    lo = np.minimum(q * x_lo, q * x_hi).sum(1).min()
    bits = 1
    while not (-(2 ** (bits - 1)) <= lo and hi <= 2 ** (bits - 1) - 1):
        bits += 1
    return bits

def export(model, x, path, qcdq=False):
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        (export_onnx_qcdq if qcdq else export_qonnx)(model.eval(), args=x, export_path=str(path), dynamo=False)
    return path

class StockMLP(nn.Module):
    """Brevitas's stock quantizers: 8-bit per-tensor weights, 4-bit ReLU, float bias."""

    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(12, 8, bias=True)
        self.relu = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(8, 3, bias=True)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(self.inp(x))))

@pytest.fixture(scope="module")
def stock(tmp_path_factory):
    torch.manual_seed(0)
    model = StockMLP().eval()
    x = torch.rand(16, 12)
    with torch.no_grad():  # Brevitas calibrates nothing here: defaults, as a user's export would
        model(x)
    folder = tmp_path_factory.mktemp("stock")
    expected = {"fc1": numpy_bits(model.fc1.quant_weight().int().numpy(), 0, 255),
                "fc2": numpy_bits(model.fc2.quant_weight().int().numpy(), 0, 15)}
    return model, x, export(model, x[:1], folder / "model.onnx"), expected

def run_cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)

def test_annotate_and_check_a_brevitas_export(stock, tmp_path):
    _, _, path, expected = stock
    unannotated = run_cli("check", path, "--json", tmp_path / "c0.json")
    assert unannotated.exit_code == 1 and "not annotated" in unannotated.output
    out = tmp_path / "annotated.onnx"
    result = run_cli("annotate", path, out, "--json", tmp_path / "a.json")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "a.json").read_text())["layers"]
    assert {r["name"]: r["exact_bits"] for r in rows} == expected
    assert {r["weight_datatype"] for r in rows} == {"INT8"}
    checked = run_cli("check", out, "--json", tmp_path / "c.json")
    assert checked.exit_code == 0, checked.output
    report = json.loads((tmp_path / "c.json").read_text())
    assert report["ok"] and [r["status"] for r in report["layers"]] == ["OK", "OK"]
    assert {r["name"]: r["exact_bits"] for r in report["layers"]} == expected

def test_annotate_over_target_exits_1_and_writes_nothing(stock, tmp_path):
    _, _, path, expected = stock
    out = tmp_path / "x.onnx"
    result = run_cli("annotate", path, out, "--accumulator-bits", expected["fc1"] - 1)
    assert result.exit_code == 1
    assert f"needs {expected['fc1']} > {expected['fc1'] - 1} bits" in result.output
    assert not out.exists()
    assert run_cli("annotate", path, out, "--accumulator-bits", expected["fc1"]).exit_code == 0
    again = run_cli("annotate", path, out)  # never overwrites a file
    assert again.exit_code != 0 and "exists" in again.output

def _set_annotation(path, out, layer_index, key, value):
    model = onnx.load(str(path))
    nodes = [n for n in model.graph.node if n.op_type in ("Gemm", "MatMul", "Conv")]
    for p in nodes[layer_index].metadata_props:
        if p.key == PREFIX + key:
            p.value = value
    onnx.save(model, str(out))
    return out

def test_check_reports_slack_and_violation(stock, tmp_path):
    _, _, path, expected = stock
    good = tmp_path / "good.onnx"
    run_cli("annotate", path, good)
    wide = _set_annotation(good, tmp_path / "wide.onnx", 0, "accumulator_datatype", f"INT{expected['fc1'] + 2}")
    result = run_cli("check", wide, "--json", tmp_path / "w.json")
    rows = json.loads((tmp_path / "w.json").read_text())["layers"]
    assert result.exit_code == 1 and rows[0]["status"] == "slack 2 bits" and rows[1]["status"] == "OK"
    narrow = _set_annotation(good, tmp_path / "narrow.onnx", 1, "accumulator_datatype", f"INT{expected['fc2'] - 1}")
    result = run_cli("check", narrow)
    assert result.exit_code == 1
    assert f"violation: annotated INT{expected['fc2'] - 1}" in result.output and f"needs INT{expected['fc2']}" in result.output

def test_annotate_and_check_a_qcdq_export(stock, tmp_path):
    model, x, _, expected = stock
    path = export(model, x[:1], tmp_path / "model.qcdq.onnx", qcdq=True)
    out = tmp_path / "annotated.qcdq.onnx"
    assert run_cli("annotate", path, out, "--json", tmp_path / "a.json").exit_code == 0
    rows = json.loads((tmp_path / "a.json").read_text())["layers"]
    assert [r["exact_bits"] for r in rows] == [expected["fc1"], expected["fc2"]]
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "QuantizeLinear" in ops and "Quant" not in ops  # written back as the QCDQ file it was
    assert run_cli("check", out).exit_code == 0

# FINN's bnn_pynq networks from brevitas_examples: (config, reduce the CNV, input bounds of
# the first layer, of the others)
def bnn(name: str, monkeypatch):
    from brevitas_examples.bnn_pynq.models import CNV as cnv_module
    from brevitas_examples.bnn_pynq.models import model_with_cfg
    if name.startswith("cnv"):  # the CNV architecture with fewer channels: CI time
        monkeypatch.setattr(cnv_module, "CNV_OUT_CH_POOL", [(8, False), (8, True), (8, False), (8, True),
                                                            (16, False), (16, False)])
        monkeypatch.setattr(cnv_module, "INTERMEDIATE_FC_FEATURES", [(16, 16), (16, 16)])
        monkeypatch.setattr(cnv_module, "LAST_FC_IN_FEATURES", 16)
    torch.manual_seed(0)
    model, _ = model_with_cfg(name, pretrained=False)
    for m in model.modules():  # untrained, but not the identity BatchNorm
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.weight.data.uniform_(0.5, 2)
            m.bias.data.uniform_(-1, 1)
            m.running_mean.uniform_(-2, 2)
            m.running_var.uniform_(0.5, 4)
    shape = (1, 1, 28, 28) if name.startswith("tfc") else (1, 3, 32, 32)
    return model.eval(), shape

BNN_BOUNDS = {"tfc_2w2a": ((-1, 1), (-1, 1)), "tfc_1w1a": ((-1, 1), (-1, 1)), "cnv_2w2a": ((-128, 127), (-1, 1))}

@pytest.mark.parametrize("name", list(BNN_BOUNDS))
def test_annotate_finn_bnn_graphs_matches_numpy(name, tmp_path, monkeypatch):
    model, shape = bnn(name, monkeypatch)
    path = export(model, torch.rand(shape), tmp_path / f"{name}.onnx")
    layers = [m for m in model.modules() if isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d))]
    first, rest = BNN_BOUNDS[name]
    expected = [numpy_bits(l.quant_weight().int().numpy() if "1w" not in name else
                           torch.sign(l.quant_weight().value).detach().numpy(), *(first if i == 0 else rest))
                for i, l in enumerate(layers)]
    out = tmp_path / "annotated.onnx"
    result = run_cli("annotate", path, out, "--json", tmp_path / "a.json")
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "a.json").read_text())["layers"]
    assert [r["exact_bits"] for r in rows] == expected
    if name == "tfc_1w1a":  # 1-bit weights and activations are ±1, not INT1
        assert {r["weight_datatype"] for r in rows} == {"BIPOLAR"} and {r["input_datatype"] for r in rows} == {"BIPOLAR"}
    assert run_cli("check", out).exit_code == 0

def onnx_flow(folder, path, x, y=None, extra=""):
    np.save(folder / "x.npy", x)
    text = f'[flow]\nname = "foreign"\n[model]\nonnx = "{path.name}"\n[data]\ninputs = "x.npy"\n'
    if y is not None:
        np.save(folder / "y.npy", y)
        text += 'targets = "y.npy"\n'
    flow = folder / "flow.toml"
    flow.write_text(text + extra)
    return flow


def hw_cfg(flow, vectors):
    return config.load(flow, ['flow.steps=["import_onnx", "annotate", "validate", "lower", "fold", "rtl", '
                              '"simulate", "report"]', f"hardware.sim_vectors={vectors}",
                              "hardware.target_cycles=16384"])

@pytest.mark.slow
@pytest.mark.parametrize("name", ["tfc_2w2a", "cnv_2w2a"])
def test_foreign_graphs_lower_and_simulate_bit_exactly(name, tmp_path, monkeypatch):
    model, shape = bnn(name, monkeypatch)
    path = export(model, torch.rand(shape), tmp_path / "model.onnx")
    x = torch.rand((3,) + shape[1:], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        y = model(x).argmax(1).numpy()
    flow = onnx_flow(tmp_path, path, x.numpy(), y)
    report = run_flow(hw_cfg(flow, 3), tmp_path / "build", where=str(flow), progress=lambda s: None)
    m = report["metrics"]
    assert m["qonnx_accuracy"] == 1.0 and m["qonnx_max_abs_diff"] == 0.0
    assert m["onnxruntime_max_abs_diff"] is not None and m["onnxruntime_max_abs_diff"] < 1e-4
    assert report["dataflow"]["executor_max_abs_diff_vs_onnxruntime"] < 1e-4
    sim = report["hardware"]["rtl_sim"]
    assert sim["vectors"] == sim["bit_exact_vectors"] == 3 and sim["overflows"] == 0
    assert all(l["overflow_free"] for l in report["layers"])
    assert report["checks"] and all(c["passed"] for c in report["checks"].values()), report["checks"]

@pytest.fixture()
def sigmoid_graph(tmp_path):
    class WithSigmoid(nn.Module):
        def __init__(self):
            super().__init__()
            self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
            self.fc1, self.act = qnn.QuantLinear(6, 4, bias=True), nn.Sigmoid()
            self.q = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
            self.fc2 = qnn.QuantLinear(4, 2, bias=True)

        def forward(self, x):
            return self.fc2(self.q(self.act(self.fc1(self.inp(x)))))

    torch.manual_seed(0)
    return export(WithSigmoid(), torch.rand(1, 6), tmp_path / "sigmoid.onnx")

def test_unsupported_op_stops_before_any_step(sigmoid_graph, tmp_path):
    flow = onnx_flow(tmp_path, sigmoid_graph, np.random.default_rng(0).random((2, 6), dtype=np.float32))
    out = tmp_path / "build"
    with pytest.raises(GraphError, match=r"node '/act/Sigmoid' \(Sigmoid\) cannot be lowered.*supported: quantized "
                                         r"Gemm/MatMul/Conv"):
        run_flow(config.load(flow), out, where=str(flow), progress=lambda s: pytest.fail(f"a step ran: {s}"))
    assert not out.exists()

def test_per_layer_target_matching_no_layer_is_an_error(stock, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(stock[2].read_bytes())
    flow = onnx_flow(tmp_path, path, np.zeros((2, 12), np.float32),
                     extra='[quant.layers."node_linear_*"]\naccumulator_bits = 12\n')
    with pytest.raises(GraphError, match=r"per-layer target for 'node_linear_\*' matches no layer; the graph's "
                                         r"layers: fc1, fc2"):
        run_flow(config.load(flow), tmp_path / "b", where=str(flow), progress=lambda s: None)

def test_bipolar_activations_are_refused_by_name_in_lowering(tmp_path, monkeypatch):
    model, shape = bnn("tfc_1w1a", monkeypatch)
    path = export(model, torch.rand(shape), tmp_path / "model.onnx")
    flow = onnx_flow(tmp_path, path, np.zeros((1,) + shape[1:], np.float32))
    with pytest.raises(GraphError, match=r"bipolar"):
        run_flow(config.load(flow), tmp_path / "b", where=str(flow), progress=lambda s: None)

@pytest.mark.parametrize("content, fragment", [(b"not onnx", "not an ONNX file"), (None, "file not found")])
def test_bad_onnx_files_name_the_file(tmp_path, content, fragment):
    path = tmp_path / "bad.onnx"
    if content is not None:
        path.write_bytes(content)
    result = run_cli("check", path)
    assert result.exit_code == 1 and str(path) in result.output and fragment in result.output

def test_missing_data_file_is_named_before_any_step(stock, tmp_path):
    flow = tmp_path / "flow.toml"
    flow.write_text(f'[model]\nonnx = "{stock[2]}"\n[data]\ninputs = "nope.npy"\n')
    with pytest.raises(config.FlowConfigError, match=r"'data.inputs' = 'nope.npy': file not found"):
        run_flow(config.load(flow), tmp_path / "b", where=str(flow), progress=lambda s: pytest.fail(s))
