"""Second-order calibration statistics of one layer, accumulated over batches.

H = X̃ᵀX̃ and G = X̃ᵀX (X̃: inputs in the network whose earlier layers are quantized,
X: the same inputs in the float network), both [K, K], divided by the sample count, and
the column means of X̃ and X (for the centred objective, whose mean error a bias absorbs).
GPFQ and SPFQ need both, OPTQ only H; the scaling by 1/n changes none of them.
float32 by default (as Brevitas and the reference OPTQ): the algorithms' sweeps then run
in float32 too, while AXE's budget is always kept exactly (axe.py). The Brevitas driver
asks for float64: float32 sums round differently on different CPU kernels and moved the
integer weights between machines (see axe_deploy.quant.driver). ``device``: where the
sums are kept (batches are moved there), and so where ``quantize_from_stats`` computes.
"""

from __future__ import annotations

import torch

DTYPES = (torch.float32, torch.float64)


def require_finite(where: str, **tensors) -> None:
    """ValueError naming the first of ``tensors`` (name=tensor) that has NaN or infinite entries."""
    for name, t in tensors.items():
        if t is None:
            continue
        t = torch.as_tensor(t)
        if not bool(torch.isfinite(t).all()):
            nan, inf = int(torch.isnan(t).sum()), int(torch.isinf(t).sum())
            what = " and ".join(f"{c} {k}" for c, k in ((nan, "NaN"), (inf, "infinite")) if c)
            raise ValueError(f"{where}: {name} has {what} entries (of {t.numel()}); "
                             f"clean the data or the weights before quantizing")


def mantissa_bits(dtype) -> int:
    """Largest b with every integer of magnitude < 2^b exact in ``dtype``."""
    return {torch.float32: 24, torch.float64: 53}[dtype]


class LayerStats:
    """Streaming H and G of one layer; ``update`` takes [n, K] batches (Conv: unfolded patches)."""

    def __init__(self, K: int, *, cross: bool = True, dtype=torch.float32, device="cpu"):
        if dtype not in DTYPES:
            raise ValueError(f"LayerStats: dtype {dtype} is not supported (its sums lose the statistics); "
                             f"use torch.float32 or torch.float64")
        self.K = K
        self.dtype = dtype
        self.device = torch.device(device)
        self.n = 0
        self._h = torch.zeros(K, K, dtype=dtype, device=self.device)
        self._g = torch.zeros(K, K, dtype=dtype, device=self.device) if cross else None
        self._sum_q = torch.zeros(K, dtype=torch.float64, device=self.device)
        self._sum_f = torch.zeros(K, dtype=torch.float64, device=self.device) if cross else None

    def update(self, x_float: torch.Tensor | None, x_quant: torch.Tensor) -> "LayerStats":
        require_finite("LayerStats.update", x_quant=x_quant, x_float=x_float)
        xq = torch.as_tensor(x_quant).reshape(-1, self.K).to(self.device, self.dtype)
        self._h.addmm_(xq.T, xq)
        self._sum_q += xq.sum(dim=0, dtype=torch.float64)
        if self._g is not None:
            if x_float is None:
                raise ValueError("LayerStats(cross=True) needs x_float for G = X̃ᵀX")
            xf = torch.as_tensor(x_float).reshape(-1, self.K).to(self.device, self.dtype)
            if xf.shape != xq.shape:
                raise ValueError(f"x_float {tuple(xf.shape)} and x_quant {tuple(xq.shape)} differ in shape")
            self._g.addmm_(xq.T, xf)
            self._sum_f += xf.sum(dim=0, dtype=torch.float64)
        self.n += xq.shape[0]
        for name, t in (("H = X̃ᵀX̃", self._h), ("G = X̃ᵀX", self._g)):
            if t is not None and not bool(torch.isfinite(t).all()):  # finite inputs, squares too large
                raise ValueError(f"LayerStats.update: {name} overflows {self.dtype} (inputs up to "
                                 f"{float(xq.abs().max()):.3g}); use dtype=torch.float64 or scale the inputs")
        return self

    @classmethod
    def from_data(cls, x_float, x_quant, *, cross: bool = True, dtype=torch.float32, device="cpu") -> "LayerStats":
        x_quant = torch.as_tensor(x_quant)
        return cls(x_quant.shape[-1], cross=cross, dtype=dtype, device=device).update(x_float, x_quant)

    def _check(self):
        if self.n == 0:
            raise ValueError("LayerStats has no samples: call update() with calibration batches first")

    @property
    def H(self) -> torch.Tensor:
        self._check()
        return self._h / self.n

    @property
    def G(self) -> torch.Tensor:
        self._check()
        if self._g is None:
            raise ValueError("G = X̃ᵀX was not collected: build LayerStats with cross=True")
        return self._g / self.n

    @property
    def mean_q(self) -> torch.Tensor:
        """Column means of X̃ [K] (float64)."""
        self._check()
        return self._sum_q / self.n

    @property
    def mean_f(self) -> torch.Tensor:
        """Column means of X [K] (float64)."""
        self._check()
        if self._sum_f is None:
            raise ValueError("the means of X were not collected: build LayerStats with cross=True")
        return self._sum_f / self.n


def act_order_permutation(H: torch.Tensor) -> torch.Tensor:
    """Inputs by decreasing H_tt (act-order). Diagonal entries equal to 9 significant digits
    (5 in float32) count as equal and keep their input order: quantized inputs give exactly
    equal sums of squares, whose last float bits differ between CPU kernels, and a tie
    broken by those bits would give other integers on another machine."""
    d = torch.diagonal(H)
    digits = 9 if d.dtype == torch.float64 else 5
    key = torch.round(d / d.abs().max().clamp_min(torch.finfo(d.dtype).tiny) * 10.0 ** digits)
    return torch.argsort(key, descending=True, stable=True)

