"""Float weights shipped with the package, so that every machine starts from the same model.

Training in float32 gives different weights on different CPUs (the kernels torch picks,
MKL's code path, the thread count), so the zoo's small float models are trained once, by
``python -m axe_deploy.zoo.train_weights``, and their state dicts ship under
``axe_deploy/zoo/weights/``. ``MANIFEST.json`` there names, for each file, the model, the
seed, the command and settings that made it, and the file's SHA-256.

Contract: :func:`load` fills a model from the shipped file of ``(model, seed, tag)`` when
one is listed and returns True; it returns False when none is listed (another seed, another
architecture: the caller trains, as with ``retrain``). A listed file that is missing, whose
hash differs from the manifest's or whose tensors do not fit the model raises
:class:`ShippedWeightsError`: the installation is broken, and training instead would
silently give another machine's figures.
"""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import torch

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
MANIFEST = WEIGHTS_DIR / "MANIFEST.json"


class ShippedWeightsError(RuntimeError):
    """A shipped weights file is missing, altered or does not fit its model."""


def file_name(model: str, seed: int, tag: str = "") -> str:
    """``<model>[-<tag>]-seed<seed>.pt``: ``tag`` names the architecture and training budget
    where the builder takes one (shakespeare-char's ``CharConfig``)."""
    return f"{model}{'-' + tag if tag else ''}-seed{seed}.pt"


def manifest() -> dict[str, dict]:
    """File name → {model, seed, tag, sha256, bytes, command, settings, torch, ...}."""
    return json.loads(MANIFEST.read_text()) if MANIFEST.is_file() else {}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def load(model_name: str, seed: int, model: torch.nn.Module, tag: str = "") -> bool:
    """Load the shipped state dict of ``(model_name, seed, tag)`` into ``model`` (see the module
    docstring for when it returns False and when it raises)."""
    name = file_name(model_name, seed, tag)
    entry = manifest().get(name)
    if entry is None:
        return False
    path = WEIGHTS_DIR / name
    if not path.is_file():
        raise ShippedWeightsError(f"shipped weights {path} are missing; reinstall axe-deploy")
    data = path.read_bytes()
    if sha256(data) != entry["sha256"]:
        raise ShippedWeightsError(
            f"shipped weights {path} do not match their SHA-256 in {MANIFEST.name}; reinstall axe-deploy "
            f"or make them again with `{entry['command']}`")
    state = torch.load(io.BytesIO(data), weights_only=True)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if found != expected:
        raise ShippedWeightsError(f"shipped weights {path} do not fit model {model_name}: {sorted(set(found) ^ set(expected)) or 'shapes differ'}")
    model.load_state_dict(state)
    return True
