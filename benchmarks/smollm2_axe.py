"""SmolLM2-135M, W4A8: unconstrained PTQ vs AXE with 16-bit inner accumulators (T = 64, 128).

Every Linear of the 30 decoder layers gets 4-bit per-channel weights and a signed 8-bit
per-tensor input quantizer (axe_deploy.zoo.smollm2); the model is quantized decoder by
decoder (``quantize_blockwise``, the project's PTQ core per Linear) on 32 × 256 tokens of
the training plays and scored by perplexity on ~8k tokens of held-out plays. For every
AXE result the exact worst-case range of every tile of every Linear is checked against
the 16-bit register with axe_deploy.core.accumulator; for the unconstrained model the table
shows what its tiles would need. Target: AXE at T = 64 within 5 % of unconstrained.
--quick runs the same code on the 2-layer random ``llama-tiny`` (no download).
Writes results.json and perplexity.png to --out.

    python benchmarks/smollm2_axe.py [--quick] [--algorithm optq|gpfq] [--out build/bench/smollm2_axe]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import torch

from axe_deploy.core import accumulator

from axe_deploy import zoo
from axe_deploy.quant.blockwise import quantize_blockwise


def tile_bits(model: torch.nn.Module, infos: dict, tile_size: int | None) -> int:
    """Widest exact (tile) accumulator over all quantized Linears, from their integer weights
    (``tile_size`` None: one stage)."""
    widest = 0
    for name, info in infos.items():
        qw = model.get_submodule(name).quant_weight()
        q = torch.round(qw.value / qw.scale).to(torch.long).numpy()
        lo, hi = accumulator.tile_ranges(q, *accumulator.input_bounds(info.input_bits, info.input_signed),
                                         tile_size or q.shape[1])
        widest = max(widest, accumulator.min_bits(lo.min(), hi.max()))
    return widest


def run(bundle, pristine, label: str, algorithm: str, P: int | None, T: int | None, tiles, seed: int) -> dict:
    start = time.perf_counter()
    model = copy.deepcopy(pristine)
    cfg = {"algorithm": algorithm, "weight_bits": 4, "accumulator_bits": P or 0, "tile_size": T or 0}
    if P is None and algorithm != "rtn":
        cfg["options"] = {"passes": 1}  # the coordinate-descent pass AXE runs: a fair ceiling
    infos = quantize_blockwise(bundle.float_model, model, bundle.calib_x, cfg, seed=seed)
    ptq_s = time.perf_counter() - start
    metric = bundle.evaluate(model)
    widths = {t: tile_bits(model, infos, t) for t in tiles}
    point = {"label": label, "algorithm": algorithm, "P_inner": P, "T": T, "perplexity": metric,
             "ptq_seconds": round(ptq_s, 1), "seconds": round(time.perf_counter() - start, 1),
             "tile_bits": {f"T={t}": widths[t] for t in tiles}, "bits_one_stage": tile_bits(model, infos, None)}
    if P is not None and widths[T] > P:
        raise AssertionError(f"{label}: a tile needs {widths[T]} bits > P_I = {P}; the guarantee is broken")
    return point


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["float"] + [p["label"] for p in result["points"]]
    values = [result["float_perplexity"]] + [p["perplexity"] for p in result["points"]]
    fig, ax = plt.subplots(figsize=(6.5, 4))
    ax.bar(labels, values, color=["gray"] + ["C0"] * len(result["points"]))
    for i, v in enumerate(values):
        ax.text(i, v, f"{v:.2f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("perplexity (held-out plays)")
    ax.set_title(f"{result['model']}: W4A8, {result['algorithm']}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("build/bench/smollm2_axe"))
    ap.add_argument("--quick", action="store_true", help="llama-tiny instead of SmolLM2 (smoke run)")
    ap.add_argument("--algorithm", default="optq", choices=["optq", "gpfq", "rtn"])
    ap.add_argument("--threads", type=int, default=int(os.environ.get("AXE_DEPLOY_THREADS", "2")))
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    name, P, tiles = ("llama-tiny", 13, (16, 32)) if args.quick else ("smollm2-135m", 16, (64, 128))
    bundle = zoo.build(name, weight_bits=4, act_bits=8, input_bits=8, seed=args.seed)
    load_s = time.perf_counter() - start
    pristine = bundle.quant_model
    float_ppl = bundle.evaluate(bundle.float_model)
    points = [run(bundle, pristine, "unconstrained", args.algorithm, None, None, tiles, args.seed)]
    points += [run(bundle, pristine, f"AXE P_I={P} T={T}", args.algorithm, P, T, tiles, args.seed)
               for T in tiles]
    base = points[0]["perplexity"]
    for p in points:
        p["vs_unconstrained"] = p["perplexity"] / base - 1
    result = {"model": name, "algorithm": args.algorithm, "threads": args.threads, "float_perplexity": float_ppl,
              "calibration_tokens": bundle.calib_x.numel(), "eval_tokens": bundle.test_y.numel(),
              "load_seconds": round(load_s, 1), "points": points,
              "target": "AXE T=64 within 5% of unconstrained", "seconds": round(time.perf_counter() - start, 1)}
    result["target_met"] = bool(points[1]["vs_unconstrained"] <= 0.05)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out / "perplexity.png")

    print(f"{name} ({result['calibration_tokens']} calibration, {result['eval_tokens']} eval tokens), "
          f"{args.algorithm}, {args.threads} threads; float perplexity {float_ppl:.3f}")
    print(f"{'':<22}{'ppl':>9}{'vs unc.':>9}" + "".join(f"{f'T={t} bits':>11}" for t in tiles)
          + f"{'1-stage':>8}{'s':>7}")
    for p in points:
        print(f"{p['label']:<22}{p['perplexity']:>9.3f}{p['vs_unconstrained']:>+9.2%}"
              + "".join(f"{b:>11}" for b in p["tile_bits"].values()) + f"{p['bits_one_stage']:>8}{p['seconds']:>7.0f}")
    print(f"target (AXE T={tiles[0]} within 5%): {'met' if result['target_met'] else 'NOT met'}; "
          f"total {result['seconds']:.0f} s (load {load_s:.0f} s); wrote {args.out}/results.json")


if __name__ == "__main__":
    main()
