"""Block-wise PTQ driver for decoder LLMs: the Brevitas driver's contract, one block at a time.

:func:`axe_deploy.quant.driver.quantize_model` re-runs the whole model for every layer;
for a decoder LLM (SmolLM2-135M on a CPU) that is too slow. Here the model is walked one
decoder block at a time: the hidden states entering block i (float and partly quantized
stream) are kept, so each Linear costs a few forwards of one block instead of one of the
whole model. The per-layer work (plans, options, the core, writing and reading back the
integers) is the driver's.

A model for this driver has ``decoder_layers``: the blocks, run one after another, each
called as ``block(h, **kwargs)`` with the hidden states of the block before and the keyword
arguments (position embeddings, mask) that the first block receives; e.g.
``axe_deploy.zoo.smollm2.CausalLM``. The float and quantized models share module names.
"""

from __future__ import annotations

import torch
from brevitas.graph.calibrate import calibration_mode
from torch import nn
from tqdm.auto import tqdm

from axe_deploy.ptq import QuantInfo, resolve_device
from axe_deploy.quant.driver import CROSS, brevitas_axe, core_options, plan_layers, quantize_module, split_input


class _Stop(Exception):
    pass


def _first_block_inputs(model: nn.Module, ids: torch.Tensor):
    """Hidden states and keyword arguments (position embeddings, mask) that the first
    decoder block receives for ``ids``."""
    seen = {}

    def hook(_, args, kwargs):
        seen["h"], seen["kw"] = args[0], kwargs
        raise _Stop

    handle = model.decoder_layers[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        model(ids)
    except _Stop:
        pass
    finally:
        handle.remove()
    return seen["h"], seen["kw"]


def _forward_capturing(block: nn.Module, names: list[str], h: torch.Tensor, kw: dict):
    """``block(h, **kw)`` and the input each submodule in ``names`` received meanwhile."""
    seen, handles = {}, []
    for n in names:
        handles.append(block.get_submodule(n).register_forward_pre_hook(
            lambda m, args, n=n: seen.__setitem__(n, args[0])))
    try:
        out = block(h, **kw)
    finally:
        for handle in handles:
            handle.remove()
    return seen, out


def _quantize_hook(plan, float_linear: nn.Module, x_f: torch.Tensor | None, results: dict, quant_cfg: dict,
                   seed: int, device: torch.device):
    """Forward pre-hook that quantizes a QuantLinear from the input X̃ it is about to receive
    (``x_f``: its input X in the float model, for GPFQ / SPFQ)."""

    def hook(mod_q, args):
        x_q, bits, signed = split_input(args[0])
        options = core_options(plan, quant_cfg, rescale=False, has_bias=mod_q.bias is not None)
        results[plan.name] = quantize_module(plan, mod_q, float_linear, x_f, x_q, bits, signed, options,
                                             seed=seed, device=device)

    return hook


@torch.no_grad()
def quantize_blockwise(float_model: nn.Module, quant_model: nn.Module, calib_x: torch.Tensor, quant_cfg: dict,
                       *, seed: int = 0, progress: bool = True) -> dict[str, QuantInfo | None]:
    """Quantize every quantized layer of ``quant_model``'s decoder blocks, one block at a time.

    The contract of :func:`axe_deploy.quant.driver.quantize_model` (``quant_cfg`` is the [quant]
    settings, results are keyed by full module name, skipped layers keep round-to-nearest and
    map to None) at the cost of a few block forwards per layer instead of one model forward:
    for block i the input quantizers are calibrated on the partly quantized stream, then one
    forward quantizes each layer from a pre-hook as its input X̃ arrives (so it sees the
    layers before it in the same block already quantized); X for GPFQ / SPFQ is the float
    block's on the float stream. ``quant_model`` need not be calibrated beforehand.
    ``quant.options`` reach the core with ``rescale`` and ``centre`` off unless given (the
    scales stay as calibrated; Llama Linears have no bias to absorb a mean error).
    On a GPU (``quant.device``) both models and the data move there for the run and back to
    the CPU after it.
    """
    if quant_cfg.get("bias_correction"):
        raise ValueError("quantize_blockwise does not do bias correction (Llama Linears have no bias); "
                         "set quant.bias_correction = false")
    plans = {p.name: p for p in plan_layers(quant_model, quant_cfg)}
    device = resolve_device(quant_cfg.get("device", "cpu"))
    if device.type == "cpu":
        return _quantize_blockwise(float_model, quant_model, calib_x, quant_cfg, plans, device, seed, progress)
    try:
        float_model.to(device)
        quant_model.to(device)
        return _quantize_blockwise(float_model, quant_model, calib_x.to(device), quant_cfg, plans, device, seed,
                                   progress)
    finally:
        float_model.to("cpu")
        quant_model.to("cpu")


def _quantize_blockwise(float_model, quant_model, calib_x, quant_cfg, plans, device, seed, progress):
    h_f, kw = _first_block_inputs(float_model, calib_x)
    h_q = h_f
    results: dict[str, QuantInfo | None] = {}
    names = {module: name for name, module in quant_model.named_modules()}
    blocks = list(zip(float_model.decoder_layers, quant_model.decoder_layers))
    for block_f, block_q in tqdm(blocks, desc="PTQ", unit="decoder", disable=not progress):
        prefix = names[block_q] + "."
        local = {n.removeprefix(prefix): p for n, p in plans.items() if n.startswith(prefix)}
        with calibration_mode(block_q):
            block_q(h_q, **kw)
        cross = [n for n, p in local.items() if not p.skip and p.algorithm in CROSS]
        x_f, h_f_next = _forward_capturing(block_f, cross, h_f, kw)
        handles = []
        for n, plan in local.items():
            if plan.skip:
                results[plan.name] = None
                continue
            hook = _quantize_hook(plan, block_f.get_submodule(n), x_f.get(n), results, quant_cfg, seed, device)
            handles.append(block_q.get_submodule(n).register_forward_pre_hook(hook))
        try:
            h_q = block_q(h_q, **kw)
        finally:
            for handle in handles:
                handle.remove()
        h_f = h_f_next
    return results


@torch.no_grad()
def brevitas_blockwise(quant_model: nn.Module, calib_x: torch.Tensor, method: str, P: int, T: int,
                       progress: bool = True) -> None:
    """Brevitas's own A2GPFQ / A2GPTQ (:func:`axe_deploy.quant.driver.brevitas_axe`) one decoder
    block at a time on the quantized stream, in place; ``quant_model`` must be calibrated.

    Brevitas runs the whole model once per layer; block by block it runs one decoder block
    per layer instead, which is what makes it affordable for SmolLM2 on a CPU. Its GPFQ then
    takes the float reference inside the block (quantizers off) on the quantized stream
    entering it, where :func:`quantize_blockwise` uses the float stream.
    """
    h, kw = _first_block_inputs(quant_model, calib_x)
    for block in tqdm(quant_model.decoder_layers, desc=f"Brevitas {method}", unit="decoder", disable=not progress):
        brevitas_axe(block, [((h,), kw)], method, P, T)
        h = block(h, **kw)
