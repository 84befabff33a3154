"""Accuracy against accumulator width: ``axe-deploy sweep``.

For every method, target P, tile size T and seed the sweep quantizes the flow's model
and scores it on the test split; points are appended to ``sweep.json`` as they finish,
so an interrupted sweep resumes where it stopped. Methods:

- ``rtn``, ``gpfq``, ``optq``, ``spfq``: unconstrained (the ceiling); one point each per
  seed, whose P is the widest exact accumulator the quantized model needs; GPFQ and OPTQ
  get the coordinate-descent pass that AXE runs (option ``passes``), so the ceiling is fair;
- ``axe-<algorithm>``: the same with AXE at target P (guaranteed by construction);
- ``naive``: round-to-nearest after lowering input, activation and weight bits until
  every layer's data-type bound (per tile of T inputs when T > 0) fits P;
- ``brevitas-a2gpfq``, ``brevitas-a2gptq``: Brevitas 0.13.4's own accumulator-aware
  GPFQ/GPTQ (``brevitas_examples.common.axe``) on the same model and calibration data,
  after Brevitas's whole-model activation calibration (our PTQ calibrates as
  ``ModelBundle.quantize`` does: whole-model for the driver, block by block for LMs).
  Brevitas assumes full-range weights; the point records the exact width its weights need
  (``exact_bits``) and whether that fits P (``fits``).

A P below the smallest width a layer's inputs allow is recorded as infeasible (metric None,
``infeasible``: true) and the sweep goes on; a point that fails is recorded with its
``error`` and run again when the sweep is resumed. Points run in this process one after
another, or as Ray tasks (``executor``, axe_deploy/sweep_ray.py); either way this process is
the only writer of sweep.json.
"""

from __future__ import annotations

from axe_deploy.flow.config import FlowConfig

import copy
import json
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from axe_deploy.core import accumulator
from axe_deploy.core.layer_glob import for_every_layer

from axe_deploy import zoo
from axe_deploy.ptq import ALGORITHMS, Infeasible, resolve_device, smallest_feasible_bits
from axe_deploy.quant.driver import calibrate, input_datatypes, quant_layer_names

UNCONSTRAINED = ALGORITHMS
BREVITAS = ("brevitas-a2gpfq", "brevitas-a2gptq")
METHODS = UNCONSTRAINED + tuple(f"axe-{a}" for a in UNCONSTRAINED) + ("naive",) + BREVITAS


# what each list of a sweep may hold: (option, smallest, largest)
LIMITS = {"bits": ("--accumulator-bits", 2, 64), "tiles": ("--tile-size", 0, None), "seeds": ("--seeds", 0, None)}


def parse_range(text: str, option: str = "range") -> list[int]:
    """'10:20' (inclusive, LO <= HI), '12,14,16' or '13'; a one-line ValueError naming
    ``option`` otherwise."""
    how = f"{option} '{text}': use LO:HI with LO <= HI (e.g. 10:20), a comma list (e.g. 12,14,16) or one integer"
    try:
        if ":" in text:
            lo, hi = (int(v) for v in text.split(":"))
            values = list(range(lo, hi + 1))
        else:
            values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ValueError(how) from None
    if not values:
        raise ValueError(how)
    return values


def check_request(*, bits: list[int], tiles: list[int], methods: list[str], seeds: list[int]) -> None:
    """A one-line ValueError for a sweep that cannot run as asked, before anything is written."""
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; known: {', '.join(METHODS)}")
    if not methods:
        raise ValueError(f"--methods: name at least one of {', '.join(METHODS)}")
    for name, values in (("bits", bits), ("tiles", tiles), ("seeds", seeds)):
        option, lo, hi = LIMITS[name]
        if not values and (name == "seeds" or any(m not in UNCONSTRAINED for m in methods)):
            raise ValueError(f"{option}: no values; give LO:HI, a comma list or one integer")
        bad = [v for v in values if v < lo or (hi is not None and v > hi)]
        if bad:
            allowed = f"between {lo} and {hi}" if hi is not None else f">= {lo}"
            raise ValueError(f"{option}: {bad} out of range; values must be {allowed}")


def _bundle(cfg: FlowConfig, *, weight_bits: int, act_bits: int, input_bits: int, seed: int, device: str | None = None):
    bundle = zoo.build(cfg.model.name, weight_bits=weight_bits, act_bits=act_bits, input_bits=input_bits,
                       seed=seed, calibration_samples=cfg.quant.calibration_samples)
    bundle.device = device or str(resolve_device(cfg.quant.device))
    return bundle


def _layer_inputs(bundle) -> list[tuple[int, bool]]:
    """(K, input signed) of every quantized layer, in order."""
    model = bundle.quant_model
    types = input_datatypes(model, bundle.calib_x[:2])
    return [(model.get_submodule(n).weight[0].numel(), types[n][1]) for n in quant_layer_names(model)]


def naive_bits(layers: list[tuple[int, bool]], P: int, weight_bits: int, act_bits: int, input_bits: int,
               tile_size: int = 0) -> tuple[int, int, int] | None:
    """(weight, activation, input) bits at which every layer's data-type bound, over its K
    inputs (or a tile of ``tile_size``) of their signedness, fits P; the first layer sees
    the input, the rest activations. Lowers, one bit at a time, the widest of the types
    that a layer still over P uses (weights at least 2 bits, the others 1); None when
    nothing fits."""
    w, a, i = weight_bits, act_bits, input_bits

    def failing():
        return [j for j, (k, signed) in enumerate(layers)
                if accumulator.datatype_bound_bits(min(k, tile_size or k), i if j == 0 else a, w, signed) > P]

    while bad := failing():
        options = [(w, "w")] + [(i, "i")] * (0 in bad) + [(a, "a")] * (max(bad) > 0)
        options = [(v, n) for v, n in options if v > (2 if n == "w" else 1)]
        if not options:
            return None
        _, which = max(options)
        w, a, i = w - (which == "w"), a - (which == "a"), i - (which == "i")
    return w, a, i


def exact_bits(model: torch.nn.Module, calib_x: torch.Tensor, tile_size: int = 0) -> int:
    """Widest exact (inner, per tile when T > 0) accumulator any layer of ``model`` needs."""
    widest = 0
    for name, (bits, signed) in input_datatypes(model, calib_x[:2]).items():
        layer = model.get_submodule(name)
        q = layer.quant_weight().int().reshape(layer.weight.shape[0], -1).numpy()
        info = accumulator.analyze(q, input_bits=bits, input_signed=signed,
                                   weight_bits=int(layer.quant_weight().bit_width.item()), tile_size=tile_size)
        widest = max(widest, info.exact_bits)
    return widest


def smallest_feasible_p(bundle) -> int:
    """Smallest P at which every quantized layer of ``bundle`` can hold a weight of +-1."""
    types = input_datatypes(bundle.quant_model, bundle.calib_x[:2])
    return max(smallest_feasible_bits(bits, signed) for bits, signed in types.values())


def run_point(cfg: FlowConfig, method: str, P: int | None, T: int, seed: int) -> dict:
    """One point of the sweep; raises ``Infeasible`` for a P below what a layer's inputs allow."""
    q = cfg.quant.as_dict()  # the driver's settings
    start = time.perf_counter()
    bits = (q["weight_bits"], q["act_bits"], q["input_bits"])
    if method == "naive":
        probe = _bundle(cfg, weight_bits=bits[0], act_bits=bits[1], input_bits=bits[2], seed=seed)
        found = naive_bits(_layer_inputs(probe), P, *bits, tile_size=T)
        if found is None:
            return {"method": method, "P": P, "T": T, "seed": seed, "metric": None,
                    "seconds": time.perf_counter() - start, "note": "no bit widths fit P"}
        bits = found
    bundle = _bundle(cfg, weight_bits=bits[0], act_bits=bits[1], input_bits=bits[2], seed=seed)
    # a layer's inputs of b bits need at most b + 1: only a P that low can be infeasible
    low = P is not None and P <= max(bits[1], bits[2]) + 1
    if low and method != "naive" and P < (p_min := smallest_feasible_p(bundle)):
        raise Infeasible(f"P={P} is infeasible for {cfg.model.name}: the inputs of a layer need "
                         f"P >= {p_min} for a single weight of +-1")
    algorithm = method.removeprefix("axe-") if method != "naive" else "rtn"
    # the sweep sets P and T for every layer: per-layer targets of the flow file do not apply
    qcfg = dict(for_every_layer(q, accumulator_bits=P if method.startswith("axe-") else 0, tile_size=T),
                algorithm=algorithm, weight_bits=bits[0], act_bits=bits[1], input_bits=bits[2])
    if method in UNCONSTRAINED:
        # the same coordinate-descent pass AXE gets, so the ceiling is a fair one
        qcfg["options"] = {"passes": 1, **(q.get("options") or {})}
    if method in BREVITAS:
        calibrate(bundle.quant_model, bundle.calib_x)  # Brevitas's flow: calibration, then GPxQ
        bundle.brevitas_axe(method.removeprefix("brevitas-"), P, T)
        need = exact_bits(bundle.quant_model, bundle.calib_x, T)
    else:
        infos = bundle.quantize(qcfg, seed=seed, progress=False)
        need = max(i.exact_bits for i in infos.values() if i is not None)
    point = {"method": method, "P": P if P is not None else need, "T": T, "seed": seed,
             "metric": bundle.evaluate(bundle.quant_model), "seconds": round(time.perf_counter() - start, 3),
             "exact_bits": need, "bits": {"weight": bits[0], "act": bits[1], "input": bits[2]}}
    if method in BREVITAS:
        point["fits"] = need <= P
    if method.startswith("axe-") and P is not None and need > P:
        raise AssertionError(f"{method} at P={P}: a layer needs {need} bits; the guarantee is broken")
    return point


def point_or_record(cfg: FlowConfig, method: str, P: int | None, T: int, seed: int) -> dict:
    """``run_point``, or the record of an infeasible or failed point; never raises an
    Exception (what executors run for every point)."""
    start = time.perf_counter()
    try:
        point = run_point(copy.deepcopy(cfg), method, P, T, seed)
    except Infeasible as e:
        point = {"method": method, "P": P, "T": T, "seed": seed, "metric": None, "infeasible": True,
                 "note": str(e)}
    except Exception as e:  # recorded; the sweep goes on and a resumed sweep runs it again
        point = failed_point((method, P, T, seed), f"{type(e).__name__}: {e}", time.perf_counter() - start)
    point.setdefault("seconds", round(time.perf_counter() - start, 3))
    point["P_requested"] = P
    return point


def failed_point(job: tuple, error: str, seconds: float = 0.0) -> dict:
    """The record of a point that raised ``error`` (a resumed sweep runs it again)."""
    method, P, T, seed = job
    return {"method": method, "P": P, "T": T, "seed": seed, "metric": None, "seconds": round(seconds, 3),
            "error": error, "P_requested": P}


def in_process(cfg: FlowConfig, jobs: list[tuple]) -> Iterator[dict]:
    """The default executor: the points one after another, in this process."""
    for job in jobs:
        yield point_or_record(cfg, *job)


def job_of(point: dict) -> tuple:
    return point["method"], point.get("P_requested", point["P"]), point["T"], point["seed"]


def plan_jobs(*, bits: list[int], tiles: list[int], methods: list[str], seeds: list[int]) -> list[tuple]:
    """Every (method, P, T, seed) of the sweep, unconstrained methods once per seed (P None, T 0)."""
    jobs = []
    for method in methods:
        for seed in seeds:
            if method in UNCONSTRAINED:
                jobs.append((method, None, 0, seed))
            else:
                jobs += [(method, P, T, seed) for P in bits for T in tiles]
    return list(dict.fromkeys(jobs))


Executor = Callable[[dict, list[tuple]], Iterable[dict]]


def sweep(cfg: FlowConfig, out: Path, *, bits: list[int], tiles: list[int], methods: list[str], seeds: list[int],
          progress: bool = True, executor: Executor = in_process, device_check: bool = True) -> dict:
    """Run the points of the sweep that ``out/sweep.json`` does not hold yet (failed ones again)
    with ``executor`` (it yields points as they finish), appending each to sweep.json.
    ``device_check``: the flow's quant.device must exist here (an executor that places
    points elsewhere, such as Ray, checks it there and passes False)."""
    asked = dict(bits=bits, tiles=tiles, methods=methods, seeds=seeds)
    check_request(**asked)
    if cfg.model.module or cfg.model.onnx:  # else it would sweep the default zoo model
        raise ValueError("sweep runs zoo models ([model] name) only; a [model] module or onnx flow is not swept yet")
    try:
        local = resolve_device(cfg.quant.device)
    except ValueError:
        if device_check:
            raise
        local = resolve_device("auto")  # the float metrics on the driver; points run where the GPUs are
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sweep.json"
    result = json.loads(path.read_text()) if path.is_file() else None
    if result is None or result.get("model") != cfg.model.name:
        result = {"model": cfg.model.name, "points": []}
    floats = result.setdefault("float_metrics", {})
    # the float model of every seed (digits and LMs are trained per seed): trained here, once,
    # into the zoo cache, where every point (and every Ray worker on this machine) loads it
    for seed in seeds:
        if str(seed) not in floats:
            bundle = _bundle(cfg, weight_bits=cfg.quant.weight_bits, act_bits=cfg.quant.act_bits,
                             input_bits=cfg.quant.input_bits, seed=seed, device=str(local))
            result.update(metric_name=bundle.metric_name, higher_is_better=bundle.higher_is_better)
            floats[str(seed)] = bundle.evaluate(bundle.float_model)
    result["float_metric"] = float(np.mean(list(floats.values())))
    result["points"] = [p for p in result["points"] if "error" not in p]  # failed points run again
    done = {job_of(p) for p in result["points"]}
    jobs = plan_jobs(**asked)
    todo = [job for job in jobs if job not in done]
    with tqdm(total=len(jobs), initial=len(jobs) - len(todo), desc="sweep", unit="point",
              disable=not progress) as bar:
        for point in executor(cfg, todo):
            result["points"].append(point)
            path.write_text(json.dumps(result, indent=2) + "\n")
            bar.update()
    result["summary"] = summary(result)
    path.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, out / "sweep.png")
    return result


def select(result: dict, *, bits: list[int], tiles: list[int], methods: list[str], seeds: list[int]) -> dict:
    """``result`` with only the points of these methods, seeds, P and T (and its summary)."""
    points = [p for p in result["points"] if p["method"] in methods and p["seed"] in seeds
              and (p["method"] in UNCONSTRAINED or (p.get("P_requested", p["P"]) in bits and p["T"] in tiles))]
    shown = dict(result, points=points)
    shown["summary"] = summary(shown)
    return shown


def _mean_by(result: dict, method: str, T: int | None = None) -> dict[int, float]:
    """Mean metric over seeds per P of ``method`` (at tile ``T`` if given); None when any seed failed."""
    by_p: dict[int, list] = {}
    for p in result["points"]:
        if p["method"] == method and (T is None or p["T"] == T):
            by_p.setdefault(p["P"], []).append(p["metric"])
    return {P: (None if None in v else float(np.mean(v))) for P, v in sorted(by_p.items())}


def smallest_p_within(means: dict[int, float], threshold: float, higher_is_better: bool) -> int | None:
    """Smallest swept P from which on every larger swept P meets ``threshold``."""
    def good(v):
        return v is not None and (v >= threshold if higher_is_better else v <= threshold)
    found = None
    for P in sorted(means, reverse=True):
        if not good(means[P]):
            break
        found = P
    return found


def summary(result: dict, tolerance: float = 0.01) -> list[dict]:
    """For every AXE method and T: the smallest P within ``tolerance`` (relative) of its
    unconstrained algorithm's mean metric, the P the naive baseline needs for the same
    quality (one stage, or the same T), and the difference in bits."""
    hib = result["higher_is_better"]
    rows = []
    for method, T in sorted({(p["method"], p["T"]) for p in result["points"] if p["method"].startswith("axe-")}):
        ceiling = [p["metric"] for p in result["points"] if p["method"] == method.removeprefix("axe-")]
        if not ceiling:
            continue
        reference = float(np.mean(ceiling))
        threshold = reference * (1 - tolerance if hib else 1 + tolerance)
        naive_ps = _mean_by(result, "naive", T)
        axe_p = smallest_p_within(_mean_by(result, method, T), threshold, hib)
        naive_p = smallest_p_within(naive_ps, threshold, hib)
        row = {"method": method, "T": T, "unconstrained": reference, "threshold": threshold,
               "P_within": axe_p, "naive_P_within": naive_p,
               "bits_saved": None if axe_p is None or naive_p is None else naive_p - axe_p}
        if naive_p is None and naive_ps:
            row["naive_needs_more_than"] = max(naive_ps)  # not reached in the swept range
            reached = [v for v in naive_ps.values() if v is not None]
            row["naive_best"] = (max if hib else min)(reached) if reached else None
        rows.append(row)
    return rows


def plot(result: dict, path: Path) -> None:
    import matplotlib
    import matplotlib.ticker
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    # one colour per algorithm: its unconstrained point, its AXE line and Brevitas's A2 line
    colour = {"rtn": "C2", "gpfq": "C0", "optq": "C1", "spfq": "C3", "naive": "gray",
              "brevitas-a2gpfq": "C0", "brevitas-a2gptq": "C1"}
    groups: dict[tuple, list] = {}
    for p in result["points"]:
        if p["metric"] is not None:
            groups.setdefault((p["method"], p["T"]), []).append(p)
    tiles = sorted({T for _, T in groups})
    for (method, T), pts in sorted(groups.items()):
        label = method + (f" T={T}" if T else "")
        c = colour[method.removeprefix("axe-")]
        if method in UNCONSTRAINED:
            mean = np.mean([p["metric"] for p in pts])
            ax.plot([np.mean([p["P"] for p in pts])], [mean], "*", ms=11, color=c, label=f"{label} (unconstrained)")
            continue
        by_p: dict[int, list] = {}
        for p in pts:
            by_p.setdefault(p["P"], []).append(p["metric"])
        xs = sorted(by_p)
        style = "--" if method in BREVITAS else ":" if method == "naive" else "-"
        ax.errorbar(xs, [np.mean(by_p[x]) for x in xs], yerr=[np.std(by_p[x]) for x in xs], color=c, ls=style,
                    marker="osd^v"[tiles.index(T) % 5], ms=4, capsize=2, label=label)
    if not result["higher_is_better"]:
        ax.set_yscale("log")  # perplexity: the baselines fall off by orders of magnitude
        ax.yaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        lo, hi = ax.get_ylim()
        if hi / lo < 30:  # label the minor ticks only while they do not crowd
            ax.yaxis.set_minor_formatter(matplotlib.ticker.ScalarFormatter())
    ax.axhline(result["float_metric"], color="black", lw=1, label="float")
    ax.set_xlabel("accumulator bits P (inner, per tile, for T > 0)")
    ax.set_ylabel(result["metric_name"])
    ax.set_title(f"{result['model']}: {result['metric_name']} vs accumulator width")
    ax.legend(fontsize=7, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
