"""Kernel approximation error of (quantized) random Fourier features vs m and vs bits.

Digits (scaled to [0, 1]), Gaussian kernel with gamma = 1 / median ||x - y||^2; error =
mean |K_hat - K| over the off-diagonal pairs, mean over seeds. Reference: the exact kernel
(sklearn rbf_kernel) and sklearn's RBFSampler for plain RFF. Fitted log-log slopes
against m and against the stored bits per vector.

    python benchmarks/noise_rff_kernel.py [--quick] [--out build/bench/noise]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from noise_common import loglog_slope, parse_args, write
from sklearn.datasets import load_digits
from sklearn.kernel_approximation import RBFSampler
from sklearn.metrics.pairwise import euclidean_distances, rbf_kernel
from tqdm import tqdm

from axe_deploy.noise_shaping import QuantizedRFF

# (label, QuantizedRFF keyword arguments); blocks fixed so that p = m / lambda grows with m
METHODS = [
    ("plain RFF (float32)", dict(quantizer=None)),
    ("round 1b", dict(quantizer="round", bits=1)),
    ("stochastic 1b", dict(quantizer="stochastic", bits=1)),
    ("SD r=1 1b (lambda=4)", dict(quantizer="sigma_delta", order=1, block=4, bits=1)),
    ("SD r=2 1b (lambda=5)", dict(quantizer="sigma_delta", order=2, block=5, bits=1)),
    ("beta 1b (lambda=4)", dict(quantizer="beta", block=4, bits=1)),
    ("round 2b", dict(quantizer="round", bits=2)),
    ("stochastic 2b", dict(quantizer="stochastic", bits=2)),
    ("SD r=1 2b (lambda=4)", dict(quantizer="sigma_delta", order=1, block=4, bits=2)),
    ("SD r=2 2b (lambda=5)", dict(quantizer="sigma_delta", order=2, block=5, bits=2)),
    ("beta 2b (lambda=4)", dict(quantizer="beta", block=4, bits=2)),
]


def kernel_error(F, K, iu) -> float:
    return float(np.abs(F @ F.T - K)[iu].mean())


def main():
    args = parse_args(__doc__.splitlines()[0])
    n, seeds, ms = (80, 1, [128, 256, 512]) if args.quick else (300, 3, [2**k for k in range(7, 14)])
    X = load_digits().data / 16.0
    X = X[np.random.default_rng(0).choice(len(X), n, replace=False)]
    gamma = 1.0 / np.median(euclidean_distances(X, squared=True)[np.triu_indices(n, 1)])
    K, iu = rbf_kernel(X, gamma=gamma), np.triu_indices(n, 1)

    results = {}
    jobs = [(label, kw, m) for label, kw in METHODS for m in ms]
    for label, kw, m_target in tqdm(jobs, desc="kernel error"):
        block = kw.get("block", 1)
        m = block * max(1, round(m_target / block))
        errs = []
        for seed in range(seeds):
            est = QuantizedRFF(m, gamma=gamma, random_state=seed, **kw).fit(X)
            errs.append(kernel_error(est.transform(X), K, iu))
        results.setdefault(label, []).append(
            dict(m=m, bits=est.bits_per_vector, error=float(np.mean(errs)), error_std=float(np.std(errs)))
        )
    def sampler_error(m):
        maps = [RBFSampler(gamma=gamma, n_components=m, random_state=s) for s in range(seeds)]
        return float(np.mean([kernel_error(f.fit_transform(X), K, iu) for f in maps]))

    reference = [dict(m=m, error=sampler_error(m)) for m in ms]
    slopes = {
        label: dict(vs_m=loglog_slope([r["m"] for r in rows], [r["error"] for r in rows]),
                    vs_bits=loglog_slope([r["bits"] for r in rows], [r["error"] for r in rows]))
        for label, rows in results.items()
    }

    print(f"\ndigits n={n}, gamma={gamma:.4f}, seeds={seeds}; mean |K_hat - K| over pairs")
    print(f"{'method':24s} " + " ".join(f"{m:>7d}" for m in ms) + "   slope/m  slope/bits")
    for label, rows in results.items():
        cells = " ".join(f"{r['error']:7.4f}" for r in rows)
        print(f"{label:24s} {cells}   {slopes[label]['vs_m']:7.2f}  {slopes[label]['vs_bits']:7.2f}")
    print(f"{'sklearn RBFSampler':24s} " + " ".join(f"{r['error']:7.4f}" for r in reference))

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    for row, bits in enumerate((1, 2)):
        for label, rows in results.items():
            if f"{bits}b" not in label and "plain" not in label:
                continue
            for col, key in enumerate(("m", "bits")):
                x = [r[key] for r in rows]
                slope = slopes[label]["vs_" + key]
                axes[row, col].loglog(x, [r["error"] for r in rows], "o-", label=f"{label} ({slope:.2f})")
        for col, key in enumerate(("m", "bits per vector")):
            ax = axes[row, col]
            ax.set(xlabel=key, ylabel="mean |K_hat - K|", title=f"{bits}-bit codes, error vs {key} (fitted slope)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    payload = dict(n=n, gamma=gamma, seeds=seeds, results=results, slopes=slopes, sklearn_rbf_sampler=reference)
    write(args.out, "noise_rff_kernel", payload, fig)


if __name__ == "__main__":
    main()
