"""AXE: accumulator-aware constraints inside a greedy quantizer (Colbert et al., 2024).

Two parts, per output channel and per tile of T consecutive inputs (docs/design.md, "AXE"):

* soft: a shrinkage ``lam`` applied to every greedy argument, the threshold of the
  Duchi et al. l1-ball projection of the tile's zero-centred integer weights onto
  radius Z = (2^P - 2) / (x_max - x_min);
* hard: a running budget. The worst-case (lo, hi) of the tile's partial dot product
  is tracked exactly in integers, and before a column is quantized its argument is
  clamped to the integer interval that keeps (lo, hi) inside the signed P-bit
  register whatever the remaining columns turn out to be (a zero keeps it unchanged).

The hard part alone is what guarantees the width: every step keeps the exact range
feasible, so the finished row is feasible for every input in [x_min, x_max].

Rescaling (for callers that may change the per-channel scale): the walk follows c·w with
the per-row c <= 1 at which the real-valued row just fits the budget (``fit_factor``), so
the budget goes to every input in proportion instead of to the largest weights and the
first columns, and the scale is then refitted by least squares (``least_squares_gain``):
integers that fit the register, at the amplitude of the layer.
"""

from __future__ import annotations

import torch

from axe_deploy.core import accumulator

from .sweep import sequential_sweep


def smallest_feasible_bits(input_bits: int, input_signed: bool) -> int:
    """Smallest P at which a single weight of +1 or -1 fits a signed P-bit accumulator.

    Below it the only weights that meet the budget are (almost) all zero.
    """
    x_min, x_max = accumulator.input_bounds(input_bits, input_signed)
    return accumulator.min_bits(min(x_min, -x_max), max(x_max, -x_min), signed=True)


class Infeasible(ValueError):
    """A target P below the smallest feasible width of a layer's inputs (a sweep records it)."""


def check_feasible(accumulator_bits: int, input_bits: int, input_signed: bool, name: str = "layer"):
    """Raise Infeasible naming the smallest feasible P when ``accumulator_bits`` is below it."""
    p_min = smallest_feasible_bits(input_bits, input_signed)
    if accumulator_bits < p_min:
        kind = "signed" if input_signed else "unsigned"
        raise Infeasible(
            f"{name}: accumulator_bits={accumulator_bits} is infeasible for {input_bits}-bit {kind} "
            f"inputs (a single weight of +-1 already needs {p_min} bits); "
            f"use accumulator_bits >= {p_min}")


def l1_ball_threshold(v: torch.Tensor, radius: float) -> torch.Tensor:
    """Per-row threshold theta of the Euclidean projection of ``v`` [R, T] onto the l1 ball.

    The projection is sign(v) * max(|v| - theta, 0) (Duchi et al., 2008); theta = 0 for
    rows already inside the ball. Zero entries (e.g. padding) do not change theta.
    """
    a = v.abs()
    u = torch.sort(a, dim=1, descending=True).values
    css = torch.cumsum(u, dim=1)
    k = torch.arange(1, a.shape[1] + 1, dtype=a.dtype, device=a.device)
    # rho = last index where u_k > (css_k - radius) / k; the condition holds for a prefix.
    cond = u * k > css - radius
    rho = cond.sum(dim=1).clamp_min(1)
    theta = (css.gather(1, (rho - 1)[:, None]).squeeze(1) - radius) / rho.to(a.dtype)
    return torch.where(a.sum(dim=1) <= radius, torch.zeros_like(theta), theta.clamp_min(0))


def tile_index(K: int, tile_size: int | None, device=None) -> torch.Tensor:
    """Tile of each input column: consecutive chunks of T along K (one tile when T is None)."""
    if tile_size is None or tile_size >= K:
        return torch.zeros(K, dtype=torch.long, device=device)
    return torch.arange(K, device=device) // tile_size


def soft_thresholds(v: torch.Tensor, tiles: torch.Tensor, radius: float) -> torch.Tensor:
    """Shrinkage lam [M, n_tiles]: l1-ball threshold of each zero-centred weight tile of ``v``."""
    M, K = v.shape
    n_tiles = int(tiles.max()) + 1
    T = int(torch.bincount(tiles).max())
    padded = torch.zeros(M, n_tiles, T, dtype=v.dtype, device=v.device)
    counts = torch.bincount(tiles, minlength=n_tiles)
    pos = torch.arange(K, device=v.device) - torch.cumsum(counts, 0)[tiles] + counts[tiles]
    padded[:, tiles, pos] = v
    mean = padded.sum(dim=2, keepdim=True) / counts.to(v.dtype)[None, :, None]
    valid = (torch.arange(T, device=v.device)[None, :] < counts[:, None])[None]
    centred = torch.where(valid, padded - mean, torch.zeros_like(padded))
    return l1_ball_threshold(centred.reshape(M * n_tiles, T), radius).reshape(M, n_tiles)


def fit_factor(v: torch.Tensor, tiles: torch.Tensor, *, bits: int, x_min: int, x_max: int) -> torch.Tensor:
    """Per-row factor c in (0, 1] [M]: over the row's tiles, the median of the largest
    c <= 1 at which the real-valued tile c·v keeps its worst case inside the signed
    ``bits``-wide register, i.e. with S+ / S- the positive / negative mass of the tile,
    c·(x_max·S+ − x_min·S-) <= 2^(P-1) − 1 and c·(x_max·S- − x_min·S+) <= 2^(P-1) (inputs
    in [x_min, x_max], x_min <= 0 <= x_max). One scale serves all tiles of a row: the few
    tiles heavier than the median are left to the soft shrinkage and the hard budget.
    """
    M, K = v.shape
    n_tiles = int(tiles.max()) + 1
    v = v.double()
    pos = torch.zeros(M, n_tiles, dtype=torch.float64, device=v.device).index_add_(1, tiles, v.clamp_min(0))
    neg = torch.zeros(M, n_tiles, dtype=torch.float64, device=v.device).index_add_(1, tiles, (-v).clamp_min(0))
    hi = x_max * pos - x_min * neg
    low = x_max * neg - x_min * pos
    inf = torch.full_like(hi, float("inf"))
    c = torch.minimum(torch.where(hi > 0, (2.0 ** (bits - 1) - 1) / hi, inf),
                      torch.where(low > 0, 2.0 ** (bits - 1) / low, inf))
    return c.median(dim=1).values.clamp_max(1.0)


def least_squares_gain(q: torch.Tensor, v: torch.Tensor, H: torch.Tensor, G: torch.Tensor) -> torch.Tensor:
    """Per-row g [M] (float64) minimising ||Xv − g·X̃q||² given H = X̃ᵀX̃ and G = X̃ᵀX:
    g = qᵀGv / qᵀHq, and 1 where that is not a positive number (a zero row, or a q that
    does not correlate with the target)."""
    q = q.to(H.dtype)
    num = ((q @ G) * v.to(H.dtype)).sum(dim=1).double()
    den = ((q @ H) * q).sum(dim=1).double()
    ok = (num > 0) & (den > 0)
    return torch.where(ok, num / torch.where(ok, den, torch.ones_like(den)), torch.ones_like(num))


class RunningBudget:
    """Exact worst-case range of every (row, tile) partial sum, and the integer interval a
    column may take so that the signed ``bits``-wide register still holds it.

    State: the room left above the worst-case high and below the worst-case low,
    ``room_hi`` = 2^(P-1) - 1 - hi and ``room_lo`` = lo + 2^(P-1), [n_tiles, M]. They are
    integers held in float64, exact for P <= 52 (floor of a quotient of integers below
    2^52 is exact too); one multiply-add per bound is all a column costs.
    """

    def __init__(self, M: int, tiles: torch.Tensor, bits: int, x_min: int, x_max: int, levels: int):
        if bits > 52:
            raise ValueError(f"accumulator_bits={bits} > 52 is not supported (and never binds in practice)")
        self.tiles = tiles.tolist()
        self.x_min, self.x_max = int(x_min), int(x_max)
        self.levels = float(levels)
        n_tiles = max(self.tiles) + 1
        self.room_hi = torch.full((n_tiles, M), float(2 ** (bits - 1) - 1), dtype=torch.float64, device=tiles.device)
        self.room_lo = torch.full((n_tiles, M), float(2 ** (bits - 1)), dtype=torch.float64, device=tiles.device)

    def interval(self, col: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Integer bounds (lower, upper) [M] (float64) for the weight of input column ``col``."""
        t = self.tiles[col]
        # q = c >= 0 takes c*x_max from room_hi and -c*x_min from room_lo;
        # q = -d takes -d*x_min from room_hi and d*x_max from room_lo.
        up = down = None
        if self.x_max > 0:
            up = torch.div(self.room_hi[t], self.x_max, rounding_mode="floor")
            down = torch.div(self.room_lo[t], self.x_max, rounding_mode="floor")
        if self.x_min < 0:
            up2 = torch.div(self.room_lo[t], -self.x_min, rounding_mode="floor")
            down2 = torch.div(self.room_hi[t], -self.x_min, rounding_mode="floor")
            up = up2 if up is None else torch.minimum(up, up2)
            down = down2 if down is None else torch.minimum(down, down2)
        return -down.clamp_max_(self.levels), up.clamp_max_(self.levels)

    def spend(self, col: int, q: torch.Tensor, sign: int = 1):
        """Book integer weights q [M] of column ``col`` (``sign`` = -1 takes them out again)."""
        t = self.tiles[col]
        pos = q.clamp_min(0)
        neg = q - pos
        if self.x_max:
            self.room_hi[t].add_(pos, alpha=-sign * self.x_max)
            self.room_lo[t].add_(neg, alpha=sign * self.x_max)
        if self.x_min:
            self.room_hi[t].add_(neg, alpha=-sign * self.x_min)
            self.room_lo[t].add_(pos, alpha=sign * self.x_min)


class Constraint:
    """Soft shrinkage plus hard budget for one layer; ``project(arg, col)`` returns the
    shrunk argument clamped to the integers the budget allows (so any rounding of it
    stays feasible), ``spend``/``refund`` book integers in and out.

    ``soft_scale`` multiplies the l1-ball threshold (1 = AXE as published, 0 = hard
    budget only); it may be a tensor [M] to give every row its own factor.
    """

    def __init__(self, v: torch.Tensor, *, bits: int, input_bits: int, input_signed: bool,
                 levels: int, tile_size: int | None, soft_scale=1.0):
        M, K = v.shape
        x_min, x_max = accumulator.input_bounds(input_bits, input_signed)
        self.tiles = tile_index(K, tile_size, v.device)
        self.budget = RunningBudget(M, self.tiles, bits, x_min, x_max, levels)
        radius = (2.0**bits - 2.0) / (x_max - x_min)
        lam = soft_thresholds(v.double(), self.tiles, radius)
        scale = torch.as_tensor(soft_scale, dtype=torch.float64, device=v.device)
        self.lam = (lam * (scale[:, None] if scale.ndim else scale)).T.contiguous()  # [n_tiles, M]

    def project(self, arg: torch.Tensor, col: int, soft: bool = True) -> torch.Tensor:
        lower, upper = self.budget.interval(col)
        arg = arg.double()
        if soft:
            lam = self.lam[self.budget.tiles[col]]
            arg = arg - torch.clamp(arg, -lam, lam)  # sign(arg) * max(|arg| - lam, 0)
        return torch.clamp(arg, lower, upper)

    def spend(self, col: int, q: torch.Tensor):
        self.budget.spend(col, q.double())

    def refund(self, col: int, q: torch.Tensor):
        self.budget.spend(col, q.double(), sign=-1)


class Levels:
    """The ``Constraint`` interface with no budget: only the weight alphabet [-L, L]."""

    def __init__(self, levels: int):
        self.levels = float(levels)

    def project(self, arg: torch.Tensor, col: int, soft: bool = False) -> torch.Tensor:
        return torch.clamp(arg.double(), -self.levels, self.levels)

    def spend(self, col: int, q: torch.Tensor):
        pass

    def refund(self, col: int, q: torch.Tensor):
        pass


def respend(q: torch.Tensor, v: torch.Tensor, H: torch.Tensor, G: torch.Tensor, constraint: Constraint | Levels,
            passes: int = 1, block_size: int = 128) -> torch.Tensor:
    """Re-spend the budget: ``passes`` sweeps of exact integer coordinate descent on
    ||Xw - X̃q||² (OPTQ: G = H), each column re-chosen within what the budget allows
    once its own weight is taken out, without shrinkage.

    The walk with shrinkage leaves budget unused where it shrank more than needed;
    each coordinate step picks the nearest integer to the 1-D minimiser inside the
    feasible interval, so the objective never increases and the range stays feasible.
    With ``Levels`` it is the same descent for an unconstrained layer (a fair baseline).
    """
    d = torch.diagonal(H).clone()
    d[d == 0] = 1
    d = d.tolist()
    target = G @ v.to(H.dtype).T  # [K, M]: X̃ᵀXw per row
    Qt = q.to(H.dtype).T.contiguous()
    for _ in range(passes):
        def step(t, c):
            old = Qt[t].clone()
            constraint.refund(t, old)
            new = torch.round(constraint.project(old + c / d[t], t, soft=False))
            constraint.spend(t, new)
            Qt[t] = new
            return new - old

        sequential_sweep(target - H @ Qt, H, step, block_size)
    return Qt.T.contiguous()
