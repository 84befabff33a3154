"""Scalar quantizers on the narrow signed alphabet {-L, ..., L}, L = 2^(b-1) - 1, and RTN."""

from __future__ import annotations

import torch


def levels(weight_bits: int) -> int:
    """L of the narrow signed ``weight_bits`` alphabet (what Brevitas's default weight quantizers use)."""
    if isinstance(weight_bits, bool) or not float(weight_bits).is_integer() or weight_bits < 2:
        raise ValueError(f"weight_bits must be an integer >= 2 for a narrow signed alphabet, got {weight_bits!r}")
    return 2 ** (int(weight_bits) - 1) - 1


def round_nearest(z: torch.Tensor, L: int, generator=None) -> torch.Tensor:
    """Q(z) = clamp(round(z), -L, L), ties to even as torch.round (``generator`` unused:
    the signature of round_stochastic)."""
    return torch.clamp(torch.round(z), -L, L)


def round_stochastic(z: torch.Tensor, L: int, generator=None) -> torch.Tensor:
    """Unbiased stochastic rounding: floor(z) + Bernoulli(frac(z)), clipped to [-L, L].

    E[Q(z)] = z for z in [-L, L]; the result stays inside any integer interval that
    contains z, so clamping z to AXE's bounds first keeps the guarantee.
    """
    low = torch.floor(z)
    # drawn on the CPU generator whatever z's device: the same seed rounds the same way on a GPU
    up = torch.rand(z.shape, generator=generator, dtype=z.dtype).to(z.device) < (z - low)
    return torch.clamp(low + up.to(z.dtype), -L, L)


def rtn(v: torch.Tensor, L: int, constraint=None) -> torch.Tensor:
    """Round to nearest, column by column under an AXE ``constraint`` when one is given."""
    if not bool(torch.isfinite(v).all()):
        raise ValueError("RTN: weights has NaN or infinite entries")
    if constraint is None:
        return round_nearest(v, L)
    q = torch.empty_like(v)
    for t in range(v.shape[1]):
        q[:, t] = torch.round(constraint.project(v[:, t], t))
        constraint.spend(t, q[:, t])
    return q
