"""The Brevitas driver under AXE: refitted scales written into the quantizers (the layer
then holds exactly the integers the core returned, within P), bias correction of the
centred layers, ``quant.options`` reaching the core, and errors on bad option use."""

from dataclasses import replace

import brevitas.nn as qnn
import pytest
import torch

from axe_deploy.core import accumulator

from axe_deploy.flow import config
from axe_deploy.quant import driver
from axe_deploy.quant.driver import (LayerPlan, calibrate, capture_input, core_options, quant_layer_names,
                                   quantize_model, scale_parameter)
from axe_deploy.zoo.digits import FloatMLP, QuantMLP

torch.set_num_threads(1)
SIZES = (24, 20, 16, 5)


def models(seed=0):
    torch.manual_seed(seed)
    float_model = FloatMLP(SIZES).eval()
    quant_model = QuantMLP(SIZES, weight_bits=4, act_bits=4, input_bits=8)
    quant_model.load_state_dict(float_model.state_dict(), strict=False)
    x = torch.rand(300, SIZES[0])
    calibrate(quant_model, x)
    return float_model, quant_model.eval(), x


def quant_cfg(**kw):
    return dict(config.defaults()["quant"], **kw)


def outputs(model, name, x):
    """(output of layer ``name``, scale of its input when that is a QuantTensor)."""
    seen = []
    handle = model.get_submodule(name).register_forward_hook(lambda m, a, out: seen.append((a[0], out)))
    with torch.no_grad():
        model(x)
    handle.remove()
    inp, out = seen[0]
    return getattr(out, "value", out), getattr(inp, "scale", None)


@pytest.mark.parametrize("algorithm", ["gpfq", "optq", "spfq"])
def test_rescaled_layers_hold_the_core_integers_within_p(algorithm):
    f, q, x = models()
    P = 12
    names = quant_layer_names(q)
    before = {n: q.get_submodule(n).quant_weight().scale.detach().flatten().clone() for n in names}
    infos = quantize_model(f, q, x, quant_cfg(algorithm=algorithm, accumulator_bits=P), progress=False)
    rescaled = 0
    for n in names:
        layer, info = q.get_submodule(n), infos[n]
        qw = layer.quant_weight()
        torch.testing.assert_close(qw.scale.detach().flatten().double(), info.scale, rtol=1e-6, atol=0)
        torch.testing.assert_close(qw.value, layer.weight, rtol=0, atol=0)  # s·q is on the grid
        ints = qw.int().reshape(len(info.scale), -1).numpy()
        assert (abs(ints).sum(axis=1) == info.l1).all()
        _, bits, signed = capture_input(q, n, x[:2])
        exact = accumulator.analyze(ints, input_bits=bits, input_signed=signed, weight_bits=4)
        assert exact.exact_bits <= P and info.exact_bits == exact.exact_bits
        rescaled += not torch.equal(qw.scale.detach().flatten(), before[n])
        assert info.centred == (info.budget_use is not None and info.accumulator_bits < accumulator.datatype_bound_bits(
            ints.shape[1], bits, 4, signed))
        if info.centred:  # bias correction: no mean output error left but the int32 bias grid
            (out_f, _), (out_q, in_scale) = outputs(f, n, x), outputs(q, n, x)
            step = in_scale * qw.scale.detach().flatten()  # the bias grid (Int32Bias)
            assert torch.all((out_f - out_q).mean(dim=0).abs() <= step + 1e-6)
    assert rescaled >= 1


def test_options_reach_the_core_and_keep_the_paper_settings():
    f, q, x = models(1)
    names = quant_layer_names(q)
    scales = {n: q.get_submodule(n).quant_weight().scale.detach().clone() for n in names}
    biases = {n: q.get_submodule(n).bias.detach().clone() for n in names}
    paper = {"rescale": False, "centre": False, "soft_scale": 1.0, "passes": 0}
    infos = quantize_model(f, q, x, quant_cfg(algorithm="gpfq", accumulator_bits=11, options=paper),
                           progress=False)
    for n in names:
        assert infos[n].options["soft_scale"] == 1.0 and infos[n].options["passes"] == 0
        assert not infos[n].centred
        assert torch.equal(q.get_submodule(n).quant_weight().scale.detach(), scales[n])
        assert torch.equal(q.get_submodule(n).bias.detach(), biases[n])


def test_option_errors_name_the_layer():
    plan = LayerPlan("fc9", "gpfq", 4, 12, None, False)
    with pytest.raises(ValueError, match="fc9.*centre needs a bias"):
        core_options(plan, {"options": {"centre": True}}, rescale=True, has_bias=False)
    assert core_options(plan, {}, rescale=False, has_bias=False) == {"rescale": False, "centre": False}
    assert core_options(replace(plan, algorithm="rtn"), {}, rescale=True, has_bias=True) == {}
    # quant.options is shared: each layer takes what its algorithm has, a typo stops
    assert core_options(replace(plan, algorithm="rtn"), {"options": {"act_order": True, "soft_scale": 0.5}},
                        rescale=True, has_bias=True) == {"soft_scale": 0.5}
    f, q, x = models(2)
    with pytest.raises(ValueError, match=r"quant.options: unknown option\(s\) \['act_ordr'\]"):
        quantize_model(f, q, x, quant_cfg(algorithm="gpfq", accumulator_bits=12, options={"act_ordr": True}),
                       progress=False)


def test_scale_parameter_only_for_per_channel_parameter_scales():
    _, q, _ = models()
    assert scale_parameter(q.fc1) is q.fc1.weight_quant.tensor_quant.scaling_impl.value
    stats_scaled = qnn.QuantLinear(8, 4, bias=True, weight_bit_width=4)  # per-tensor, from the weights
    assert scale_parameter(stats_scaled) is None


def test_driver_settings_are_the_flow_schema():
    """The driver checks a direct caller's [quant] keys itself (it does not import the flow's
    schema); the two lists must name the same keys."""
    assert set(driver.SETTINGS) | set(driver.MODEL_SETTINGS) == set(config.SCHEMA["quant"])
    assert set(driver.LAYER_SETTINGS) == set(config.LAYER_KEYS)


def test_ptq_and_driver_import_no_flow():
    """ptq/ is the pure core (no Brevitas, no flow, no driver); the driver takes plain dicts."""
    import ast
    import pathlib

    root = pathlib.Path(driver.__file__).parents[1]

    def imports(path):
        tree = ast.parse(path.read_text())
        return {n.module if isinstance(n, ast.ImportFrom) else a.name
                for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in (n.names if isinstance(n, ast.Import) else [None])}

    for path in (root / "ptq").glob("*.py"):
        bad = {m for m in imports(path) if m and m.split(".")[0] == "brevitas"
               or m and m.startswith(("axe_deploy.flow", "axe_deploy.quant"))}
        assert not bad, (path.name, bad)
    assert not {m for m in imports(root / "quant" / "driver.py") if m and m.startswith("axe_deploy.flow")}


def test_flow_config_reads_the_algorithms_without_torch():
    """flow.config takes ptq.ALGORITHMS (the one list) without importing torch: the CLI checks
    flow files and answers --help before it loads torch."""
    import os
    import pathlib
    import subprocess
    import sys

    root = str(pathlib.Path(driver.__file__).parents[2])  # this checkout, not an installed copy
    code = ("import sys, axe_deploy.flow.config as c, axe_deploy.ptq as p; "
            "assert c.ALGORITHMS is p.ALGORITHMS; assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], check=True,
                   env=dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])))
