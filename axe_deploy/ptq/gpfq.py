"""GPFQ (Lybrand & Saab; Zhang, Zhou & Saab) in the H/G form with column blocks.

The greedy path following walk of every row w (integer units, w = W/s) over the inputs,

    u_0 = 0,  q_t = Q(<X̃_t, u_{t-1} + w_t X_t> / ||X̃_t||²),  u_t = u_{t-1} + w_t X_t - q_t X̃_t,

needs only H = X̃ᵀX̃ and G = X̃ᵀX:  q_t = Q((Σ_{j<=t} G_tj w_j - Σ_{j<t} H_tj q_j) / H_tt).
The w part is one matmul; the q part is the blocked sequential sweep with lazy
updates that OPTQ uses (sweep.py), so GPFQ costs what OPTQ costs. All rows run at once.
"""

from __future__ import annotations

import torch

from .rtn import round_nearest
from .stats import act_order_permutation
from .stats import require_finite
from .sweep import sequential_sweep


def path_following(v: torch.Tensor, H: torch.Tensor, G: torch.Tensor, L: int, *,
                   quantizer=round_nearest, constraint=None, block_size: int = 128,
                   order: torch.Tensor | None = None, generator=None) -> torch.Tensor:
    """Integer q [M, K] of the walk above, columns visited in ``order`` (default 0..K-1).

    ``quantizer(z, L, generator)`` is Q (nearest for GPFQ, stochastic for SPFQ);
    ``constraint`` (axe.Constraint) shrinks and clamps each argument before Q and books
    the result. Columns with H_tt = 0 (dead inputs) get q = 0.
    """
    require_finite("GPFQ/SPFQ", weights=v, H=H, G=G)
    M, K = v.shape
    if order is None:
        order = torch.arange(K, device=v.device)
    v = v[:, order].to(H.dtype)
    H = H[order][:, order]
    d = torch.diagonal(H).clone()
    d[d == 0] = 1  # a dead column has zero rows in H and G: argument 0, q 0
    d = d.tolist()
    cols = order.tolist()
    At = torch.tril(G[order][:, order]) @ v.T  # [K, M]: Σ_{j<=t} G_tj w_j for every t

    def step(t, a):
        arg = a / d[t]
        if constraint is None:
            return quantizer(arg, L, generator)
        qt = quantizer(constraint.project(arg, cols[t]), L, generator)
        constraint.spend(cols[t], qt)
        return qt

    Qt = sequential_sweep(At, H, step, block_size)
    out = torch.empty_like(v)
    out[:, order] = Qt.T
    return out


def gpfq(v, H, G, L, *, constraint=None, block_size=128, act_order=False):
    """GPFQ with round to nearest; ``act_order`` visits inputs by decreasing H_tt."""
    order = act_order_permutation(H) if act_order else None
    return path_following(v, H, G, L, constraint=constraint, block_size=block_size, order=order)
