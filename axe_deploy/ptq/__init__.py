"""Accumulator-aware post-training quantization core: RTN, GPFQ, OPTQ and SPFQ with AXE.

Functions on tensors only (no Brevitas, no files): ``quantize_layer`` for one batch of
calibration inputs, ``LayerStats`` + ``quantize_from_stats`` to stream many batches.
``ALGORITHMS`` and ``OPTIONS`` (what a flow file may name) import without torch; the rest
loads on first use (PEP 562), so that checking a flow file stays fast.
"""

import importlib

from .options import ALGORITHMS, OPTIONS

_HOME = {"Infeasible": "axe", "check_feasible": "axe", "smallest_feasible_bits": "axe", "resolve_device": "device",
         "QuantInfo": "layer", "quantize_from_stats": "layer", "quantize_layer": "layer", "LayerStats": "stats"}

__all__ = ["ALGORITHMS", "OPTIONS", *_HOME]


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_HOME[name]}", __name__), name)
