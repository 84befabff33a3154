"""Brevitas graph mode: any FX-traceable float model as the Brevitas model the PTQ driver takes.

:func:`quantize_float_model` traces ``float_model`` with
``brevitas.graph.quantize.preprocess_for_quantize`` (BatchNorm merged into the conv or
linear before it, functional ops standardized; ReLU6 kept), then runs the steps of
``brevitas.graph.quantize.quantize`` with this project's quantizers
(:mod:`axe_deploy.quant.quantizers`): the input gets the constant-scale input quantizer of
``input_bits`` over ``input_range`` (as the plain module swap does), Conv2d / Linear become
QuantConv2d / QuantLinear (per-channel :class:`WeightQuant`, 32-bit :class:`BiasQuant`,
grouped and depthwise convs included), ReLU / ReLU6 become unsigned ``act_bits`` QuantReLU,
and every other tensor that reaches a quantized layer, a residual ``+`` or the output is
re-quantized to ``act_bits`` (Brevitas aligns the two inputs of a residual to one scale,
so the sum stays one integer sum). Average pools stay float ops on quantized tensors.

It returns the *traced float model* too: it computes what ``float_model`` computes (in
eval mode), with BatchNorm merged, and has the same module names as the quantized model,
which is what the driver pairs layers by. Per-layer weight bits are not supported here
(Brevitas's layer map is per class).
"""

from __future__ import annotations

import copy

import brevitas.nn as qnn
import torch
from brevitas import config as brevitas_config
from brevitas.graph.quantize import (UNSIGNED_ACT_TUPLE, act_handler, add_output_quant_handler, align_input_quant,
                                     inp_placeholder_handler, layer_handler, preprocess_for_quantize,
                                     residual_handler)
from brevitas.graph.standardize import DisableLastReturnQuantTensor
from brevitas.quant import Int8ActPerTensorFloat, Uint8ActPerTensorFloatMaxInit
from torch import nn

from axe_deploy.quant.quantizers import BiasQuant, ReluQuant, WeightQuant, input_quant


class GraphModeError(ValueError):
    """A model Brevitas graph mode cannot take (not FX-traceable, ...); the message says why."""


def layer_maps(weight_bits: int, act_bits: int) -> tuple[dict, dict, dict]:
    """(compute layer map, activation map, re-quantization identity map) for Brevitas's handlers."""
    weights = {"weight_quant": WeightQuant, "bias_quant": BiasQuant, "weight_bit_width": weight_bits,
               "return_quant_tensor": True}
    compute = {nn.Conv2d: (qnn.QuantConv2d, weights), nn.Linear: (qnn.QuantLinear, weights),
               nn.AvgPool2d: None, nn.AdaptiveAvgPool2d: None}
    acts = {nn.ReLU: (qnn.QuantReLU, {"act_quant": ReluQuant, "bit_width": act_bits, "return_quant_tensor": True}),
            nn.ReLU6: (qnn.QuantReLU, {"act_quant": Uint8ActPerTensorFloatMaxInit, "max_val": 6.0,
                                       "bit_width": act_bits, "return_quant_tensor": True})}
    identity = {"signed": (qnn.QuantIdentity, {"act_quant": Int8ActPerTensorFloat, "bit_width": act_bits,
                                               "return_quant_tensor": True}),
                "unsigned": (qnn.QuantIdentity, {"act_quant": ReluQuant, "bit_width": act_bits,
                                                 "return_quant_tensor": True})}
    return compute, acts, identity


def trace_float_model(float_model: nn.Module) -> nn.Module:
    """The float model traced by Brevitas's preprocessing (a copy; BatchNorm merged, ReLU6 kept)."""
    try:
        return preprocess_for_quantize(copy.deepcopy(float_model).eval(), relu6_to_relu=False)
    except Exception as e:  # torch.fx reports untraceable Python control flow in many types
        raise GraphModeError(f"{type(float_model).__name__} is not FX-traceable for Brevitas graph mode "
                             f"({type(e).__name__}: {e}); remove data-dependent control flow from forward") from None


def quantize_float_model(float_model: nn.Module, *, weight_bits: int = 4, act_bits: int = 4, input_bits: int = 8,
                         input_range: tuple[float, float] = (0.0, 1.0)) -> tuple[nn.Module, nn.Module]:
    """(traced float twin, Brevitas model) of ``float_model`` (see the module doc); the
    Brevitas model is not calibrated yet (the driver's ``calibrate`` does it)."""
    lo, hi = input_range
    if hi <= lo:
        raise ValueError(f"input_range {input_range}: the upper end must be above the lower")
    twin = trace_float_model(float_model)
    compute, acts, identity = layer_maps(weight_bits, act_bits)
    signed = lo < 0
    inp = (qnn.QuantIdentity, {"act_quant": input_quant(max(abs(lo), abs(hi)) if signed else hi, input_bits,
                                                         signed=signed), "return_quant_tensor": True})
    model = copy.deepcopy(twin)
    missing_keys = brevitas_config.IGNORE_MISSING_KEYS
    brevitas_config.IGNORE_MISSING_KEYS = True  # the new quantizers' parameters are not in the float state
    try:
        model = inp_placeholder_handler(model, input_quantizer=inp)
        model = act_handler(model, layer_map=acts)
        model = add_output_quant_handler(model, identity, acts, UNSIGNED_ACT_TUPLE)
        model = residual_handler(model, identity, acts, UNSIGNED_ACT_TUPLE, align_input_quant)
        model = layer_handler(model, layer_map=compute, quant_identity_map=identity, quant_act_map=acts,
                              unsigned_act_tuple=UNSIGNED_ACT_TUPLE, requantize_output=True)
        model = DisableLastReturnQuantTensor().apply(model)
    finally:
        brevitas_config.IGNORE_MISSING_KEYS = missing_keys
    return twin.eval(), model.eval()


def float_twin_matches(float_model: nn.Module, twin: nn.Module, x: torch.Tensor, atol: float = 1e-4) -> float:
    """Max |difference| of the traced twin from ``float_model`` on ``x``; ValueError above ``atol``."""
    with torch.no_grad():
        diff = float((float_model.eval()(x) - twin(x)).abs().max())
    if diff > atol:
        raise GraphModeError(f"the traced float model differs from {type(float_model).__name__} by {diff:.3g} "
                             f"(> {atol:g}) on the calibration inputs; graph mode did not preserve the function")
    return diff
