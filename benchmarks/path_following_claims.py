"""The path-following papers' claims, reproduced on one layer with Gaussian weights and inputs.

1. Over-parametrisation (Lybrand & Saab 2021; Zhang, Zhou & Saab 2023): with m samples
   fixed and N0 inputs growing, the relative squared error ||X(W − Ŵ)ᵀ||² / ||XWᵀ||² of
   GPFQ and SPFQ decays essentially like m / N0 (log-log slope ≈ −1, up to a log factor),
   while round-to-nearest's stays flat. b-bit alphabet, per-neuron scale max|w| / L.
2. SPFQ's bit budget (Zhang & Saab 2023): on a fixed grid δ, a b-bit alphabet gives the
   same error as the infinite alphabet (no clipping) once b is of order log log N; we
   report error(b) / error(∞) and the smallest b within 0.1 % of it, for growing N.

Reference in the same run: the paper's literal GPFQ walk (error vector u, one neuron at
a time, numpy) against axe_deploy.ptq's blocked GPFQ — the share of equal integers.
Writes claims.json and claims.png to --out.

    python benchmarks/path_following_claims.py [--quick] [--out build/bench/claims]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
import numpy as np  # noqa: E402
import torch  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from axe_deploy.ptq import quantize_layer  # noqa: E402


def gaussian_layer(M: int, N: int, m: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights W [M, N] and inputs X [m, N], iid N(0, 1), float64."""
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(M, N, generator=g, dtype=torch.float64),
            torch.randn(m, N, generator=g, dtype=torch.float64))


def relative_error(W: torch.Tensor, W_hat: torch.Tensor, X: torch.Tensor) -> float:
    return float(((X @ (W - W_hat).T) ** 2).sum() / ((X @ W.T) ** 2).sum())


def quantize(W, X, scale, bits: int, algorithm: str, seed: int) -> torch.Tensor:
    """Ŵ = scale · q from axe_deploy.ptq (X̃ = X: a single layer)."""
    q, _ = quantize_layer(W, scale, X, X, weight_bits=bits, input_bits=8, input_signed=True,
                          algorithm=algorithm, seed=seed, dtype=torch.float64)
    return scale[:, None] * q.to(scale.dtype)


def gpfq_literal(W: np.ndarray, X: np.ndarray, scale: np.ndarray, L: int) -> np.ndarray:
    """The paper's walk, neuron by neuron: u_t = u_{t-1} + w_t X_t − q_t X_t,
    q_t = Q(⟨X_t, u_{t-1} + w_t X_t⟩ / ||X_t||²) on the grid scale·{−L..L}."""
    q = np.zeros(W.shape)
    norms = (X**2).sum(axis=0)
    for i in range(W.shape[0]):
        u = np.zeros(X.shape[0])
        for t in range(W.shape[1]):
            target = u + W[i, t] * X[:, t]
            q[i, t] = np.clip(np.round(X[:, t] @ target / norms[t] / scale[i]), -L, L)
            u = target - scale[i] * q[i, t] * X[:, t]
    return q


def error_vs_n0(n0s, *, m: int, M: int, bits: int, seeds, algorithms=("rtn", "gpfq", "spfq")) -> dict:
    """Mean relative squared error per algorithm and N0, and the log-log slope fitted over N0 >= 4m."""
    L = 2 ** (bits - 1) - 1
    errors = {a: [] for a in algorithms}
    for N0 in tqdm(n0s, desc="error vs N0", unit="N0"):
        per = {a: [] for a in algorithms}
        for seed in seeds:
            W, X = gaussian_layer(M, N0, m, seed)
            scale = W.abs().amax(dim=1) / L
            for a in algorithms:
                per[a].append(relative_error(W, quantize(W, X, scale, bits, a, seed), X))
        for a in algorithms:
            errors[a].append(float(np.mean(per[a])))
    n = np.array(n0s, dtype=float)
    fit = n >= 4 * m

    def slope(x, a):
        return float(np.polyfit(np.log(x[fit]), np.log(np.array(errors[a])[fit]), 1)[0])

    # The bounds are m·log(N0)/N0: against N0/log(N0) the slope should be -1 itself.
    return {"N0": list(n0s), "m": m, "M": M, "bits": bits, "seeds": list(seeds), "errors": errors,
            "slope_fit_from_N0": 4 * m, "slopes": {a: slope(n, a) for a in algorithms},
            "slopes_vs_N0_over_log_N0": {a: slope(n / np.log(n), a) for a in algorithms}}


def bit_budget(ns, bit_list, *, m: int, M: int, delta: float, seeds, tol: float = 1e-3) -> dict:
    """SPFQ on the grid δ·{−L..L} (L = 2^(b−1) − 1) against the unclipped grid (b = 24):
    ratio error(b) / error(∞) per N, and per N the smallest b with ratio <= 1 + tol."""
    ratios, inf_errors, b_star = {}, {}, {}
    for N in tqdm(ns, desc="SPFQ bits", unit="N"):
        errs = {b: [] for b in [*bit_list, 24]}
        for seed in seeds:
            W, X = gaussian_layer(M, N, m, seed)
            scale = torch.full((M,), delta, dtype=torch.float64)
            for b in errs:
                errs[b].append(relative_error(W, quantize(W, X, scale, b, "spfq", seed), X))
        inf = float(np.mean(errs[24]))
        ratios[N] = [float(np.mean(errs[b])) / inf for b in bit_list]
        inf_errors[N] = inf
        b_star[N] = next((b for b, r in zip(bit_list, ratios[N]) if r <= 1 + tol), None)
    return {"N": list(ns), "bits": list(bit_list), "m": m, "M": M, "delta": delta, "tol": tol,
            "seeds": list(seeds), "ratio": {str(n): r for n, r in ratios.items()},
            "infinite_alphabet_error": {str(n): e for n, e in inf_errors.items()},
            "b_star": {str(n): b for n, b in b_star.items()},
            "log2_log2_N": {str(n): float(np.log2(np.log2(n))) for n in ns}}


def reference_check(sizes, *, m: int, M: int, bits: int) -> dict:
    """Share of integers where axe_deploy's GPFQ equals the literal walk, per N0."""
    L = 2 ** (bits - 1) - 1
    agree = {}
    for N0 in sizes:
        W, X = gaussian_layer(M, N0, m, seed=100 + N0)
        scale = W.abs().amax(dim=1) / L
        ours = quantize(W, X, scale, bits, "gpfq", 0) / scale[:, None]
        ref = gpfq_literal(W.numpy(), X.numpy(), scale.numpy(), L)
        agree[str(N0)] = float(np.mean(np.rint(ours.numpy()) == ref))
    return agree


def plot(result: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    a, b = result["error_vs_n0"], result["bit_budget"]
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.3))
    for alg, errs in a["errors"].items():
        ax[0].loglog(a["N0"], errs, "o-", label=f"{alg} (slope {a['slopes'][alg]:.2f}; "
                     f"{a['slopes_vs_N0_over_log_N0'][alg]:.2f} vs N0/log N0)")
    n0 = np.array(a["N0"], dtype=float)
    ref = a["errors"]["gpfq"][-1] * n0[-1] / n0
    ax[0].loglog(n0, ref, "k:", lw=1, label="∝ 1/N0")
    ax[0].set(xlabel="inputs N0", ylabel="relative squared error",
              title=f"{a['bits']}-bit, m={a['m']} samples, {a['M']} neurons")
    for n in b["N"]:
        ax[1].semilogy(b["bits"], b["ratio"][str(n)], "o-", label=f"N={n}")
    ax[1].axhline(1, color="k", lw=1)
    ax[1].set(xlabel="bits b", ylabel="error(b) / error(∞)", title=f"SPFQ on grid δ={b['delta']}·σ_w")
    ns = np.array(b["N"], dtype=float)
    ax[2].plot(np.log2(np.log2(ns)), [b["b_star"][str(n)] or np.nan for n in b["N"]], "o-",
               label=f"smallest b within {b['tol']:.1%} of ∞")
    ax[2].set(xlabel="log2 log2 N", ylabel="bits", title="SPFQ: bits to reach the infinite alphabet",
              ylim=(min(b["bits"]), max(b["bits"])))
    ax[2].yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    for x in ax:
        x.grid(alpha=0.3, which="both")
        x.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("build/bench/claims"))
    ap.add_argument("--quick", action="store_true", help="small sizes, one seed (smoke run)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    start = time.perf_counter()
    if args.quick:
        n0s, ns, seeds, ref_sizes = [32, 64, 128, 256], [64, 256], [0], [32]
    else:
        n0s, ns, seeds, ref_sizes = [64, 128, 256, 512, 1024, 2048, 4096], [64, 256, 1024, 4096], range(5), [64, 256]
    m, M = (8, 4) if args.quick else (32, 8)
    result = {
        "reference_agreement": reference_check(ref_sizes, m=m, M=M, bits=3),
        "error_vs_n0": error_vs_n0(n0s, m=m, M=M, bits=3, seeds=seeds),
        "bit_budget": bit_budget(ns, list(range(2, 9)), m=m, M=M, delta=0.25, seeds=seeds),
    }
    result["seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "claims.json").write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.out / "claims.png")

    a, b = result["error_vs_n0"], result["bit_budget"]
    print(f"reference (literal GPFQ walk) agreement: {result['reference_agreement']}")
    print(f"{'N0':>6}" + "".join(f"{alg:>10}" for alg in a["errors"]))
    for i, n0 in enumerate(a["N0"]):
        print(f"{n0:>6}" + "".join(f"{a['errors'][alg][i]:>10.2e}" for alg in a["errors"]))
    print("slope (N0 >= %d): " % a["slope_fit_from_N0"] + ", ".join(f"{k} {v:.2f}" for k, v in a["slopes"].items())
          + "; against N0/log N0: " + ", ".join(f"{k} {v:.2f}" for k, v in a["slopes_vs_N0_over_log_N0"].items()))
    print(f"SPFQ error(b)/error(inf), grid delta={b['delta']}:")
    print(f"{'N':>6}" + "".join(f"{'b=' + str(x):>8}" for x in b["bits"]) + "   b*  log2log2N")
    for n in b["N"]:
        print(f"{n:>6}" + "".join(f"{r:>8.3f}" for r in b["ratio"][str(n)])
              + f"  {b['b_star'][str(n)]!s:>3}  {b['log2_log2_N'][str(n)]:.2f}")
    print(f"{result['seconds']} s; wrote {args.out}/claims.json and claims.png")


if __name__ == "__main__":
    main()
