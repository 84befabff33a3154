"""SPFQ (Zhang & Saab, 2023): the path following walk with unbiased stochastic rounding.

Order r: r - 1 data-alignment sweeps first find w̃ with X̃w̃ ≈ Xw (the first sweep is the
walk of GPFQ without quantization, tril(H) w̃ = tril(G) w; later sweeps are cyclic
coordinate descent on ||Xw - X̃w̃||², i.e. Gauss-Seidel on H w̃ = G w), then the
quantizing sweep follows X̃w̃ (for r = 1 it follows Xw directly).
"""

from __future__ import annotations

import torch

from .gpfq import path_following
from .rtn import round_stochastic
from .stats import require_finite


def align(v: torch.Tensor, H: torch.Tensor, G: torch.Tensor, sweeps: int) -> torch.Tensor:
    """w̃ [M, K] after ``sweeps`` >= 1 alignment sweeps (each one triangular solve)."""
    Hs = H.clone()
    dead = torch.diagonal(Hs) == 0
    Hs[dead, dead] = 1  # dead inputs: zero rows in H and G, so w̃_t = 0
    lower = torch.tril(Hs)
    upper = torch.triu(Hs, 1)
    v = v.to(H.dtype)
    target = G @ v.T  # [K, M]
    wt = torch.linalg.solve_triangular(lower, torch.tril(G) @ v.T, upper=False)
    for _ in range(sweeps - 1):
        wt = torch.linalg.solve_triangular(lower, target - upper @ wt, upper=False)
    return wt.T


def spfq(v, H, G, L, *, order: int = 1, constraint=None, block_size=128, generator=None):
    """Integer q [M, K] by SPFQ of order ``order`` >= 1 with stochastic rounding from ``generator``."""
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"SPFQ order r must be an integer >= 1, got {order!r}")
    require_finite("SPFQ", weights=v, H=H, G=G)
    if order > 1:
        v = align(v, H, G, order - 1)
        G = H
    return path_following(v, H, G, L, quantizer=round_stochastic, constraint=constraint,
                          block_size=block_size, generator=generator)
