"""Binary embeddings: error of the distance estimates vs m, Sigma-Delta r = 1, 2, 3 vs sign(A x).

Mean absolute percentage error (MAPE) of the estimated ||a - b||_2 over all pairs, mean
over seeds, on digits images and on random well-spread vectors (both scaled to unit norm,
so that the sign(A x) baseline, whose Hamming distance only sees angles, estimates the
same distance as 2 sin(theta / 2)). Sigma-Delta uses the sparse Gaussian A (density
1/sqrt(n); Walsh-Hadamard first for digits) and lambda ~ sqrt(m); the baseline a dense
Gaussian A. Fitted log-log slopes vs m; equal bits = the baseline's MAPE interpolated
(log-log) at the bits that Sigma-Delta stores after condensing.

    python benchmarks/noise_binary_embedding.py [--quick] [--out build/bench/noise]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from noise_common import loglog_slope, parse_args, verdict, write
from sklearn.datasets import load_digits
from tqdm import tqdm

from axe_deploy.noise_shaping import BinaryEmbedding


def datasets(n: int) -> dict:
    rng = np.random.default_rng(0)
    digits = load_digits().data[rng.choice(1797, n, replace=False)]
    spread = rng.normal(size=(n, 1024))
    unit = lambda X: X / np.linalg.norm(X, axis=1, keepdims=True)  # noqa: E731
    return {"digits": (unit(digits), True), "random n=1024": (unit(spread), False)}


def mape(est, X, iu, d) -> float:
    D = est.fit(X).pairwise_distances(est.transform(X))
    return float(np.mean(np.abs(D[iu] - d) / d))


def main():
    args = parse_args(__doc__.splitlines()[0])
    n, seeds, ks = (60, 1, range(7, 11)) if args.quick else (200, 3, range(7, 15))
    results, checks = {}, {}
    for name, (X, hadamard) in datasets(n).items():
        iu = np.triu_indices(n, 1)
        d = np.linalg.norm(X[iu[0]] - X[iu[1]], axis=1)
        res = results[name] = {}
        for order in tqdm((0, 1, 2, 3), desc=name):
            rows = res[f"r={order}" if order else "sign(Ax)"] = []
            for k in ks:
                if order == 0:
                    m, kw = 2**k, dict(order=0, density=1.0)
                else:
                    lam = order * max(1, round((2 ** (k / 2) - 1) / order)) + 1
                    m, kw = lam * round(2**k / lam), dict(order=order, block=lam, hadamard=hadamard)
                errs = [mape(BinaryEmbedding(m, random_state=s, **kw), X, iu, d) for s in range(seeds)]
                bits = BinaryEmbedding(m, **kw).fit(X[:2]).bits_per_vector
                rows.append(dict(m_target=2**k, m=m, block=kw.get("block"), bits=bits,
                                 mape=float(np.mean(errs)), std=float(np.std(errs))))
        sign = res["sign(Ax)"]
        for label, rows in res.items():
            big = [r for r in rows if r["m_target"] >= 2**10]
            slope = loglog_slope([r["m"] for r in rows], [r["mape"] for r in rows])
            slope_big = loglog_slope([r["m"] for r in big], [r["mape"] for r in big]) if len(big) > 1 else None
            entry = dict(slope_vs_m=slope, slope_vs_m_from_1024=slope_big)
            if label != "sign(Ax)":
                # baseline at equal bits, interpolated in log-log
                log_bits, log_mape = np.log([s["bits"] for s in sign]), np.log([s["mape"] for s in sign])
                at = np.exp(np.interp(np.log([r["bits"] for r in big]), log_bits, log_mape))
                ratio = [float(r["mape"] / a) for r, a in zip(big, at)]
                entry.update(ratio_to_sign_at_equal_bits=ratio, slope_met=slope <= -0.5,
                             beats_sign_met=bool(ratio and max(ratio) < 1))
            checks[f"{name} {label}"] = entry

    print(f"\nMAPE of distance estimates (n={n} points, {seeds} seeds); m [bits]")
    for name, res in results.items():
        print(f"-- {name}")
        for label, rows in res.items():
            c = checks[f"{name} {label}"]
            cells = " ".join(f"{r['mape']:.4f}[{r['bits']}]" for r in rows)
            print(f"{label:9s} {cells}  slope {c['slope_vs_m']:.2f}")
    print()
    for key, c in checks.items():
        if "slope_met" in c:
            print(f"{verdict(c['slope_met']):8s} {key}: fitted slope {c['slope_vs_m']:.2f} (target <= -0.5)")
            ratios = " ".join(f"{x:.2f}" for x in c["ratio_to_sign_at_equal_bits"])
            print(f"{verdict(c['beats_sign_met']):8s} {key}: MAPE / sign(Ax) at equal bits, m >= 1024: {ratios}")

    fig, axes = plt.subplots(2, 2, figsize=(12, 9))
    for row, (name, res) in enumerate(results.items()):
        for label, rows in res.items():
            for col, key in enumerate(("m", "bits")):
                slope = checks[f"{name} {label}"]["slope_vs_m"]
                axes[row, col].loglog([r[key] for r in rows], [r["mape"] for r in rows], "o-",
                                      label=f"{label} (slope vs m {slope:.2f})")
        for col, key in enumerate(("m (code length)", "bits per vector after condensing")):
            ax = axes[row, col]
            ax.set(xlabel=key, ylabel="MAPE of ||a - b||_2", title=f"{name}: error vs {key.split(' (')[0]}")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
    write(args.out, "noise_binary_embedding", dict(n=n, seeds=seeds, results=results, checks=checks), fig)


if __name__ == "__main__":
    main()
