"""Model zoo: a name maps to a builder returning float model, Brevitas model and data.

A builder takes the bit widths of the flow (``weight_bits``, ``act_bits``,
``input_bits``), a ``seed`` and ``retrain``; it trains (or loads from the cache) the
float model deterministically and returns a :class:`ModelBundle`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

_REGISTRY: dict[str, Callable[..., "ModelBundle"]] = {}


@dataclass
class ModelBundle:
    """What the flow needs from a model: both networks and the data to calibrate and test.

    ``quant_model`` has the float model's weights loaded and its quantizers not yet
    calibrated. ``evaluate(model)`` scores either model on the test data; by default the
    accuracy of the argmax of ``model(test_x)`` against ``test_y`` (a language model
    passes its own, e.g. perplexity with ``higher_is_better=False``).
    ``quantize(quant_cfg)`` calibrates and runs the project's PTQ on ``quant_model`` (the
    whole-model driver unless the builder passes a faster ``quantize_fn`` with the same
    contract);
    ``brevitas_axe(method, P, T)`` runs Brevitas's own A2GPFQ/A2GPTQ on the calibrated
    ``quant_model`` (the whole model at once unless the builder passes ``brevitas_fn``).
    ``device`` (the flow's resolved ``quant.device``): where ``evaluate`` runs the model,
    which moves there for the evaluation and back to the CPU after it.
    """

    name: str
    float_model: torch.nn.Module
    quant_model: torch.nn.Module
    calib_x: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    info: dict = field(default_factory=dict)
    metric_name: str = "accuracy"
    higher_is_better: bool = True
    evaluate_fn: Callable[[torch.nn.Module], float] | None = None
    quantize_fn: Callable[..., dict] | None = None  # (model, quant_cfg, *, seed, progress)
    brevitas_fn: Callable[[str, int, int], None] | None = None
    device: str = "cpu"

    @torch.no_grad()
    def evaluate(self, model: torch.nn.Module) -> float:
        if torch.device(self.device).type == "cpu":
            return self._evaluate(model, torch.device("cpu"))
        try:
            return self._evaluate(model.to(self.device), torch.device(self.device))
        finally:
            model.to("cpu")

    def _evaluate(self, model: torch.nn.Module, device: torch.device) -> float:
        if self.evaluate_fn is not None:  # follows the model's device
            return float(self.evaluate_fn(model))
        hits = model(self.test_x.to(device)).argmax(1) == self.test_y.to(device)
        return float(hits.float().mean())

    def quantize(self, quant_cfg: dict, *, model: torch.nn.Module | None = None, seed: int = 0,
                 progress: bool = True) -> dict:
        """Calibrate and quantize ``quant_model`` (or ``model``, a copy of it) in place with the
        flow's [quant] table: {layer name: QuantInfo, or None for a skipped layer}. The
        whole-model driver calibrates the activations first; a block-wise ``quantize_fn``
        calibrates each block on the partly quantized stream itself (calibrating the whole
        model first would blend the two streams' statistics into the scales)."""
        model = self.quant_model if model is None else model
        if self.quantize_fn is not None:
            return self.quantize_fn(model, quant_cfg, seed=seed, progress=progress)
        from axe_deploy.ptq.driver import calibrate, quantize_model
        calibrate(model, self.calib_x)
        return quantize_model(self.float_model, model, self.calib_x, quant_cfg, seed=seed, progress=progress)

    def brevitas_axe(self, method: str, P: int, T: int, batch_size: int = 256) -> None:
        """Brevitas's ``a2gpfq`` / ``a2gptq`` on the calibrated ``quant_model``, in place."""
        if self.brevitas_fn is not None:
            return self.brevitas_fn(method, P, T)
        from axe_deploy.ptq.driver import brevitas_axe
        batches = [((self.calib_x[i:i + batch_size],), {}) for i in range(0, len(self.calib_x), batch_size)]
        brevitas_axe(self.quant_model, batches, method, P, T)


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


from axe_deploy.zoo import digits  # noqa: E402,F401  (registers its models)
from axe_deploy.zoo import digits_cnn  # noqa: E402,F401  (registers its models)
from axe_deploy.zoo import shakespeare, smollm2  # noqa: E402,F401  (register the language models)
