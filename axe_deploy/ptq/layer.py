"""One layer in, integer weights and a record out: the entry point of the PTQ core."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch

from axe_deploy.core import accumulator

from . import axe
from .gpfq import gpfq
from .optq import optq
from .options import ALGORITHMS, OPTIONS
from .rtn import levels, rtn
from .spfq import spfq
from .stats import LayerStats, mantissa_bits, require_finite


@dataclass
class QuantInfo:
    """What ``quantize_layer`` did to one layer.

    ``l1``: per-channel ||q||₁ [M]. ``budget_use``: per channel, the largest fraction of
    the signed P-bit register that any tile's exact worst case reaches (<= 1 by
    construction; None without a target P). ``tile_bits``: exact width of each tile's
    inner accumulator over all channels [n_tiles]. ``accumulator``: the layer's exact
    ranges and widths (inner ``exact_bits``, ``outer_bits``) from axe_deploy.core.accumulator.
    ``scale``: per-channel scales [M] (float64) of the result, the layer's weight being
    scale[:, None] * q: the given ones unless ``rescale`` refitted them. ``centred``: the
    objective ignored the mean output error (option ``centre``), which a bias must absorb.
    """

    algorithm: str
    options: dict
    seconds: float
    weight_bits: int
    input_bits: int
    input_signed: bool
    accumulator_bits: int | None
    tile_size: int | None
    l1: np.ndarray
    budget_use: np.ndarray | None
    tile_bits: np.ndarray
    accumulator: accumulator.AccumulatorInfo = field(repr=False)
    scale: torch.Tensor = field(repr=False)
    centred: bool = False

    @property
    def exact_bits(self) -> int:
        return self.accumulator.exact_bits

    @property
    def outer_bits(self) -> int:
        return self.accumulator.outer_bits


def _check_options(algorithm: str, options: dict, name: str) -> dict:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"{name}: unknown algorithm {algorithm!r}; use one of {', '.join(ALGORITHMS)}")
    allowed = OPTIONS[algorithm]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"{name}: option(s) {unknown} do not apply to {algorithm}; "
                         f"it takes {sorted(allowed)}")
    return {**allowed, **options}


def _budget_use(q: np.ndarray, bits: int, x_min: int, x_max: int, tile_size: int | None) -> np.ndarray:
    lo, hi = accumulator.tile_ranges(q, x_min, x_max, tile_size or q.shape[1])
    use = np.maximum(hi / (2 ** (bits - 1) - 1), lo / -(2 ** (bits - 1)))
    return use.max(axis=1)


def _tile_bits(q: np.ndarray, x_min: int, x_max: int, tile_size: int | None, signed: bool) -> np.ndarray:
    lo, hi = accumulator.tile_ranges(q, x_min, x_max, tile_size or q.shape[1])
    return np.array([accumulator.min_bits(l, h, signed) for l, h in zip(lo.min(axis=0), hi.max(axis=0))])


def _objective(algorithm: str, stats: LayerStats, centre: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """(H, G) of the objective ||Xw - X̃q||² (OPTQ: G = H, its objective is ||X̃(w - q)||²),
    on inputs minus their means when ``centre``."""
    H = stats.H
    G = H if algorithm == "optq" else stats.G
    if not centre:
        return H, G
    mq = stats.mean_q
    Hc = (H.double() - torch.outer(mq, mq)).to(H.dtype)
    if algorithm == "optq":
        return Hc, Hc
    return Hc, (G.double() - torch.outer(mq, stats.mean_f)).to(G.dtype)


def _run(algorithm, v, H, G, L, constraint, opts, seed):
    if algorithm == "rtn":
        return rtn(v, L, constraint)
    if algorithm == "spfq":
        return spfq(v, H, G, L, order=opts["order"], constraint=constraint,
                    block_size=opts["block_size"], generator=torch.Generator().manual_seed(seed))
    if algorithm == "gpfq":
        q = gpfq(v, H, G, L, constraint=constraint, block_size=opts["block_size"], act_order=opts["act_order"])
    else:
        q = optq(v, H, L, constraint=constraint, percdamp=opts["percdamp"], block_size=opts["block_size"],
                 act_order=opts["act_order"], propagate_shrinkage=opts["propagate_shrinkage"])
    passes = opts["passes"] if opts["passes"] is not None else int(constraint is not None)
    if passes:
        q = axe.respend(q, v, H, G, constraint or axe.Levels(L), passes=passes, block_size=opts["block_size"])
    return q


def quantize_from_stats(weight, scale, stats: LayerStats | None, *, weight_bits: int, input_bits: int,
                        input_signed: bool, algorithm: str = "gpfq", accumulator_bits: int | None = None,
                        tile_size: int | None = None, seed: int = 0, name: str = "layer", device=None,
                        **options) -> tuple[torch.Tensor, QuantInfo]:
    """Quantize float ``weight`` [M, K] with per-channel ``scale`` [M] from calibration ``stats``.

    Computes on ``device`` (default: the device of ``stats``, the CPU without them); q and
    info.scale come back on the CPU whatever the device.
    Returns integer q (int64 [M, K], |q| <= 2^(weight_bits-1) - 1; the layer's weight
    becomes info.scale[:, None] * q, which is ``scale`` unless option ``rescale`` is on)
    and a QuantInfo. With ``accumulator_bits`` = P every row
    (every tile of ``tile_size`` inputs) has an exact worst-case dot product, over all
    integer inputs of the ``input_bits`` range, that fits a signed P-bit register.
    ``stats`` may be None for ``rtn``. Raises ValueError on bad shapes, unknown
    options and an infeasible P (naming the smallest feasible P).
    """
    start = time.perf_counter()
    opts = _check_options(algorithm, options, name)
    device = torch.device(device if device is not None else stats.device if stats is not None else "cpu")
    weight = torch.as_tensor(weight).to(device)
    if weight.ndim != 2:
        raise ValueError(f"{name}: weight must be [M, K] (Conv flattened to [C*kh*kw]), got {tuple(weight.shape)}")
    M, K = weight.shape
    require_finite(name, weight=weight)
    scale = torch.as_tensor(scale, dtype=torch.float64).to(device).reshape(-1)
    if scale.numel() == 1:
        scale = scale.repeat(M)
    require_finite(name, scale=scale)
    if scale.shape != (M,) or not bool(torch.all(scale > 0)):
        raise ValueError(f"{name}: scale must be {M} positive finite per-channel values, got shape "
                         f"{tuple(scale.shape)}")
    if tile_size is not None:
        tile_size = accumulator.check_bits(f"{name}: tile_size (None: one stage)", tile_size, 1, 2**62)
    if algorithm != "rtn":
        if stats is None:
            raise ValueError(f"{name}: {algorithm} needs calibration statistics (LayerStats)")
        if stats.K != K:
            raise ValueError(f"{name}: statistics are for K={stats.K} inputs, the weight has K={K}")
    dtype = stats.dtype if stats is not None else torch.float64
    # The walks round in ``dtype``: integers beyond its mantissa are not exact there.
    weight_bits = accumulator.check_bits(f"{name}: weight_bits", weight_bits, 2, mantissa_bits(dtype))
    input_bits = accumulator.check_bits(f"{name}: input_bits", input_bits, 1, mantissa_bits(dtype))
    if accumulator_bits is not None:
        accumulator_bits = accumulator.check_bits(f"{name}: accumulator_bits", accumulator_bits, 1, 2**62)
        axe.check_feasible(accumulator_bits, input_bits, input_signed, name)
    L = levels(weight_bits)
    v = (weight.to(torch.float64) / scale[:, None]).to(dtype)
    if not bool(torch.isfinite(v).all()):
        raise ValueError(f"{name}: weight / scale overflows {dtype} (largest |weight| "
                         f"{float(weight.abs().max()):.3g}, smallest scale {float(scale.min()):.3g}); "
                         f"the scales do not match the weights")

    x_min, x_max = accumulator.input_bounds(input_bits, input_signed)
    # At or above the data-type bound no choice of weights can overflow: nothing to constrain.
    binding = accumulator_bits is not None and accumulator_bits < accumulator.datatype_bound_bits(
        min(K, tile_size or K), input_bits, weight_bits, input_signed)
    rescale, centre = (binding and opts.get(k, False) for k in ("rescale", "centre"))
    H = G = None
    if stats is not None and algorithm != "rtn":
        H, G = (m.to(device) for m in _objective(algorithm, stats, centre))
        require_finite(f"{name}: calibration statistics", **{"H = X̃ᵀX̃": H, "G = X̃ᵀX": G})
    target = v
    if rescale:
        target = v * axe.fit_factor(v, axe.tile_index(K, tile_size, device), bits=accumulator_bits, x_min=x_min,
                                    x_max=x_max).to(v.dtype)[:, None]
    constraint = None
    if binding:
        constraint = axe.Constraint(target, bits=accumulator_bits, input_bits=input_bits,
                                    input_signed=input_signed, levels=L, tile_size=tile_size,
                                    soft_scale=opts["soft_scale"])
    q = _run(algorithm, target, H, G, L, constraint, opts, seed)
    require_finite(f"{name}: {algorithm} (statistics too large for {dtype}?)", **{"the quantized weights": q})
    # Exact integer checks of what the algorithms promise, before anything uses q.
    q_host = q.double().cpu().numpy()
    accumulator.check_levels(q_host, L, name)
    acc = accumulator.analyze(q_host, input_bits=input_bits, input_signed=input_signed,
                              weight_bits=weight_bits, tile_size=tile_size or 0)
    if accumulator_bits is not None:
        accumulator.check_budget(acc, accumulator_bits, name=name)
    q = q.round().to(torch.long)
    if rescale:
        scale = scale * axe.least_squares_gain(q, v, H, G)
    q, scale = q.cpu(), scale.cpu()
    qn = q.numpy()
    info = QuantInfo(
        algorithm=algorithm, options=opts, seconds=time.perf_counter() - start,
        weight_bits=weight_bits, input_bits=input_bits, input_signed=input_signed,
        accumulator_bits=accumulator_bits, tile_size=tile_size,
        l1=np.abs(qn).sum(axis=1),
        budget_use=(None if accumulator_bits is None
                    else _budget_use(qn, accumulator_bits, x_min, x_max, tile_size)),
        tile_bits=_tile_bits(qn, x_min, x_max, tile_size, acc.signed), accumulator=acc, scale=scale,
        centred=centre)
    return q, info


def quantize_layer(weight, scale, x_float, x_quant, *, weight_bits: int, input_bits: int,
                   input_signed: bool, algorithm: str = "gpfq", accumulator_bits: int | None = None,
                   tile_size: int | None = None, seed: int = 0, dtype=torch.float32, name: str = "layer",
                   device="cpu", **options) -> tuple[torch.Tensor, QuantInfo]:
    """``quantize_from_stats`` on statistics of one batch: ``x_float``, ``x_quant`` [n, K] are
    the layer's inputs in the float network and in the partly quantized one (ignored
    for ``rtn``); ``dtype`` is the precision of the statistics and of the sweeps, ``device``
    where they are computed.
    ``info.seconds`` includes collecting the statistics.
    """
    start = time.perf_counter()
    stats = None
    if algorithm != "rtn":
        stats = LayerStats.from_data(x_float, x_quant, cross=algorithm != "optq", dtype=dtype, device=device)
    q, info = quantize_from_stats(weight, scale, stats, weight_bits=weight_bits, input_bits=input_bits,
                                  input_signed=input_signed, algorithm=algorithm,
                                  accumulator_bits=accumulator_bits, tile_size=tile_size, seed=seed,
                                  name=name, device=device, **options)
    info.seconds = time.perf_counter() - start
    return q, info
