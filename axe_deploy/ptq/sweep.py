"""The sequential column sweep shared by GPFQ and OPTQ, blocked with lazy updates.

Both algorithms visit columns t = 0..K-1 and, after deciding column t, subtract a
multiple of a vector e_t from every later column: A[:, t'] -= C[t, t'] e_t (t' > t).
Done naively that is one rank-1 update of the whole rest per column; here it is a
rank-1 update inside a small inner block, a matmul for the rest of the outer block
after each inner block, and a matmul for all later columns after each outer block
(the lazy batch updates of OPTQ), which gives the same numbers up to float rounding.

Storage is transposed, At = Aᵀ [K, M], so that a column of the problem is a
contiguous row and all channels are updated at once.
"""

from __future__ import annotations

import torch

INNER = 16


def sequential_sweep(At: torch.Tensor, C: torch.Tensor, step, block_size: int = 128) -> torch.Tensor:
    """Run ``e_t = step(t, At[t])`` for t = 0..K-1 with At[t'] -= C[t, t'] * e_t for t' > t.

    ``At`` [K, M] is updated in place (row t holds the final value of column t when
    ``step`` sees it); only the strict upper triangle of ``C`` [K, K] is read.
    Returns Et [K, M], the stacked e_t.
    """
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    K = At.shape[0]
    Et = torch.empty_like(At)
    for i1 in range(0, K, block_size):
        i2 = min(i1 + block_size, K)
        for j1 in range(i1, i2, INNER):
            j2 = min(j1 + INNER, i2)
            for t in range(j1, j2):
                Et[t] = step(t, At[t])
                if t + 1 < j2:
                    At[t + 1:j2].addr_(C[t, t + 1:j2], Et[t], alpha=-1)
            if j2 < i2:
                At[j2:i2].addmm_(C[j1:j2, j2:i2].T, Et[j1:j2], alpha=-1)
        if i2 < K:
            At[i2:].addmm_(C[i1:i2, i2:].T, Et[i1:i2], alpha=-1)
    return Et
