"""OPTQ / GPTQ (Frantar et al., 2023), after the reference gptq.py, in integer units w = W/s.

H (any positive multiple of X̃ᵀX̃) gets damping percdamp * mean(diag H); Hinv is the
upper Cholesky factor of H⁻¹. Per column i: q_i = Q(w_i), err = (w_i - q_i) / Hinv_ii,
w_{i:} -= err * Hinv_{i, i:}; in blocks of ``block_size`` columns with lazy updates of the
columns after the block (sweep.py); optional act-order (columns by decreasing diag H).
"""

from __future__ import annotations

import torch

from .rtn import round_nearest
from .stats import act_order_permutation
from .stats import require_finite
from .sweep import sequential_sweep


def inverse_cholesky(H: torch.Tensor, percdamp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(Hinv upper factor, dead mask): dead inputs (H_ii = 0) get H_ii = 1 before damping."""
    H = H.clone()
    dead = torch.diagonal(H) == 0
    H[dead, dead] = 1
    idx = torch.arange(H.shape[0], device=H.device)
    H[idx, idx] += percdamp * torch.mean(torch.diagonal(H))
    Hinv = torch.cholesky_inverse(torch.linalg.cholesky(H))
    return torch.linalg.cholesky(Hinv, upper=True), dead


def optq(v: torch.Tensor, H: torch.Tensor, L: int, *, constraint=None, percdamp: float = 0.01,
         block_size: int = 128, act_order: bool = False, propagate_shrinkage: bool = True) -> torch.Tensor:
    """Integer q [M, K] by OPTQ.

    With an AXE ``constraint`` each updated weight is shrunk and clamped before Q. The
    error fed forward is w_i - q_i, shrinkage included, when ``propagate_shrinkage``
    (later columns compensate what the budget took), else only the rounding error of
    the shrunk weight (Brevitas's A2GPTQ).
    """
    require_finite("OPTQ", weights=v, H=H)
    M, K = v.shape
    order = (act_order_permutation(H) if act_order
             else torch.arange(K, device=H.device))
    w = v.to(H.dtype)[:, order].clone()
    try:
        Hinv, dead = inverse_cholesky(H[order][:, order], percdamp)
    except torch.linalg.LinAlgError as e:
        raise ValueError(f"OPTQ: H is not positive definite after damping {percdamp}: "
                         f"use more calibration samples or a larger percdamp ({e})") from e
    w[:, dead] = 0
    cols = order.tolist()
    dinv = torch.diagonal(Hinv).tolist()
    Qt = torch.empty(K, M, dtype=w.dtype, device=w.device)

    def step(t, wt):
        if constraint is None:
            qt = round_nearest(wt, L)
        else:
            shrunk = constraint.project(wt, cols[t])
            qt = torch.round(shrunk)
            constraint.spend(cols[t], qt)
            if not propagate_shrinkage:
                wt = shrunk
        Qt[t] = qt
        return (wt - qt) / dinv[t]

    sequential_sweep(w.T.contiguous(), Hinv, step, block_size)
    out = torch.empty_like(w)
    out[:, order] = Qt.T
    return out
