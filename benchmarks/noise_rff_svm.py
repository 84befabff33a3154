"""Kernel SVM on digits with quantized random Fourier features, m = 240 .. 8208.

SVC(kernel="precomputed") on transform(X) @ transform(Y).T against the exact RBF kernel
SVC (the reference, same gamma and C, chosen by 5-fold CV on the training split with the
exact kernel). Stratified 70/30 split, accuracy averaged over seeds of the random
features. Equal-bits baseline: round-to-nearest with as many features as the bits that
Sigma-Delta r = 2 stores.

Paired comparison (lower noise): at m = 987 (where the methods differ) and at the largest
m, over 10 stratified 70/30 splits (gamma and C again by 5-fold CV of the exact kernel on
each training part, never on the test part; random features seeded by the split), the
per-split accuracy differences Sigma-Delta r = 2 - round at equal bits and beta - round
(same m, same bits) with their mean, standard error and wins/ties/losses.

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


def exact_svc(Xtr, ytr, Xte, yte):
    """gamma and C by 5-fold CV of the exact RBF SVC on the training part; its test accuracy."""
    cv = GridSearchCV(SVC(kernel="rbf"), {"gamma": [0.02, 0.05, 0.1, 0.2], "C": [1, 10, 100]}, cv=5).fit(Xtr, ytr)
    return cv.best_params_["gamma"], cv.best_params_["C"], 100.0 * cv.best_estimator_.score(Xte, yte)


def paired(X, y, grid, splits) -> dict:
    """Per-split accuracy differences (see the module doc), for each (m, lambda) and bits."""
    out = {}
    for split in tqdm(range(splits), desc="paired splits"):
        Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=split, stratify=y)
        gamma, C, exact = exact_svc(Xtr, ytr, Xte, yte)
        for m, block in grid:
            for bits in (1, 2):
                def acc(m_used, **kw):
                    est = QuantizedRFF(m_used, gamma=gamma, random_state=split, bits=bits, **kw)
                    return accuracy(est, Xtr, ytr, Xte, yte, C), est.bits_per_vector

                sd, sd_bits = acc(m, quantizer="sigma_delta", order=2, block=block)
                beta, _ = acc(m, quantizer="beta", block=block)
                rnd, _ = acc(m, quantizer="round")
                rnd_eq, _ = acc(sd_bits // bits, quantizer="round")
                rec = out.setdefault(f"m={m} {bits}b", dict(m=m, block=block, bits=bits, exact=[], sd=[], beta=[],
                                                              round=[], round_at_sd_bits=[], sd_bits=sd_bits))
                values = dict(exact=exact, sd=sd, beta=beta, round=rnd, round_at_sd_bits=rnd_eq)
                for key, val in values.items():
                    rec[key].append(val)

    def sem(x):
        return float(np.std(x, ddof=1) / np.sqrt(len(x))) if len(x) > 1 else None

    for rec in out.values():
        pairs = (("sd_minus_round_at_equal_bits", "sd", "round_at_sd_bits"), ("beta_minus_round", "beta", "round"))
        for name, a, b in pairs:
            diff = np.subtract(rec[a], rec[b])
            rec[name] = dict(mean=float(diff.mean()), sem=sem(diff), wins=int((diff > 0).sum()),
                             ties=int((diff == 0).sum()), losses=int((diff < 0).sum()))
        for name in ("sd", "beta"):
            gap = np.subtract(rec["exact"], rec[name])
            rec[f"{name}_gap_to_exact"] = dict(mean=float(gap.mean()), sem=sem(gap))
    return out


def main():
    args = parse_args(__doc__.splitlines()[0])
    grid, seeds = (GRID[:2], 1) if args.quick else (GRID, 3)
    paired_grid, splits = ([GRID[0]], 2) if args.quick else ([GRID[2], GRID[-1]], 10)
    X, y = load_digits(return_X_y=True)
    X = X / 16.0
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)
    gamma, C, exact = exact_svc(Xtr, ytr, Xte, yte)
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
    pairs = paired(X, y, paired_grid, splits)
    print(f"\npaired over {splits} stratified splits: mean difference (points) +- standard error, wins/ties/losses")
    for key, rec in pairs.items():
        cells = []
        for name in ("sd_minus_round_at_equal_bits", "beta_minus_round"):
            d = rec[name]
            sem = f" +- {d['sem']:.2f}" if d["sem"] is not None else ""
            cells.append(f"{name} {d['mean']:+.2f}{sem} ({d['wins']}/{d['ties']}/{d['losses']})")
        gaps = ", ".join(f"{n} gap to exact {rec[f'{n}_gap_to_exact']['mean']:.2f}" for n in ("sd", "beta"))
        print(f"{key:>12s} [SD r=2 {rec['sd_bits']} bits]: " + "; ".join(cells) + f"; {gaps}")
        last = key == f"m={paired_grid[-1][0]} {rec['bits']}b"
        if last:
            for name, label in (("sd_minus_round_at_equal_bits", "SD r=2"), ("beta_minus_round", "beta")):
                d = rec[name]
                # "beats" only if the mean paired difference is positive by more than 2 standard errors
                met = d["sem"] is not None and d["mean"] > 2 * d["sem"]
                key_ = f"{label} {rec['bits']}b beats round at equal bits, paired over {splits} splits (m={rec['m']})"
                checks[key_] = dict(margin=d["mean"], sem=d["sem"] if d["sem"] is not None else float("nan"), met=met)
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
    payload = dict(gamma=gamma, C=C, seeds=seeds, exact_accuracy=exact, rows=rows, paired=pairs, checks=checks)
    write(args.out, "noise_rff_svm", payload, fig)


if __name__ == "__main__":
    main()
