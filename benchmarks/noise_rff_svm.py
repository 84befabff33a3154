"""Kernel SVM on digits with quantized random Fourier features, m = 240 .. 8208.

SVC(kernel="precomputed") on transform(X) @ transform(Y).T against the exact RBF kernel
SVC (the reference, same gamma and C, chosen by 5-fold CV on the training split with the
exact kernel). Stratified 70/30 split, accuracy averaged over seeds of the random
features. Equal-bits baseline: round-to-nearest with as many features as the bits that
Sigma-Delta r = 2 stores.

    python benchmarks/noise_rff_svm.py [--quick] [--out build/bench/noise]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.ticker import NullFormatter
import numpy as np
from noise_common import parse_args, verdict, write
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.svm import SVC
from tqdm import tqdm

from axe_deploy.noise_shaping import QuantizedRFF

# (m, lambda): lambda is the odd number nearest sqrt(m)/4.5 (valid for r = 1, 2 and beta),
# m a multiple of it; p = m / lambda decoded features = 80 .. 432.
GRID = [(240, 3), (490, 5), (987, 7), (1998, 9), (4050, 15), (8208, 19)]


def methods(m: int, block: int, bits: int):
    yield "round", dict(quantizer="round", bits=bits), m
    yield "stochastic", dict(quantizer="stochastic", bits=bits), m
    yield "SD r=1", dict(quantizer="sigma_delta", order=1, block=block, bits=bits), m
    yield "SD r=2", dict(quantizer="sigma_delta", order=2, block=block, bits=bits), m
    yield "beta", dict(quantizer="beta", block=block, bits=bits), m


def accuracy(est, Xtr, ytr, Xte, yte, C) -> float:
    Ftr, Fte = est.fit(Xtr).transform(Xtr), est.transform(Xte)
    return 100.0 * SVC(kernel="precomputed", C=C).fit(Ftr @ Ftr.T, ytr).score(Fte @ Ftr.T, yte)


def main():
    args = parse_args(__doc__.splitlines()[0])
    grid, seeds = (GRID[:2], 1) if args.quick else (GRID, 3)
    X, y = load_digits(return_X_y=True)
    Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)
    cv = GridSearchCV(SVC(kernel="rbf"), {"gamma": [0.02, 0.05, 0.1, 0.2], "C": [1, 10, 100]}, cv=5).fit(Xtr, ytr)
    gamma, C = cv.best_params_["gamma"], cv.best_params_["C"]
    exact = 100.0 * cv.best_estimator_.score(Xte, yte)
    print(f"exact RBF SVC: gamma={gamma}, C={C}, test accuracy {exact:.2f}%  (paper: 99.17%)")

    rows = []
    jobs = [(m, block, bits) for m, block in grid for bits in (1, 2)]
    for m, block, bits in tqdm(jobs, desc="svm"):
        row = dict(m=m, block=block, bits=bits)

        def run(name, kw, m_used):
            ests = [QuantizedRFF(m_used, gamma=gamma, random_state=s, **kw) for s in range(seeds)]
            accs = [accuracy(est, Xtr, ytr, Xte, yte, C) for est in ests]
            row[name] = dict(acc=float(np.mean(accs)), std=float(np.std(accs)),
                             bits_per_vector=ests[0].bits_per_vector, m=m_used)

        if bits == 1:
            run("plain RFF", dict(quantizer=None), m)
        for name, kw, m_used in methods(m, block, bits):
            run(name, kw, m_used)
        # equal bits: round-to-nearest given the storage of Sigma-Delta r=2
        run("round @ SD r=2 bits", dict(quantizer="round", bits=bits), row["SD r=2"]["bits_per_vector"] // bits)
        rows.append(row)

    names = ["plain RFF", "round", "stochastic", "SD r=1", "SD r=2", "beta", "round @ SD r=2 bits"]
    print(f"\naccuracy % (mean of {seeds} seeds); exact RBF kernel {exact:.2f}%; [bits per vector]")
    print(f"{'m':>5s} {'lam':>3s} {'b':>2s} " + " ".join(f"{n:>20s}" for n in names))
    for row in rows:
        cells = [f"{row[n]['acc']:6.2f} [{row[n]['bits_per_vector']:>7d}]" if n in row else " " * 16 for n in names]
        print(f"{row['m']:5d} {row['block']:3d} {row['bits']:2d} " + " ".join(f"{c:>20s}" for c in cells))

    checks = {}
    for bits in (1, 2):
        last = [r for r in rows if r["bits"] == bits][-1]
        for name in ("SD r=2", "beta"):
            gap = exact - last[name]["acc"]
            checks[f"{name} {bits}b within 0.5 of exact at m={last['m']}"] = dict(gap=gap, met=gap <= 0.5)
        margin = last["SD r=2"]["acc"] - last["round @ SD r=2 bits"]["acc"]
        checks[f"SD r=2 {bits}b beats round at equal bits (m={last['m']})"] = dict(margin=margin, met=margin > 0)
        margin = last["beta"]["acc"] - last["round"]["acc"]  # beta stores m*b bits, as round does
        checks[f"beta {bits}b beats round at equal bits (m={last['m']})"] = dict(margin=margin, met=margin > 0)
    print()
    for k, v in checks.items():
        print(f"{verdict(v['met']):8s} {k}: " + ", ".join(f"{a} {b:+.2f}" for a, b in v.items() if a != "met"))

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    for ax, bits in zip(axes, (1, 2)):
        sub = [r for r in rows if r["bits"] == bits]
        for name in names:
            pts = [(r[name]["bits_per_vector"], r[name]["acc"]) for r in sub if name in r and name != "plain RFF"]
            if pts:
                ax.semilogx(*zip(*pts), "o-", label=name)
        ax.axhline(exact, color="k", ls="--", label=f"exact RBF kernel {exact:.2f}%")
        title = f"digits SVM, {bits}-bit codes, m = {sub[0]['m']}..{sub[-1]['m']}"
        ax.set(xlabel="bits per vector", ylabel="test accuracy %", title=title)
        ax.set_ylim(max(80, ax.get_ylim()[0]), 100)
        ax.xaxis.set_minor_formatter(NullFormatter())
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    payload = dict(gamma=gamma, C=C, seeds=seeds, exact_accuracy=exact, rows=rows, checks=checks)
    write(args.out, "noise_rff_svm", payload, fig)


if __name__ == "__main__":
    main()
