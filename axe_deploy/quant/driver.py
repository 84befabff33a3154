"""Brevitas driver: quantize a whole model layer by layer with the PTQ core.

For each QuantLinear / QuantConv2d in order, the driver captures the layer's input X in
the float model and X̃ in the quantized model (whose earlier layers are already done),
unfolds conv inputs into [n·OH·OW, C·kh·kw] patches (optionally a sampled subset), calls :func:`quantize_from_stats` with the
layer's frozen Brevitas scales, and writes ``scale·q`` back so that the layer's
quantizer reproduces q exactly. Per-layer settings come from glob patterns. A grouped or
depthwise conv is quantized group by group: each group's statistics come from the patches
of its own C/g input channels (K = C/g·kh·kw), with its own AXE budget per output channel.

The statistics, and so the algorithms' sweeps, are float64, and bias correction averages
in float64; :func:`calibrate_and_quantize` also runs the forward passes (calibration, the
inputs the statistics see) in float64. In float32 the rounding depends on the CPU's
kernels (MKL's code path, ATen's vector width, the thread count) and moved integer
weights and activation integers between machines; in float64 those differences are
~1e-16 relative, far below the margins that decide a rounding to the integer grid (a
value that close to a rounding boundary could still flip; ``benchmarks/determinism.py``
runs a flow under four such settings to see).

Under AXE the driver lets the core rescale each row to the budget and writes the
refitted per-channel scales into the quantizer's scale parameter (the integers, and so
the accumulator guarantee, do not depend on them); layers with a bias get the centred
objective and then bias correction (see docs/ptq.md).

The [quant] settings come as a plain dict: a flow's [quant] table, which the flow has
checked against its schema and filled with defaults (``axe_deploy.flow.config``); a direct
caller may give only what it needs. The driver refuses what it alone can see wrong: a
key it does not know, a per-layer glob that matches no layer of the model.
"""

from __future__ import annotations

import dataclasses
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import chain

import brevitas.nn as qnn
import numpy as np
import torch
from brevitas.graph.calibrate import calibration_mode
from tqdm.auto import tqdm

from axe_deploy.core import accumulator
from axe_deploy.core.layer_glob import layer_values, match_layer
from axe_deploy.ptq.device import resolve_device
from axe_deploy.ptq.layer import QuantInfo, quantize_from_stats
from axe_deploy.ptq.options import OPTIONS
from axe_deploy.ptq.stats import LayerStats

QUANT_LAYERS = (qnn.QuantLinear, qnn.QuantConv2d)
# The [quant] keys the driver reads, those it passes over (the model builders' bits and
# calibration set size) and the keys of a per-layer table [quant.layers."<glob>"].
SETTINGS = ("algorithm", "weight_bits", "accumulator_bits", "tile_size", "layers", "options", "bias_correction",
            "calibration_patches", "device")
MODEL_SETTINGS = ("act_bits", "input_bits", "calibration_samples")
LAYER_SETTINGS = ("algorithm", "weight_bits", "accumulator_bits", "tile_size", "skip")
CROSS = ("gpfq", "spfq")  # the algorithms whose objective needs the float model's inputs too (G = X̃ᵀX)


@torch.no_grad()
def calibrate(model: torch.nn.Module, x: torch.Tensor, batch_size: int = 256) -> None:
    """Collect activation-quantizer statistics on ``x``, then run one pass with weight
    quantization on so that the (parameter) weight scales are initialised and frozen."""
    model.eval()
    with calibration_mode(model):
        for i in range(0, len(x), batch_size):
            model(x[i:i + batch_size])
    model(x[:1])


@dataclass(frozen=True)
class LayerPlan:
    """What the flow asks for one layer, after applying ``quant.layers`` globs."""

    name: str
    algorithm: str
    weight_bits: int
    accumulator_bits: int | None
    tile_size: int | None
    skip: bool


def quant_layer_names(model: torch.nn.Module) -> list[str]:
    return [n for n, m in model.named_modules() if isinstance(m, QUANT_LAYERS)]


def check_settings(quant_cfg: dict) -> None:
    """Refuse keys the driver does not know, at the top or in a per-layer table (a typo would
    otherwise run unconstrained)."""
    allowed = SETTINGS + MODEL_SETTINGS
    unknown = sorted(set(quant_cfg) - set(allowed))
    if unknown:
        raise ValueError(f"quant config: unknown key(s) {unknown}; allowed: {', '.join(sorted(allowed))}")
    for pattern, settings in (quant_cfg.get("layers") or {}).items():
        bad = sorted(set(settings) - set(LAYER_SETTINGS))
        if bad:
            raise ValueError(f"quant config: layers[{pattern!r}]: unknown key(s) {bad}; "
                             f"allowed: {', '.join(sorted(LAYER_SETTINGS))}")


def plan_layers(model: torch.nn.Module, quant_cfg: dict) -> list[LayerPlan]:
    """One plan per quantized layer from the [quant] settings (:func:`check_settings`); a
    per-layer glob that matches no layer is refused with the layers' names."""
    check_settings(quant_cfg)
    overrides = quant_cfg.get("layers", {})
    names = quant_layer_names(model)
    for pattern in overrides:
        if not any(match_layer({pattern: True}, n, False) for n in names):
            raise ValueError(f"quant.layers.\"{pattern}\" matches no layer; layers: {', '.join(names)}")

    def get(name, key):
        return match_layer(layer_values(quant_cfg, key), name, quant_cfg.get(key))

    plans = []
    for name in names:
        P, T = get(name, "accumulator_bits"), get(name, "tile_size")
        plans.append(LayerPlan(name, get(name, "algorithm"), get(name, "weight_bits"),
                               P or None, T or None, bool(get(name, "skip") or False)))
    return plans


def _seen(model: torch.nn.Module, name: str, x: torch.Tensor, batch_size: int, output: bool) -> list:
    """What submodule ``name`` receives (or returns, with ``output``) while ``model`` runs on ``x``."""
    module = model.get_submodule(name)
    seen = []
    handle = (module.register_forward_hook(lambda m, args, out: seen.append(out)) if output
              else module.register_forward_pre_hook(lambda m, args: seen.append(args[0])))
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(x[i:i + batch_size])
    finally:
        handle.remove()
    return seen


def split_input(x) -> tuple[torch.Tensor, int | None, bool | None]:
    """(values, bit width, signed) of a layer input: a QuantTensor's, or a plain tensor with
    None for bit width and signedness."""
    if hasattr(x, "bit_width"):
        return x.value, int(x.bit_width.item()), bool(x.signed)
    return x, None, None


def capture_input(model: torch.nn.Module, name: str, x: torch.Tensor, batch_size: int = 512):
    """The input of submodule ``name`` for ``x``: (values, bit width, signed) as :func:`split_input`."""
    seen = [split_input(t) for t in _seen(model, name, x, batch_size, output=False)]
    return (torch.cat([values for values, _, _ in seen]), *seen[0][1:])


@torch.no_grad()
def input_datatypes(model: torch.nn.Module, x: torch.Tensor) -> dict[str, tuple[int, bool]]:
    """(bit width, signed) of the QuantTensor input of every quantized layer, from one forward."""
    seen, handles = {}, []

    def record(name):
        def hook(module, args):
            seen.setdefault(name, (int(args[0].bit_width.item()), bool(args[0].signed)))
        return hook

    for name in quant_layer_names(model):
        handles.append(model.get_submodule(name).register_forward_pre_hook(record(name)))
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()
    return seen


def unfold(module: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Layer inputs as rows of the [n, K] matrix the core takes (conv: im2col patches,
    columns in the weight's [C, kh, kw] order)."""
    if isinstance(module, torch.nn.Conv2d) or isinstance(module, qnn.QuantConv2d):
        cols = torch.nn.functional.unfold(x, module.kernel_size, module.dilation, module.padding, module.stride)
        return cols.transpose(1, 2).reshape(-1, cols.shape[1])
    return x.reshape(-1, x.shape[-1])


def patch_rows(module: torch.nn.Module, n_rows: int, patches: int, seed: int):
    """The rows of the unfolded input that the statistics use, the same for X and X̃: for a
    conv layer and ``patches`` > 0 (flow key ``quant.calibration_patches``) a fixed random
    subset of that many im2col patches (large images give n·OH·OW patches), else all."""
    if not isinstance(module, torch.nn.Conv2d) or not patches or patches >= n_rows:
        return slice(None)
    gen = torch.Generator().manual_seed(seed)
    return torch.randperm(n_rows, generator=gen)[:patches].sort().values


@torch.no_grad()
def scale_parameter(module: torch.nn.Module) -> torch.nn.Parameter | None:
    """The parameter that holds ``module``'s per-channel weight scales (up to a constant
    factor) when scaling it scales them in proportion, as Brevitas's PARAMETER_FROM_STATS
    scaling in the zoo's models does; None otherwise (the scales then stay as they are)."""
    impl = getattr(getattr(module.weight_quant, "tensor_quant", None), "scaling_impl", None)
    value = getattr(impl, "value", None)
    scale = module.quant_weight().scale.detach().reshape(-1).clone()
    if not isinstance(value, torch.nn.Parameter) or value.numel() != scale.numel() or scale.numel() == 1:
        return None
    value.data *= 2  # a power of two: undone exactly below
    doubled = module.quant_weight().scale.detach().reshape(-1)
    value.data /= 2
    return value if torch.allclose(doubled, 2 * scale) else None


@torch.no_grad()
def write_weights(module: torch.nn.Module, q: torch.Tensor, scale: torch.Tensor, name: str = "layer") -> None:
    """Make ``module``'s quantized weight exactly scale[:, None]·q: the weight becomes s·q
    on the quantizer's scales s, after moving its scale parameter to ``scale`` where they
    differ (``info.scale`` of a rescaled layer)."""
    current = _row_scales(module)
    scale = scale.to(current.device, current.dtype)
    if not torch.equal(scale, current):
        param = scale_parameter(module)
        if param is None:
            raise ValueError(f"layer '{name}': option rescale needs per-channel weight scales held in a "
                             f"parameter (Brevitas PARAMETER_FROM_STATS scaling); set quant.options.rescale = false")
        param.data = (param.detach().reshape(-1) / current * scale).reshape(param.shape)
        current = _row_scales(module)
    q = q.to(current.device, current.dtype)
    module.weight.data = (current[:, None] * q).reshape(module.weight.shape).to(module.weight.dtype)


def core_options(plan: LayerPlan, quant_cfg: dict, *, rescale: bool, has_bias: bool) -> dict:
    """Options for the PTQ core: under AXE, GPFQ / OPTQ / SPFQ rescale the weights to the
    budget when the layer's scales can be refitted, and leave the mean output error to the
    bias when there is one (the driver then corrects it). ``quant.options`` overrides them;
    it is shared by all algorithms, so each layer takes the options its algorithm has."""
    given = quant_cfg.get("options") or {}
    known = set().union(*OPTIONS.values())
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"quant.options: unknown option(s) {unknown}; known: {', '.join(sorted(known))}")
    options = {}
    if plan.algorithm != "rtn":
        options = {"rescale": rescale, "centre": has_bias}
    options.update({k: v for k, v in given.items() if k in OPTIONS[plan.algorithm]})
    if options.get("centre") and not has_bias:
        raise ValueError(f"layer '{plan.name}': option centre needs a bias to absorb the mean output error")
    return options


@torch.no_grad()
def correct_bias(float_model: torch.nn.Module, quant_model: torch.nn.Module, name: str, x: torch.Tensor) -> None:
    """Shift the bias of layer ``name`` in ``quant_model`` by the mean, per output channel, of
    its output error on ``x`` (float model's output minus the quantized model's)."""
    module = quant_model.get_submodule(name)
    out_f, out_q = (torch.cat([getattr(t, "value", t) for t in _seen(m, name, x, 512, output=True)])
                    for m in (float_model, quant_model))
    channel = 1 if isinstance(module, torch.nn.Conv2d) else -1
    error = (out_f - out_q).movedim(channel, -1)
    module.bias.data += error.reshape(-1, error.shape[-1]).double().mean(dim=0).to(module.bias.dtype)


def check_calibrated(model: torch.nn.Module) -> None:
    """Refuse a model whose statistics-based activation scales were never calibrated: they
    would still hold their initial values and the PTQ would run on wrong activations."""
    from brevitas.core.scaling.standalone import ParameterFromRuntimeStatsScaling
    fresh = [n for n, m in model.named_modules() if isinstance(m, ParameterFromRuntimeStatsScaling) and m.counter == 0]
    if fresh:
        raise ValueError(f"the quantized model is not calibrated (activation quantizer '{fresh[0]}' has no "
                         f"statistics); call axe_deploy.quant.driver.calibrate(quant_model, calib_x) first "
                         f"(ModelBundle.quantize does)")


def float_twin(float_model: torch.nn.Module, quant_model: torch.nn.Module, name: str) -> torch.nn.Module:
    """The float module of the same name as quantized layer ``name``, or an error naming both."""
    try:
        module = float_model.get_submodule(name)
    except AttributeError:
        module = None
    quant = quant_model.get_submodule(name)
    if module is None or getattr(module, "weight", None) is None or module.weight.shape != quant.weight.shape:
        floats = [n for n, m in float_model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
        found = "none" if module is None else f"a {type(module).__name__} with weight shape " \
                                              f"{tuple(getattr(getattr(module, 'weight', None), 'shape', ()))}"
        raise ValueError(f"quantized layer '{name}' ({type(quant).__name__}, weight {tuple(quant.weight.shape)}) has "
                         f"no float twin of the same name in the float model (found {found}); float layers: "
                         f"{', '.join(floats) or 'none'}. Give both models the same module names")
    return module


@torch.no_grad()
def check_scales_kept(module: torch.nn.Module, name: str) -> None:
    """Refuse a weight quantizer that recomputes its scale from the weights (Brevitas STATS
    scaling, e.g. the stock Int8WeightPerChannelFloat): after PTQ writes s·q the scale would
    move and the layer would hold other integers than the ones whose width was proven."""
    before = module.quant_weight().scale.detach().clone()
    original = module.weight.data
    module.weight.data = original * 2
    try:
        after = module.quant_weight().scale.detach()
    finally:
        module.weight.data = original
    if not torch.equal(before, after):
        raise ValueError(f"layer '{name}': its weight quantizer recomputes the scale from the weights "
                         f"({type(module.weight_quant.tensor_quant.scaling_impl).__name__}), so the PTQ's "
                         f"integers would not survive; use axe_deploy.quant.quantizers.WeightQuant (or set "
                         f"scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS on your quantizer)")


@torch.no_grad()
def check_written(module: torch.nn.Module, q: torch.Tensor, name: str) -> None:
    """Read the integer weights back from the Brevitas layer; refuse if they are not ``q``."""
    held = module.quant_weight().int().reshape(q.shape).to(q.device, torch.int64)
    if not torch.equal(held, q.to(torch.int64)):
        n = int((held != q.to(torch.int64)).sum())
        raise ValueError(f"layer '{name}': after writing the PTQ result its quantizer holds other integers "
                         f"({n} of {q.numel()} differ), so the proven accumulator widths would not hold; "
                         f"the weight quantizer must keep its scales fixed (axe_deploy.quant.quantizers.WeightQuant)")


def quantize_module(plan: LayerPlan, mod_q: torch.nn.Module, mod_f: torch.nn.Module, x_f: torch.Tensor | None,
                    x_q: torch.Tensor, bits: int | None, signed: bool | None, options: dict, *, seed: int,
                    device: torch.device) -> QuantInfo:
    """Quantize one Brevitas layer ``mod_q`` with the PTQ core, in place: ``mod_f``'s float
    weight on ``mod_q``'s scales, statistics (on ``device``) from the layer's inputs in the
    float model ``x_f`` (GPFQ / SPFQ only, else None) and in the partly quantized one
    ``x_q`` (rows of K values; ``bits`` and ``signed`` its QuantTensor type, None when it is
    not one); the integers are written into ``mod_q`` and read back."""
    if bits is None:
        raise ValueError(f"layer '{plan.name}': its input is not a QuantTensor; put a quantizer "
                         f"with return_quant_tensor=True before it")
    built = int(mod_q.quant_weight().bit_width.item())
    if built != plan.weight_bits:
        raise ValueError(f"layer '{plan.name}': the model was built with {built}-bit weights, the plan asks "
                         f"for {plan.weight_bits}; build the model with the per-layer bits")
    scale = _row_scales(mod_q)
    weight = mod_f.weight.detach().reshape(len(scale), -1)
    parts = []
    for group, (rows, cols) in enumerate(group_slices(mod_q)):
        stats = None
        if plan.algorithm != "rtn":
            # float64: float32 sums round differently on different CPU kernels (module docstring)
            stats = LayerStats(weight.shape[1], cross=plan.algorithm in CROSS, dtype=torch.float64,
                               device=device).update(None if x_f is None else x_f[:, cols], x_q[:, cols])
        name = plan.name if rows == slice(None) else f"{plan.name} (group {group})"
        parts.append(quantize_from_stats(weight[rows], scale[rows], stats, weight_bits=plan.weight_bits,
                                         input_bits=bits, input_signed=signed, algorithm=plan.algorithm,
                                         accumulator_bits=plan.accumulator_bits, tile_size=plan.tile_size,
                                         seed=seed, name=name, device=device, **options))
    q, info = parts[0] if len(parts) == 1 else join_groups(parts)
    write_weights(mod_q, q, info.scale, plan.name)
    check_written(mod_q, q, plan.name)
    return info


def group_slices(module: torch.nn.Module) -> list[tuple[slice, slice]]:
    """(weight rows, unfolded input columns) of each group of a grouped Conv: group g's
    M/g output channels read only its C/g input channels, the columns
    g·(C/g)·kh·kw .. (g+1)·(C/g)·kh·kw − 1 of the [C·kh·kw] patches; one (all, all) otherwise."""
    groups = getattr(module, "groups", 1)
    if groups == 1:
        return [(slice(None), slice(None))]
    m, k = module.weight.shape[0] // groups, module.weight[0].numel()
    return [(slice(g * m, (g + 1) * m), slice(g * k, (g + 1) * k)) for g in range(groups)]


def join_groups(parts: list[tuple[torch.Tensor, QuantInfo]]) -> tuple[torch.Tensor, QuantInfo]:
    """One layer's (q, QuantInfo) from its groups' results, rows in group order; the exact
    accumulator analysis is redone on all rows (each row's range is its own)."""
    first = parts[0][1]
    q = torch.cat([p[0] for p in parts])
    qn = q.numpy()
    acc = accumulator.analyze(qn, input_bits=first.input_bits, input_signed=first.input_signed,
                              weight_bits=first.weight_bits, tile_size=first.tile_size or 0)
    budget = None if first.budget_use is None else np.concatenate([p[1].budget_use for p in parts])
    x_min, x_max = accumulator.input_bounds(first.input_bits, first.input_signed)
    lo, hi = accumulator.tile_ranges(qn, x_min, x_max, first.tile_size or qn.shape[1])
    tile_bits = np.array([accumulator.min_bits(a, b, acc.signed) for a, b in zip(lo.min(axis=0), hi.max(axis=0))])
    return q, dataclasses.replace(
        first, seconds=sum(p[1].seconds for p in parts), l1=np.concatenate([p[1].l1 for p in parts]),
        budget_use=budget, tile_bits=tile_bits,
        accumulator=acc, scale=torch.cat([p[1].scale for p in parts]),
        centred=any(p[1].centred for p in parts))


def _row_scales(module: torch.nn.Module) -> torch.Tensor:
    """Per-output-channel weight scales [M]; a per-tensor scale is repeated for every row."""
    scale = module.quant_weight().scale.detach().reshape(-1)
    return scale.expand(module.weight.shape[0]).clone() if scale.numel() == 1 else scale


@torch.no_grad()
def quantize_model(float_model: torch.nn.Module, quant_model: torch.nn.Module, calib_x: torch.Tensor,
                   quant_cfg: dict, *, seed: int = 0, progress: bool = True) -> dict[str, QuantInfo | None]:
    """Quantize every layer of ``quant_model`` (calibrated) in place; returns each layer's
    QuantInfo (None for skipped layers, which keep Brevitas's round-to-nearest).

    Refused before any layer changes: unknown [quant] keys, an uncalibrated model, a layer
    without a float twin of the same name, a weight quantizer that recomputes its scale
    from the weights. After each layer the integers are read back from the Brevitas layer.
    The statistics and the core run on ``quant.device``; the models stay where they are."""
    device = resolve_device(quant_cfg.get("device", "cpu"))
    check_calibrated(quant_model)
    plans = plan_layers(quant_model, quant_cfg)
    for plan in plans:
        float_twin(float_model, quant_model, plan.name)
        if not plan.skip:
            check_scales_kept(quant_model.get_submodule(plan.name), plan.name)
    results: dict[str, QuantInfo | None] = {}
    for plan in tqdm(plans, desc="PTQ", unit="layer", disable=not progress):
        if plan.skip:
            results[plan.name] = None
            continue
        mod_q, mod_f = quant_model.get_submodule(plan.name), float_twin(float_model, quant_model, plan.name)
        x_q, bits, signed = capture_input(quant_model, plan.name, calib_x)
        x_f = None
        if plan.algorithm != "rtn":  # the statistics' rows: im2col patches for a conv
            x_q = unfold(mod_q, x_q)
            rows = patch_rows(mod_q, len(x_q), quant_cfg.get("calibration_patches", 0), seed)
            x_q = x_q[rows]
            if plan.algorithm in CROSS:
                x_f = unfold(mod_f, capture_input(float_model, plan.name, calib_x)[0])[rows]
        options = core_options(plan, quant_cfg, rescale=scale_parameter(mod_q) is not None,
                               has_bias=mod_q.bias is not None)
        info = quantize_module(plan, mod_q, mod_f, x_f, x_q, bits, signed, options, seed=seed, device=device)
        if (quant_cfg.get("bias_correction") or info.centred) and mod_q.bias is not None:
            correct_bias(float_model, quant_model, plan.name, calib_x)
        results[plan.name] = info
    return results


@contextmanager
def in_float64(*models: torch.nn.Module):
    """Run the block with the float32 parameters and buffers of ``models`` in float64, then
    put them back in float32 (float32 -> float64 is exact; float64 -> float32 rounds each
    value once, the same on every machine). Models holding another float dtype are left
    as they are."""
    dtypes = {t.dtype for m in models for t in chain(m.parameters(), m.buffers()) if t.is_floating_point()}
    convert = dtypes == {torch.float32}
    for m in models if convert else ():
        m.double()
    try:
        yield convert
    finally:
        for m in models if convert else ():
            m.float()


@torch.no_grad()
def calibrate_and_quantize(float_model: torch.nn.Module, quant_model: torch.nn.Module, calib_x: torch.Tensor,
                           quant_cfg: dict, *, seed: int = 0, progress: bool = True) -> dict[str, QuantInfo | None]:
    """:func:`calibrate` then :func:`quantize_model`, both models in float64 (:func:`in_float64`)
    so that the activation scales and integers are the same on every CPU; the integers are
    read back once the models are float32 again."""
    with in_float64(float_model, quant_model) as converted:
        x = calib_x.double() if converted and calib_x.is_floating_point() else calib_x
        calibrate(quant_model, x)
        infos = quantize_model(float_model, quant_model, x, quant_cfg, seed=seed, progress=progress)
        held = {name: quant_model.get_submodule(name).quant_weight().int() for name, i in infos.items() if i}
    for name, q in held.items():
        check_written(quant_model.get_submodule(name), q, name)
    return infos


@torch.no_grad()
def brevitas_axe(model: torch.nn.Module, batches, method: str, P: int, T: int) -> None:
    """Brevitas 0.13.4's own ``a2gpfq`` / ``a2gptq`` (``brevitas_examples.common.axe``) on a
    calibrated ``model``, in place: max accumulator ``P`` bits per tile of ``T`` inputs (0: one
    stage). ``batches`` is a list of (args, kwargs) to call ``model`` with, every pass."""
    from brevitas_examples.common.axe import a2gpfq_mode, a2gptq_mode

    modes = {"a2gpfq": a2gpfq_mode, "a2gptq": a2gptq_mode}
    if method not in modes:
        raise ValueError(f"unknown Brevitas method {method!r}; use one of {', '.join(modes)}")
    with modes[method](model, use_quant_activations=True, max_accumulator_bit_width=P,
                       max_accumulator_tile_size=T or None) as gpxq:
        for _ in range(gpxq.num_layers):
            for args, kwargs in batches:
                gpxq.model(*args, **kwargs)
            gpxq.update()
