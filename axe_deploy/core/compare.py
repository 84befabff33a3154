"""Two implementations' outputs on the same inputs, compared with a tolerance and with
argmax ties handled explicitly.

Outputs are float scores whose last axis is the class (or token) axis; an implementation
passes when every output is within ``atol`` of the reference and its argmax agrees with
the reference's on every row, up to ties. A *tie* is a row whose reference scores hold
more than one class within ``2·atol`` of the row's maximum: two implementations each
within ``atol`` of the true scores can order such classes either way (an exact tie in
integer arithmetic comes out in float in any order), so the row agrees when the argmax
of ``got`` is any of the tied classes. ``2·atol`` is the widest gap that outputs within
``atol`` can reverse: ``got_g ≥ got_r`` with ``|got − ref| ≤ atol`` gives
``ref_g ≥ ref_r − 2·atol``; so outputs within ``atol`` always agree, and the argmax
count reports what a looser tolerance would let through.
"""

from __future__ import annotations

import numpy as np


def compare_outputs(got, ref, atol: float) -> dict:
    """Compare ``got`` with the reference ``ref`` (same number of elements; ``got`` is
    reshaped to ``ref``'s shape).

    Returns ``vectors`` (rows compared: all axes but the last), ``max_abs_diff``,
    ``argmax_equal`` (fraction of rows with the same argmax), ``ties`` (rows whose
    reference has another class within 2·atol of its maximum), ``argmax_agree``
    (fraction of rows whose argmax in ``got`` is one of the reference's tied maxima) and
    ``passed``: every difference finite and <= ``atol`` and every row agreeing.
    Raises ValueError when the element counts differ or ``atol`` is negative.
    """
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    if got.size != ref.size:
        raise ValueError(f"compare_outputs: {got.shape} and reference {ref.shape} differ in size")
    if not atol >= 0:
        raise ValueError(f"compare_outputs: atol must be >= 0, got {atol}")
    got = got.reshape(ref.shape)
    rows = (-1, ref.shape[-1]) if ref.ndim >= 2 else (-1, 1)
    g, r = got.reshape(rows), ref.reshape(rows)
    diff = float(np.abs(got - ref).max()) if ref.size else 0.0
    if not np.isfinite(diff):  # NaN or inf anywhere fails, however the maxima fall
        diff = float("inf")
    near = r >= r.max(axis=1, keepdims=True) - 2 * atol
    pick = g.argmax(axis=1)
    equal = pick == r.argmax(axis=1)
    agree = near[np.arange(len(r)), pick]
    n = len(r)
    return {"vectors": int(n), "max_abs_diff": diff,
            "argmax_equal": float(equal.mean()) if n else 1.0,
            "ties": int((near.sum(axis=1) > 1).sum()),
            "argmax_agree": float(agree.mean()) if n else 1.0,
            "passed": bool(diff <= atol and agree.all())}


def describe(result: dict, atol: float) -> str:
    """One line for a check's detail: the difference against ``atol`` and the argmax agreement."""
    d = result["max_abs_diff"]
    ties = f" ({result['argmax_agree']:.2%} counting {result['ties']} tie(s) within 2·atol)" if result["ties"] else ""
    return (f"max |diff| {d:.2e} ({'<=' if d <= atol else '>'} atol {atol:g}), "
            f"argmax equal on {result['argmax_equal']:.2%}{ties}")
