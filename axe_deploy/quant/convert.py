"""Your own PyTorch model as the Brevitas model the PTQ driver takes.

:func:`quant_model_from_float` walks a plain ``nn.Module`` and swaps, in place of each
module and under the same name, ``nn.Linear`` -> ``QuantLinear`` and ``nn.Conv2d`` ->
``QuantConv2d`` (grouped and depthwise too; per-channel :class:`~axe_deploy.quant.quantizers.WeightQuant`, 32-bit bias),
``nn.ReLU`` -> ``QuantReLU`` (unsigned ``act_bits``); max-pooling, flatten, dropout and
identity stay as they are, and the network's input goes through a constant-scale input
quantizer first. Module names are kept, so the driver pairs every quantized layer with its
float twin. Anything else stops with the module's name and what is supported.
:func:`bundle_from_float` adds the data and returns a :class:`~axe_deploy.quant.bundle.ModelBundle`;
for a model the swap cannot take it uses Brevitas graph mode (:mod:`axe_deploy.quant.graph_mode`).
"""

from __future__ import annotations

import copy

import brevitas.nn as qnn
import torch
from torch import nn

from axe_deploy.core.layer_glob import layer_values, match_layer
from axe_deploy.quant.bundle import ModelBundle
from axe_deploy.quant.quantizers import BiasQuant, ReluQuant, WeightQuant, input_quant

KEPT = (nn.MaxPool2d, nn.Flatten, nn.Dropout, nn.Identity)
CONTAINERS = (nn.Sequential, nn.ModuleList, nn.ModuleDict)
SUPPORTED = "Linear, Conv2d (also grouped), ReLU, MaxPool2d, Flatten, Dropout, Identity (in Sequential/ModuleList or your own modules)"
INPUT_QUANT = "axe_input_quant"


class UnsupportedModuleError(ValueError):
    """A module the conversion has no quantized twin for; the message names it."""


def _quant_twin(name: str, module: nn.Module, *, weight_bits: int, act_bits: int) -> nn.Module | None:
    if isinstance(module, nn.Linear):
        twin = qnn.QuantLinear(module.in_features, module.out_features, bias=module.bias is not None,
                               weight_quant=WeightQuant, bias_quant=BiasQuant, weight_bit_width=weight_bits,
                               return_quant_tensor=False)
    elif isinstance(module, nn.Conv2d):
        if module.padding_mode != "zeros":
            raise UnsupportedModuleError(f"module '{name}' (Conv2d): padding_mode='{module.padding_mode}'; only "
                                         f"zero padding is supported")
        twin = qnn.QuantConv2d(module.in_channels, module.out_channels, module.kernel_size, stride=module.stride,
                               padding=module.padding, dilation=module.dilation, groups=module.groups,
                               bias=module.bias is not None,
                               weight_quant=WeightQuant, bias_quant=BiasQuant, weight_bit_width=weight_bits,
                               return_quant_tensor=False)
    elif isinstance(module, nn.ReLU):
        return qnn.QuantReLU(act_quant=ReluQuant, bit_width=act_bits, return_quant_tensor=True)
    else:
        return None
    twin.load_state_dict(module.state_dict(), strict=False)
    return twin


def quant_model_from_float(float_model: nn.Module, *, weight_bits: int = 4, act_bits: int = 4, input_bits: int = 8,
                           input_range: tuple[float, float] = (0.0, 1.0),
                           layer_weight_bits: dict[str, int] | None = None) -> nn.Module:
    """A Brevitas copy of ``float_model`` with the same module names (see the module doc).

    ``input_range`` is the range of the real inputs: non-negative gives an unsigned input
    quantizer of scale hi/(2^N − 1), else a signed narrow one of scale max|·|/(2^(N−1) − 1).
    ``layer_weight_bits`` maps layer-name globs to weight bits (``quant.layers``)."""
    model = copy.deepcopy(float_model).eval()

    def walk(parent: nn.Module, prefix: str) -> None:
        for child_name, child in list(parent.named_children()):
            name = f"{prefix}{child_name}"
            bits = match_layer(layer_weight_bits or {}, name, weight_bits)
            twin = _quant_twin(name, child, weight_bits=bits, act_bits=act_bits)
            if twin is not None:
                setattr(parent, child_name, twin)
            elif isinstance(child, KEPT):
                continue
            elif isinstance(child, CONTAINERS) or (type(child).forward is not nn.Module.forward
                                                   and not _is_torch_module(child)):
                walk(child, f"{name}.")
            else:
                raise UnsupportedModuleError(f"module '{name}' ({type(child).__name__}) has no quantized "
                                             f"counterpart here; supported: {SUPPORTED}")

    walk(model, "")
    lo, hi = input_range
    if hi <= lo:
        raise ValueError(f"input_range {input_range}: the upper end must be above the lower")
    signed = lo < 0
    quantizer = input_quant(max(abs(lo), abs(hi)) if signed else hi, input_bits, signed=signed)
    model.add_module(INPUT_QUANT, qnn.QuantIdentity(act_quant=quantizer, return_quant_tensor=True))
    cls = type(float_model)

    def forward(self, x, *args, **kwargs):
        return cls.forward(self, getattr(self, INPUT_QUANT)(x), *args, **kwargs)

    # A subclass whose forward quantizes the input first: the user's forward runs unchanged
    # and every module keeps its name (a wrapper module would prefix them).
    model.__class__ = type(f"Quant{cls.__name__}", (cls,), {"forward": forward, "__module__": cls.__module__})
    return model


@torch.no_grad()
def check_forward(model: nn.Module, x: torch.Tensor) -> None:
    """Run ``model`` once on ``x`` and refuse a forward the conversion could not follow: a
    quantized layer whose input is not a QuantTensor (a functional ReLU, arithmetic after it)."""
    handles = [module.register_forward_pre_hook(_needs_quant_input(name)) for name, module in model.named_modules()
               if isinstance(module, (qnn.QuantLinear, qnn.QuantConv2d))]
    try:
        model(x)
    finally:
        for handle in handles:
            handle.remove()


def _is_torch_module(module: nn.Module) -> bool:
    """A layer from torch.nn itself (BatchNorm, Sigmoid, ...), as opposed to a user's container."""
    return type(module).__module__.startswith("torch.nn")


def _needs_quant_input(name: str):
    def hook(module, args):
        if not hasattr(args[0], "bit_width"):
            raise UnsupportedModuleError(
                f"layer '{name}' receives an unquantized tensor: between two layers the forward must go "
                f"through an nn.ReLU module (torch.relu / F.relu calls are not converted), and no "
                f"arithmetic may follow the ReLU; or pass graph_mode=True (Brevitas graph mode)")
    return hook


def _graph_mode(float_model: nn.Module, quant: dict, bits: dict, calib_x: torch.Tensor,
                plain_error: UnsupportedModuleError | None) -> tuple[nn.Module, nn.Module]:
    """(traced float twin, Brevitas model) from Brevitas graph mode, for a model the module
    swap cannot take (``plain_error`` says why) or when asked; errors name both reasons."""
    why = f"{plain_error}; " if plain_error else ""
    from axe_deploy.quant.graph_mode import GraphModeError, float_twin_matches, quantize_float_model
    per_layer = layer_values(quant, "weight_bits")
    if per_layer:
        raise UnsupportedModuleError(f"{why}Brevitas graph mode does not "
                                     f"support per-layer weight bits (quant.layers ... weight_bits {per_layer})")
    try:
        twin, quant_model = quantize_float_model(float_model, **bits)
        float_twin_matches(float_model, twin, calib_x[:64])
    except GraphModeError as e:
        raise UnsupportedModuleError(f"{why}Brevitas graph mode could not take it: {e}") from None
    check_forward(quant_model, calib_x[:2])
    return twin, quant_model


def bundle_from_float(float_model: nn.Module, quant: dict, *, calib_x: torch.Tensor, test_x: torch.Tensor,
                      test_y: torch.Tensor, input_range: tuple[float, float] = (0.0, 1.0),
                      name: str | None = None, graph_mode: bool | None = None, **bundle_kwargs) -> ModelBundle:
    """A :class:`ModelBundle` for a plain PyTorch ``float_model``: the Brevitas twin built with
    the bit widths of the flow's ``[quant]`` table ``quant`` (what a ``[model] module``
    function receives), calibration and test data; extra keyword arguments go to the bundle
    (e.g. ``evaluate_fn``, ``metric_name``).

    ``graph_mode`` None (default): a model with a module the swap cannot take (BatchNorm,
    average pools, ReLU6) goes through Brevitas graph mode,
    the others through the swap as before; True: graph mode always (also for residual ``+``
    and functional ops between plain modules); False: the swap only. Graph mode is
    :mod:`axe_deploy.quant.graph_mode`; the bundle's float model is then the traced twin
    (BatchNorm merged, same function, the quantized model's module names)."""
    float_model = float_model.eval()
    bits = dict(weight_bits=quant.get("weight_bits", 4), act_bits=quant.get("act_bits", 4),
                input_bits=quant.get("input_bits", 8), input_range=input_range)
    quant_model = None
    if not graph_mode:
        try:
            quant_model = quant_model_from_float(float_model, **bits, layer_weight_bits=layer_values(quant, "weight_bits"))
        except UnsupportedModuleError as plain_error:
            if graph_mode is False:
                raise
            float_model, quant_model = _graph_mode(float_model, quant, bits, calib_x, plain_error)
        else:
            check_forward(quant_model, calib_x[:2])  # now, not deep in the PTQ
    else:
        float_model, quant_model = _graph_mode(float_model, quant, bits, calib_x, None)
    return ModelBundle(name=name or type(float_model).__name__, float_model=float_model, quant_model=quant_model,
                       calib_x=calib_x, test_x=test_x, test_y=test_y, **bundle_kwargs)
