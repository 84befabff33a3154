"""The public model interface: what a flow needs from a network, built-in or your own.

A ``[model] module = "package.module:function"`` flow calls ``function(quant)`` with the
flow's ``[quant]`` table and takes the :class:`ModelBundle` it returns; the zoo's builders
return the same thing. :func:`axe_deploy.quant.convert.bundle_from_float` makes one from a
plain PyTorch model and data.
"""

from __future__ import annotations

import copy
import importlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

@dataclass
class ModelBundle:
    """What the flow needs from a model: both networks and the data to calibrate and test.

    Fields: ``name`` (for the report); ``float_model`` (the trained PyTorch network, the
    reference the PTQ follows); ``quant_model`` (the same network with Brevitas quantizers
    and module names equal to ``float_model``'s for every quantized layer, e.g. from
    :func:`axe_deploy.quant.convert.quant_model_from_float`); ``calib_x`` (calibration
    inputs: the activation statistics and the PTQ's layer statistics come from them);
    ``test_x`` / ``test_y`` (test inputs and targets); the metric (``metric_name``,
    ``higher_is_better``, ``evaluate_fn``); ``info`` (free-form, copied nowhere).

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
    Without a ``quantize_fn`` (the zoo's small models, user models) calibration, PTQ and
    evaluation on the CPU run in float64, so they give the same figures on every CPU
    (:func:`axe_deploy.quant.driver.in_float64`); a block-wise ``quantize_fn`` (the large
    models) keeps float32.
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
            if self.quantize_fn is not None:
                return self._evaluate(model, torch.device("cpu"))
            from axe_deploy.quant.driver import in_float64
            with in_float64(model) as converted:
                return self._evaluate(model, torch.device("cpu"), torch.float64 if converted else None)
        try:
            return self._evaluate(model.to(self.device), torch.device(self.device))
        finally:
            model.to("cpu")

    def _evaluate(self, model: torch.nn.Module, device: torch.device, dtype: torch.dtype | None = None) -> float:
        if self.evaluate_fn is not None:  # follows the model's device (and dtype)
            return float(self.evaluate_fn(model))
        x = self.test_x.to(device)
        hits = model(x.to(dtype) if dtype is not None and x.is_floating_point() else x).argmax(1) == self.test_y.to(device)
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
        from axe_deploy.quant.driver import calibrate_and_quantize
        return calibrate_and_quantize(self.float_model, model, self.calib_x, quant_cfg, seed=seed, progress=progress)

    def brevitas_axe(self, method: str, P: int, T: int, batch_size: int = 256) -> None:
        """Brevitas's ``a2gpfq`` / ``a2gptq`` on the calibrated ``quant_model``, in place."""
        if self.brevitas_fn is not None:
            return self.brevitas_fn(method, P, T)
        from axe_deploy.quant.driver import brevitas_axe
        batches = [((self.calib_x[i:i + batch_size],), {}) for i in range(0, len(self.calib_x), batch_size)]
        brevitas_axe(self.quant_model, batches, method, P, T)


def load_model_function(spec: str, flow_dir: str | Path | None = None) -> Callable[[dict], ModelBundle]:
    """The function named by ``[model] module = "package.module:function"``, imported with the
    flow file's folder first on ``sys.path`` (then the rest of ``sys.path``)."""
    module_name, _, function = spec.partition(":")
    path = [str(Path(flow_dir).resolve())] if flow_dir is not None else []
    sys.path[:0] = path
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        where = f"{path[0]} or sys.path" if path else "sys.path"
        raise ValueError(f"model.module = {spec!r}: cannot import '{module_name}' ({e}); it is looked for in "
                         f"{where}") from None
    finally:
        del sys.path[:len(path)]
    fn = getattr(module, function, None)
    if not callable(fn):
        raise ValueError(f"model.module = {spec!r}: '{module_name}' has no function '{function}'")
    return fn


def build_user_bundle(spec: str, quant: dict, flow_dir: str | Path | None = None) -> ModelBundle:
    """Call the ``[model] module`` function with the flow's [quant] table; check what it returns."""
    bundle = load_model_function(spec, flow_dir)(copy.deepcopy(quant))
    if not isinstance(bundle, ModelBundle):
        raise ValueError(f"model.module = {spec!r} returned {type(bundle).__name__}, not an axe_deploy.ModelBundle "
                         f"(axe_deploy.quant.convert.bundle_from_float makes one from a PyTorch model)")
    return bundle
