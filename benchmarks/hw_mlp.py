"""Hardware backend on a digits-sized MLP (64 -> 256 -> 128 -> 10, W4 A4, UINT8 input).

Random INT4 weights, thresholds at quantiles of the real accumulator values (plus a few
outside the register range), accumulator widths from ``axe_deploy.core.accumulator``; inputs
are the scikit-learn digits images scaled to UINT8 (360 of them, the size of the test
split). Prints and writes (``--out``/hw_mlp.json) the time of each step: RTL generation,
lint, simulator build, simulation, yosys synthesis; checks the simulation bit-exact against
``chain_reference`` and reports the measured vs estimated cycles and the synthesis figures.

    python benchmarks/hw_mlp.py [--out DIR] [--quick] [--target-cycles N] [--simulator S]
                                [--jobs N] [--no-synth]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from axe_deploy.core.accumulator import analyze
from axe_deploy.hw.folding import choose_folding
from axe_deploy.hw.sim import lint, simulate
from axe_deploy.hw.spec import MVAULayer, chain_reference, estimate_cycles, estimate_latency
from axe_deploy.hw.synth import synthesize
from axe_deploy.hw.verilog import write_rtl


def digits_inputs(n: int) -> np.ndarray:
    from sklearn.datasets import load_digits
    x = load_digits().data[-n:]
    return (x * 15).astype(np.int64)  # 0..16 -> 0..240, UINT8


def random_mlp(dims: list[int], x: np.ndarray, rng: np.random.Generator,
               weight_bits: int = 4, act_bits: int = 4) -> list[MVAULayer]:
    """Layers with random weights; thresholds from the accumulator values on ``x``."""
    layers, in_bits = [], 8
    for i, (mw, mh) in enumerate(zip(dims, dims[1:])):
        hi = 2 ** (weight_bits - 1)
        w = np.clip(np.rint(rng.normal(0, hi / 2, size=(mh, mw))), -hi, hi - 1).astype(np.int64)
        info = analyze(w, input_bits=in_bits, input_signed=False, weight_bits=weight_bits)
        acc = x @ w.T
        last = i == len(dims) - 2
        thr = None
        if not last:
            n_thr = 2**act_bits - 1
            qs = np.quantile(acc, np.linspace(0.3, 0.98, n_thr), axis=0).T
            thr = np.sort(np.rint(qs).astype(np.int64), axis=1)
            thr[: mh // 8, -1] = info.hi + 1  # never reached
            thr[mh // 8: mh // 4, 0] = info.lo - 1  # always reached
            thr = np.sort(thr, axis=1)
        layers.append(MVAULayer(f"fc{i}", mw, mh, 1, 1, in_bits, False, weight_bits,
                                info.exact_bits, info.signed, w, thr))
        if not last:
            x = layers[-1].reference(x)
            in_bits = act_bits
    return layers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="build/bench/hw_mlp")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 8 -> 16 -> 4 MLP, 20 vectors, Icarus unless --simulator")
    ap.add_argument("--target-cycles", type=int, default=256)
    ap.add_argument("--simulator", default=None, help="verilator | icarus (default: auto)")
    ap.add_argument("--no-synth", action="store_true")
    ap.add_argument("--jobs", type=int, default=1, help="parallel yosys runs")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    if args.quick:
        dims, x, target = [8, 16, 4], rng.integers(0, 256, size=(20, 8)), 16
    else:
        dims, x, target = [64, 256, 128, 10], digits_inputs(360), args.target_cycles
    times = {}
    t = time.perf_counter()
    layers = choose_folding(random_mlp(dims, x, rng), target_cycles=target)
    design = write_rtl(layers, out / "rtl")
    times["rtl_s"] = time.perf_counter() - t
    t = time.perf_counter()
    messages = lint(design)
    times["lint_s"] = time.perf_counter() - t
    ref = chain_reference(layers, x)
    simulator = args.simulator or ("icarus" if args.quick else "auto")
    sim = simulate(design, x, simulator=simulator)
    times["sim_build_s"], times["sim_run_s"] = sim.build_s, sim.run_s
    exact = int((sim.outputs == ref).all(axis=1).sum()) if sim.outputs.shape == ref.shape else 0
    result = {
        "layers": [{"name": L.name, "MW": L.MW, "MH": L.MH, "PE": L.PE, "SIMD": L.SIMD,
                    "acc_bits": L.acc_bits, "cycles_estimated": estimate_cycles(L)}
                   for L in layers],
        "lint_clean": messages == "",
        "simulator": sim.simulator, "vectors": len(x), "bit_exact_vectors": exact,
        "overflows": sim.total_overflows,
        "interval_measured": sim.interval,
        "interval_estimated": max(estimate_cycles(L) for L in layers),
        "latency_measured": sim.latency,
        "latency_estimated": sum(estimate_latency(L) for L in layers),
        "times": times,
    }
    if not args.no_synth:
        syn = synthesize(design, jobs=args.jobs)
        times["synth_s"] = syn.seconds
        result["synth"] = syn.top
        for entry in result["layers"]:
            entry.update(syn.layers[entry["name"]])
    (out / "hw_mlp.json").write_text(json.dumps(result, indent=2))
    for entry in result["layers"]:
        print("  ".join(f"{k}={v}" for k, v in entry.items()))
    print(f"lint clean: {result['lint_clean']}  bit-exact: {exact}/{len(x)} ({sim.simulator})  "
          f"overflows: {sim.total_overflows}")
    print(f"cycles/image: measured {sim.interval:.1f}, estimated {result['interval_estimated']}; "
          f"latency measured {sim.latency}, estimated {result['latency_estimated']}")
    if "synth" in result:
        print("synth (top):", result["synth"])
    print("times:", {k: round(v, 2) for k, v in times.items()})
    if exact != len(x) or not result["lint_clean"]:
        raise SystemExit("RTL does not match the reference or lint is not clean")


if __name__ == "__main__":
    main()
