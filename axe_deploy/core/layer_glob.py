"""Per-layer settings by glob pattern: the ``[quant.layers."<glob>"]`` tables of a flow.

A [quant] table holds settings for every layer and, under ``layers``, tables of overrides
keyed by ``fnmatch`` patterns on layer names (case-sensitive); the last matching pattern
wins. Pure functions on plain dicts: nothing here knows of Brevitas, ONNX or files.
"""

from __future__ import annotations

import fnmatch


def match_layer(settings: dict[str, object], name: str, default):
    """The value of the last glob pattern in ``settings`` that matches layer ``name``,
    ``default`` when none does."""
    value = default
    for pattern, v in settings.items():
        if fnmatch.fnmatchcase(name, pattern):
            value = v
    return value


def layer_values(quant_cfg: dict, key: str) -> dict[str, object]:
    """``{glob: value}`` of one per-layer key, for :func:`match_layer`."""
    return {p: s[key] for p, s in quant_cfg.get("layers", {}).items() if key in s}


def for_every_layer(quant_cfg: dict, **settings) -> dict:
    """A copy of ``quant_cfg`` whose ``settings`` hold for every layer: set at the top and
    removed from the per-layer tables (e.g. ``accumulator_bits=0``: the same PTQ with no
    target P anywhere)."""
    layers = {p: {k: v for k, v in s.items() if k not in settings} for p, s in quant_cfg.get("layers", {}).items()}
    return dict(quant_cfg, **settings, layers=layers)
