"""Brevitas driver: quantize a whole model layer by layer with the PTQ core.

For each QuantLinear / QuantConv2d in order, the driver captures the layer's input X in
the float model and X̃ in the quantized model (whose earlier layers are already done),
unfolds conv inputs into [n·OH·OW, C·kh·kw] patches (optionally a sampled subset), calls :func:`quantize_from_stats` with the
layer's frozen Brevitas scales, and writes ``scale·q`` back so that the layer's
quantizer reproduces q exactly. Per-layer settings come from glob patterns.
"""

from __future__ import annotations

from dataclasses import dataclass

import brevitas.nn as qnn
import torch
from brevitas.graph.calibrate import calibration_mode
from tqdm.auto import tqdm

from axe_deploy.config import layer_values, match_layer

from .layer import QuantInfo, quantize_from_stats
from .stats import LayerStats

QUANT_LAYERS = (qnn.QuantLinear, qnn.QuantConv2d)


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


def plan_layers(model: torch.nn.Module, quant_cfg: dict) -> list[LayerPlan]:
    """One plan per quantized layer; ``quant_cfg`` is the flow's [quant] table."""
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


def capture_input(model: torch.nn.Module, name: str, x: torch.Tensor, batch_size: int = 512):
    """The input of submodule ``name`` for ``x``: (values, bit width, signed) — bit width
    and signedness are None when the input is not a QuantTensor."""
    module = model.get_submodule(name)
    seen = []
    handle = module.register_forward_pre_hook(lambda m, args: seen.append(args[0]))
    try:
        with torch.no_grad():
            for i in range(0, len(x), batch_size):
                model(x[i:i + batch_size])
    finally:
        handle.remove()
    first = seen[0]
    if hasattr(first, "bit_width"):
        return (torch.cat([t.value for t in seen]), int(first.bit_width.item()), bool(first.signed))
    return torch.cat(seen), None, None


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
def quantize_model(float_model: torch.nn.Module, quant_model: torch.nn.Module, calib_x: torch.Tensor,
                   quant_cfg: dict, *, seed: int = 0, progress: bool = True) -> dict[str, QuantInfo | None]:
    """Quantize every layer of ``quant_model`` (calibrated) in place; returns each layer's
    QuantInfo (None for skipped layers, which keep Brevitas's round-to-nearest)."""
    plans = plan_layers(quant_model, quant_cfg)
    results: dict[str, QuantInfo | None] = {}
    for plan in tqdm(plans, desc="PTQ", unit="layer", disable=not progress):
        if plan.skip:
            results[plan.name] = None
            continue
        mod_q, mod_f = quant_model.get_submodule(plan.name), float_model.get_submodule(plan.name)
        x_q, bits, signed = capture_input(quant_model, plan.name, calib_x)
        if bits is None:
            raise ValueError(f"layer '{plan.name}': its input is not a QuantTensor; put a quantizer "
                             f"with return_quant_tensor=True before it")
        stats = None
        if plan.algorithm != "rtn":
            x_f, _, _ = capture_input(float_model, plan.name, calib_x)
            stats = LayerStats(mod_q.weight[0].numel(), cross=plan.algorithm != "optq")
            cols_f, cols_q = unfold(mod_f, x_f), unfold(mod_q, x_q)
            rows = patch_rows(mod_q, len(cols_q), quant_cfg.get("calibration_patches", 0), seed)
            stats.update(cols_f[rows], cols_q[rows])
        scale = mod_q.quant_weight().scale.detach().reshape(-1)
        weight = mod_f.weight.detach().reshape(len(scale), -1)
        if mod_q.quant_weight().bit_width.item() != plan.weight_bits:
            raise ValueError(f"layer '{plan.name}': the model was built with "
                             f"{int(mod_q.quant_weight().bit_width.item())}-bit weights, the plan asks "
                             f"for {plan.weight_bits}; build the model with the per-layer bits")
        q, info = quantize_from_stats(weight, scale, stats, weight_bits=plan.weight_bits, input_bits=bits,
                                      input_signed=signed, algorithm=plan.algorithm,
                                      accumulator_bits=plan.accumulator_bits, tile_size=plan.tile_size,
                                      seed=seed, name=plan.name)
        mod_q.weight.data = (scale[:, None] * q.to(scale.dtype)).reshape(mod_q.weight.shape).to(mod_q.weight.dtype)
        if quant_cfg.get("bias_correction") and mod_q.bias is not None:
            x_f, _, _ = capture_input(float_model, plan.name, calib_x)
            out_q = mod_q(x_q)
            error = mod_f(x_f) - getattr(out_q, "value", out_q)
            dims = [d for d in range(error.ndim) if d != 1] if error.ndim > 2 else [0]
            mod_q.bias.data += error.mean(dim=dims)
        results[plan.name] = info
    return results
