"""The zoo's registry (a name -> a builder) and its cache of trained float models.

The model modules register themselves here; :mod:`axe_deploy.zoo` imports them all and
re-exports these functions, so that the models and the package import this module and
not each other.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable

import torch

from axe_deploy.quant.bundle import ModelBundle

_REGISTRY: dict[str, Callable[..., ModelBundle]] = {}


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


def load_cached(path: Path, model: torch.nn.Module) -> bool:
    """Load the state dict cached at ``path`` into ``model``; False (and a line on stderr
    saying that it will be retrained) when the file is empty, truncated or does not fit."""
    try:
        state = torch.load(path, weights_only=True)
        expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.items()} if isinstance(state, dict) else None
        if found != expected:  # checked first: a failed load_state_dict leaves the model half-loaded
            raise ValueError("its tensors do not match the model")
        model.load_state_dict(state)
        return True
    except Exception as e:  # EOFError (empty), zip/pickle errors (truncated), other models
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"[axe-deploy] cached model {path} is unreadable ({reason[:120]}); retraining it",
              file=sys.stderr)
        return False
