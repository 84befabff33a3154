"""Folding: choose each layer's parallelism (PE, SIMD) to meet a throughput target.

A layer's cycles per image follow ``spec.estimate_cycles``; with FIFOs between layers the
chain runs at the slowest layer's interval, so a target of T cycles per image is met when
every layer takes at most T. Per layer the cheapest folding that meets T is chosen, the
cost proxy being the number of parallel lanes (PE*SIMD for an MVAU, SIMD for a sliding
window, PE for a pool); among equally cheap MVAU foldings the one with the larger SIMD
wins (fewer accumulators and threshold comparators, as FINN's SetFolding prefers).
A tiled MVAU (multi-stage accumulation) only takes a SIMD that divides its tile size, so
that every tile is a whole number of folds; a reorder has no knob (one element a cycle).
"""

from __future__ import annotations

import dataclasses

from .spec import Layer, MaxPoolLayer, MVAULayer, ReorderLayer, SlidingWindowLayer, estimate_cycles

FOLD_KEYS = {MVAULayer: ("PE", "SIMD"), SlidingWindowLayer: ("SIMD",), MaxPoolLayer: ("PE",),
             ReorderLayer: ()}


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


def _candidates(layer: Layer) -> list[dict]:
    """Every legal folding of ``layer``, cheapest first."""
    if isinstance(layer, MVAULayer):
        pairs = [(pe, simd) for pe in _divisors(layer.MH) for simd in _divisors(layer.MW)
                 if not layer.tile_size or layer.tile_size % simd == 0]
        pairs.sort(key=lambda ps: (ps[0] * ps[1], -ps[1]))
        return [dict(PE=pe, SIMD=simd) for pe, simd in pairs]
    if isinstance(layer, ReorderLayer):
        return [{}]
    key = FOLD_KEYS[type(layer)][0]
    return [{key: d} for d in _divisors(layer.C)]


def _override(layer: Layer, value) -> dict:
    keys = FOLD_KEYS[type(layer)]
    if not keys:
        raise ValueError(f"layer '{layer.name}' (a reorder) has no folding to override")
    if isinstance(value, dict):
        fold = dict(value)
    elif isinstance(value, int):
        fold = {keys[-1]: value}
    else:
        fold = dict(zip(("PE", "SIMD"), value))
        if len(keys) == 1:  # (PE, SIMD) given for a one-knob layer: take its knob
            fold = {keys[0]: fold[keys[0]]}
    if set(fold) != set(keys):
        raise ValueError(f"layer '{layer.name}': folding override {value!r} must set "
                         f"{' and '.join(keys)} (an MVAU takes (PE, SIMD))")
    return fold


def target_cycles_from_fps(target_fps: float, clock_mhz: float) -> int:
    """Cycles per image allowed by ``target_fps`` images per second at ``clock_mhz``."""
    if target_fps <= 0 or clock_mhz <= 0:
        raise ValueError(f"target_fps ({target_fps}) and clock_mhz ({clock_mhz}) must be > 0")
    return int(clock_mhz * 1e6 // target_fps)


def choose_folding(layers: list[Layer], target_cycles: int | None = None, *,
                   target_fps: float | None = None, clock_mhz: float | None = None,
                   overrides: dict | None = None) -> list[Layer]:
    """Copies of ``layers`` with PE/SIMD chosen so every layer meets the target.

    The target is ``target_cycles`` per image, or ``target_fps`` at ``clock_mhz``; with
    neither, layers keep their folding. ``overrides`` maps a layer name to (PE, SIMD) for
    an MVAU, or to the single knob of a sliding window (SIMD) or pool (PE); overridden
    layers are taken as given. Raises ValueError naming the layer when an override does not
    divide the layer's sizes, names no layer, or the target cannot be met.
    """
    if target_fps is not None or clock_mhz is not None:
        if target_cycles is not None or target_fps is None or clock_mhz is None:
            raise ValueError("give either target_cycles, or target_fps together with clock_mhz")
        target_cycles = target_cycles_from_fps(target_fps, clock_mhz)
    if target_cycles is not None and target_cycles < 1:
        raise ValueError(f"target_cycles must be >= 1, got {target_cycles}")
    overrides = dict(overrides or {})
    unknown = set(overrides) - {layer.name for layer in layers}
    if unknown:
        raise ValueError(f"folding overrides name no layer: {sorted(unknown)}; layers are "
                         f"{[layer.name for layer in layers]}")
    out = []
    for layer in layers:
        if layer.name in overrides:
            out.append(dataclasses.replace(layer, **_override(layer, overrides[layer.name])))
        elif target_cycles is None:
            out.append(layer)
        else:
            for fold in _candidates(layer):
                folded = dataclasses.replace(layer, **fold)
                if estimate_cycles(folded) <= target_cycles:
                    out.append(folded)
                    break
            else:
                fastest = dataclasses.replace(layer, **_candidates(layer)[-1])
                how = ", ".join(f"{k}={getattr(fastest, k)}" for k in FOLD_KEYS[type(layer)]) \
                    or "one element a cycle, a reorder in front of a tiled MVAU"
                raise ValueError(
                    f"layer '{layer.name}': even the fastest folding ({how}) "
                    f"takes {estimate_cycles(fastest)} cycles per image > target {target_cycles}; "
                    "relax the target (fewer images per second or a faster clock)")
    return out
