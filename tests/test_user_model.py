"""Your own model: the PyTorch -> Brevitas helper, the public ModelBundle and quantizers,
the [model] module flow key, and the driver guards that refuse what used to give silent
wrong results (issue 11)."""

import brevitas.nn as qnn
import numpy as np
import pytest
import torch
from brevitas.quant import Int8WeightPerChannelFloat
from torch import nn

import axe_deploy
from axe_deploy.flow import config
from axe_deploy.quant.convert import UnsupportedModuleError, bundle_from_float, quant_model_from_float
from axe_deploy.flow.runner import check_flow
from axe_deploy.quant.bundle import ModelBundle, build_user_bundle
from axe_deploy.quant.driver import calibrate, check_written, quantize_model
from axe_deploy.quant.quantizers import BiasQuant, ReluQuant, WeightQuant, WeightQuantPerTensor, input_quant

torch.set_num_threads(1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Dropout(0.1))
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.body(x))


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(4 * 2 * 2, 3)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def quant_cfg(**kw):
    return dict(config.defaults()["quant"], **kw)


def data(shape=(12,), n=64, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.rand((n, *shape), generator=gen), torch.randint(0, 3, (n,), generator=gen)


def test_public_names_and_old_paths():
    from axe_deploy.zoo import ModelBundle as ZooBundle
    from axe_deploy.quant.quantizers import WeightQuant as OldWeightQuant
    assert axe_deploy.ModelBundle is ModelBundle is ZooBundle
    assert OldWeightQuant is WeightQuant


@pytest.mark.parametrize("make, shape", [(Net, (12,)), (ConvNet, (1, 4, 4))])
def test_helper_keeps_module_names_and_quantizes_every_layer(make, shape):
    torch.manual_seed(0)
    float_model = make().eval()
    x, y = data(shape)
    bundle = bundle_from_float(float_model, quant_cfg(weight_bits=3, act_bits=3), calib_x=x, test_x=x, test_y=y)
    q = bundle.quant_model
    quant_names = [n for n, m in q.named_modules() if isinstance(m, (qnn.QuantLinear, qnn.QuantConv2d))]
    float_names = [n for n, m in float_model.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    assert quant_names == float_names
    infos = bundle.quantize(quant_cfg(weight_bits=3, act_bits=3), progress=False)
    for name in quant_names:
        layer = q.get_submodule(name)
        assert int(layer.quant_weight().bit_width) == 3
        assert layer.quant_weight().int().abs().max() <= 3
        assert infos[name].exact_bits >= 2
    # the float model is untouched and the quantized one tracks it
    with torch.no_grad():
        assert float_model(x).shape == q(x).shape


class _Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(1)
        self.seq = nn.Sequential(nn.ReLU(), nn.MaxPool2d(1))
        self.branches = nn.ModuleList([nn.MaxPool2d(1)])

    def forward(self, x):
        return self.branches[0](self.seq(self.pool(x)))


# Brevitas's QONNX export goes through the same TorchScript exporter
@pytest.mark.filterwarnings("ignore::DeprecationWarning:torch.onnx")
@pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript-based ONNX export")
@pytest.mark.parametrize("make", [
    lambda: nn.Sequential(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Sequential(nn.ReLU())), nn.MaxPool2d(1)),
    lambda: nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(2), _Block()),
], ids=["nested-sequentials", "module-in-sequential"])
def test_exported_node_names_give_the_module_names(make):
    """torch.onnx names a container's child '/features/features.4/MaxPool': that is
    'features.4', not 'features.features.4' (the name the hardware report shows)."""
    import io

    import onnx

    from axe_deploy.dataflow.helpers import module_name
    model = nn.Module()
    model.features = make()
    model.forward = lambda x: model.features(x)
    buffer = io.BytesIO()
    torch.onnx.export(model, torch.randn(1, 1, 6, 6), buffer, dynamo=False)
    nodes = [n for n in onnx.load_from_string(buffer.getvalue()).graph.node if n.name.count("/") > 1]
    modules = dict(model.named_modules())
    assert nodes
    for node in nodes:
        name = module_name(node, "fallback")
        assert name in modules, node.name
        assert type(modules[name]).__name__ == {"Conv": "Conv2d", "Relu": "ReLU", "MaxPool": "MaxPool2d"}[node.op_type]


def test_helper_refuses_unsupported_modules_by_name():
    model = nn.Sequential(nn.Linear(4, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))
    with pytest.raises(UnsupportedModuleError, match=r"module '1' \(BatchNorm1d\).*supported: Linear, Conv2d"):
        quant_model_from_float(model)


def test_helper_refuses_functional_relu_with_the_layer_name():
    class Functional(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 2)

        def forward(self, x):
            return self.b(torch.relu(self.a(x)))

    x = torch.rand(8, 4)
    with pytest.raises(UnsupportedModuleError, match=r"layer 'b' receives an unquantized tensor.*nn.ReLU"):
        bundle_from_float(Functional(), quant_cfg(), calib_x=x, test_x=x, test_y=torch.zeros(8, dtype=torch.long))


class BrevitasNet(nn.Module):
    """A hand-written Brevitas model; ``weight_quant`` and names are the test's knobs."""

    def __init__(self, weight_quant=WeightQuant, names=("fc1", "fc2")):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=input_quant(1.0, 8), return_quant_tensor=True)
        setattr(self, names[0], qnn.QuantLinear(12, 16, bias=True, weight_quant=weight_quant, bias_quant=BiasQuant,
                                                weight_bit_width=4))
        self.relu = qnn.QuantReLU(act_quant=ReluQuant, bit_width=4, return_quant_tensor=True)
        setattr(self, names[1], qnn.QuantLinear(16, 3, bias=True, weight_quant=weight_quant, bias_quant=BiasQuant,
                                                weight_bit_width=4))
        self.names = names

    def forward(self, x):
        a, b = (getattr(self, n) for n in self.names)
        return b(self.relu(a(self.inp(x))))


class FloatNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.relu, self.fc2 = nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 3)

    def forward(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def pair(weight_quant=WeightQuant, names=("fc1", "fc2"), calibrated=True):
    torch.manual_seed(0)
    f = FloatNet().eval()
    q = BrevitasNet(weight_quant, names)
    q.load_state_dict({k: v for k, v in f.state_dict().items()}, strict=False)
    x, _ = data()
    if calibrated:
        calibrate(q, x)
    return f, q.eval(), x


def test_stats_based_weight_scales_are_refused_with_the_fix():
    # Brevitas's stock per-channel quantizer recomputes its scale from the weights: the
    # integers PTQ wrote would silently change (12 bits reported, 14 held, accuracy 0.97 -> 0.42)
    f, q, x = pair(Int8WeightPerChannelFloat)
    with pytest.raises(ValueError, match=r"layer 'fc1': its weight quantizer recomputes the scale.*"
                                         r"axe_deploy.quant.quantizers.WeightQuant"):
        quantize_model(f, q, x, quant_cfg(algorithm="gpfq", accumulator_bits=12), progress=False)


@pytest.mark.parametrize("algorithm", ["rtn", "gpfq"])
def test_per_tensor_weight_scales_are_supported(algorithm):
    # used to fail with "statistics are for K=12 inputs, the weight has K=192"
    f, q, x = pair(WeightQuantPerTensor)
    infos = quantize_model(f, q, x, quant_cfg(algorithm=algorithm, accumulator_bits=11), progress=False)
    for name in ("fc1", "fc2"):
        layer = q.get_submodule(name)
        assert layer.quant_weight().scale.numel() == 1
        ints = layer.quant_weight().int().numpy().astype(np.int64)
        lo, hi = ((np.where(ints > 0, ints, 0) * m + np.where(ints < 0, ints, 0) * n).sum(1)
                  for m, n in ((0, 255 if name == "fc1" else 15), (255 if name == "fc1" else 15, 0)))
        assert -(2 ** 10) <= lo.min() and hi.max() <= 2 ** 10 - 1  # fits 11 bits, from the held integers
        assert infos[name].exact_bits <= 11


def test_calibration_is_required():
    f, q, x = pair(calibrated=False)
    with pytest.raises(ValueError, match=r"not calibrated.*calibrate\(quant_model, calib_x\)"):
        quantize_model(f, q, x, quant_cfg(), progress=False)


@pytest.mark.parametrize("cfg, fragment", [
    (dict(accumulator_bit=12), r"unknown key\(s\) \['accumulator_bit'\]"),
    (dict(layers={"fc1": {"accumulator_bit": 12}}), r"layers\['fc1'\]: unknown key\(s\) \['accumulator_bit'\]"),
    (dict(layers={"conv*": {"accumulator_bits": 12}}), r'quant.layers."conv\*" matches no layer; layers: fc1, fc2'),
])
def test_quant_config_mistakes_are_refused(cfg, fragment):
    f, q, x = pair()
    with pytest.raises(ValueError, match=fragment):
        quantize_model(f, q, x, dict(quant_cfg(), **cfg), progress=False)


def test_module_name_mismatch_names_both():
    f, q, x = pair(names=("dense1", "fc2"))
    with pytest.raises(ValueError, match=r"quantized layer 'dense1' \(QuantLinear, weight \(16, 12\)\) has no float "
                                         r"twin.*found none.*float layers: fc1, fc2"):
        quantize_model(f, q, x, quant_cfg(), progress=False)


def test_integers_are_read_back_after_writing():
    f, q, x = pair()
    layer = q.get_submodule("fc1")
    held = layer.quant_weight().int().to(torch.int64)
    check_written(layer, held, "fc1")  # equal: passes
    wrong = held.clone()
    wrong[0, 0] += 1
    with pytest.raises(ValueError, match=r"layer 'fc1': after writing the PTQ result its quantizer holds other "
                                         r"integers \(1 of 192 differ\)"):
        check_written(layer, wrong, "fc1")


USER_MODULE = '''
import torch
from torch import nn
from axe_deploy.quant.convert import bundle_from_float

def build(quant):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
    x = torch.rand(40, 6)
    y = torch.randint(0, 3, (40,))
    return bundle_from_float(model, quant, calib_x=x, test_x=x, test_y=y, name=f"user-{quant['weight_bits']}")

def not_a_bundle(quant):
    return 42
'''


def test_module_flow_key_imports_from_the_flow_folder(tmp_path):
    (tmp_path / "user_net_i11.py").write_text(USER_MODULE)
    flow = tmp_path / "flow.toml"
    flow.write_text('[model]\nmodule = "user_net_i11:build"\n[quant]\nweight_bits = 3\n')
    cfg = config.load(flow)
    check_flow(cfg, str(flow))
    bundle = build_user_bundle(cfg.model.module, cfg.quant.as_dict(), tmp_path)
    assert isinstance(bundle, ModelBundle) and bundle.name == "user-3"
    with pytest.raises(ValueError, match=r"returned int, not an axe_deploy.ModelBundle"):
        build_user_bundle("user_net_i11:not_a_bundle", cfg.quant.as_dict(), tmp_path)
    with pytest.raises(ValueError, match=r"'user_net_i11' has no function 'missing'"):
        check_flow(config.load(flow, ["model.module=user_net_i11:missing"]), str(flow))
    with pytest.raises(ValueError, match=r"cannot import 'no_such_module_i11'.*looked for in"):
        check_flow(config.load(flow, ["model.module=no_such_module_i11:build"]), str(flow))


@pytest.mark.parametrize("text, fragment", [
    ('[model]\nmodule = "just_a_module"\n', r'must read "package.module:function"'),
    ('[model]\nname = "digits-mlp"\nmodule = "a:b"\n', r"'model.name' and 'model.module' both given"),
    ('[model]\nonnx = "m.onnx"\n', r"'model.onnx' needs 'data.inputs'"),
    ('[data]\ninputs = "x.npy"\n', r"'\[data\]' is for a 'model.onnx' flow"),
])
def test_model_source_mistakes_name_the_key(tmp_path, text, fragment):
    flow = tmp_path / "flow.toml"
    flow.write_text(text)
    with pytest.raises(config.FlowConfigError, match=fragment):
        config.load(flow)
