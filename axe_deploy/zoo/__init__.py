"""Model zoo: a name maps to a builder returning float model, Brevitas model and data.

A builder takes the bit widths of the flow (``weight_bits``, ``act_bits``,
``input_bits``), a ``seed`` and ``retrain``; it trains (or loads from the cache) the
float model deterministically and returns a :class:`ModelBundle`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

_REGISTRY: dict[str, Callable[..., "ModelBundle"]] = {}


@dataclass
class ModelBundle:
    """What the flow needs from a model: both networks and the data to calibrate and test.

    ``quant_model`` has the float model's weights loaded and its quantizers not yet
    calibrated. ``metric`` is how the flow scores outputs (here: accuracy of argmax).
    """

    name: str
    float_model: torch.nn.Module
    quant_model: torch.nn.Module
    calib_x: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    info: dict = field(default_factory=dict)


def register(name: str):
    def wrap(fn):
        _REGISTRY[name] = fn
        return fn
    return wrap


def names() -> list[str]:
    return sorted(_REGISTRY)


def build(name: str, **kwargs) -> ModelBundle:
    if name not in _REGISTRY:
        raise KeyError(f"unknown model '{name}'; known models: {', '.join(names())}")
    return _REGISTRY[name](**kwargs)


def cache_dir() -> Path:
    """Where trained float models are kept: $AXE_DEPLOY_CACHE, else ~/.cache/axe-deploy."""
    root = os.environ.get("AXE_DEPLOY_CACHE") or Path.home() / ".cache" / "axe-deploy"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


from axe_deploy.zoo import digits  # noqa: E402,F401  (registers its models)
