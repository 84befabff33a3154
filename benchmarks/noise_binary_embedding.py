"""Binary embeddings: error of the distance estimates vs m, Sigma-Delta r = 1, 2, 3 vs sign(A x).

Mean absolute percentage error (MAPE) of the estimated ||a - b||_2 over all pairs, mean
over seeds, on digits images and on random well-spread vectors (both scaled to unit norm,
so that the sign(A x) baseline, whose Hamming distance only sees angles, estimates the
same distance as 2 sin(theta / 2)). Sigma-Delta uses the sparse Gaussian A (density
1/sqrt(n); Walsh-Hadamard first for digits) and the default input scale (Gaussian tail);
the baseline a dense Gaussian A. Two block schedules:
- lambda ~ sqrt(m) (the default of BinaryEmbedding): total MAPE, fitted log-log slope vs m,
  and the ratio to sign(A x) at equal bits (the baseline's MAPE interpolated log-log at the
  bits Sigma-Delta stores after condensing), also for the unquantized l1 estimate from the
  same p = m / lambda projections ("JL"), a floor that no quantizer can beat;
- p = 64 fixed, lambda = m / p (the protocol of the authors' code, m = 2^9 .. 2^14): the
  error splits into the JL error of p projections plus the quantization error, measured
  as the mean of |d_SD - d_JL| / d over pairs, whose decay in m the paper proves.

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

from axe_deploy.noise_shaping import BinaryEmbedding, condense


def datasets(n: int) -> dict:
    rng = np.random.default_rng(0)
    digits = load_digits().data[rng.choice(1797, n, replace=False)]
    spread = rng.normal(size=(n, 1024))
    unit = lambda X: X / np.linalg.norm(X, axis=1, keepdims=True)  # noqa: E731
    return {"digits": (unit(digits), True), "random n=1024": (unit(spread), False)}


def evaluate(est, X, iu, d) -> dict:
    """MAPE of the estimates; for Sigma-Delta also the unquantized l1 estimate from the same V A."""
    est.fit(X)
    D = est.pairwise_distances(est.transform(X))[iu]
    out = dict(mape=float(np.mean(np.abs(D - d) / d)))
    if est.order:
        p, v = est.n_bits // est.block_, est.v_.astype(np.float64)
        C = condense(est.project(X).astype(np.float64), v)
        jl = np.sqrt(np.pi / 2) / (p * np.linalg.norm(v)) * np.abs(C[iu[0]] - C[iu[1]]).sum(axis=1)
        out.update(jl_mape=float(np.mean(np.abs(jl - d) / d)), quant_err=float(np.mean(np.abs(D - jl) / d)))
    return out


def block_for(order: int, target: float) -> int:
    """The valid lambda = r (t - 1) + 1 nearest target."""
    return order * max(1, round((target - 1) / order)) + 1


def sweep(X, hadamard, iu, d, order, ks, seeds, schedule) -> list:
    rows = []
    for k in ks:
        if order == 0:
            m, kw = 2**k, dict(order=0, density=1.0)
        else:
            lam = block_for(order, 2 ** (k / 2) if schedule == "sqrt" else 2**k / P_FIXED)
            m, kw = lam * round(2**k / lam), dict(order=order, block=lam, hadamard=hadamard)
        runs = [evaluate(BinaryEmbedding(m, random_state=s, **kw), X, iu, d) for s in range(seeds)]
        bits = BinaryEmbedding(m, **kw).fit(X[:2]).bits_per_vector
        row = dict(m_target=2**k, m=m, block=kw.get("block"), bits=bits)
        for key in runs[0]:
            row[key] = float(np.mean([r[key] for r in runs]))
        row["std"] = float(np.std([r["mape"] for r in runs]))
        rows.append(row)
    return rows


P_FIXED = 64


def main():
    args = parse_args(__doc__.splitlines()[0])
    n, seeds, ks, ks_p = (60, 1, range(7, 11), range(9, 11)) if args.quick else (200, 3, range(7, 15), range(9, 15))
    results, fixed_p, checks = {}, {}, {}
    for name, (X, hadamard) in datasets(n).items():
        iu = np.triu_indices(n, 1)
        d = np.linalg.norm(X[iu[0]] - X[iu[1]], axis=1)
        res = results[name] = {}
        fix = fixed_p[name] = {}
        for order in tqdm((0, 1, 2, 3), desc=name):
            res[f"r={order}" if order else "sign(Ax)"] = sweep(X, hadamard, iu, d, order, ks, seeds, "sqrt")
            if order:
                fix[f"r={order}"] = sweep(X, hadamard, iu, d, order, ks_p, seeds, "fixed p")
        sign = res["sign(Ax)"]
        log_bits, log_mape = np.log([s["bits"] for s in sign]), np.log([s["mape"] for s in sign])
        for label, rows in res.items():
            big = [r for r in rows if r["m_target"] >= 2**10]
            slope = loglog_slope([r["m"] for r in rows], [r["mape"] for r in rows])
            slope_big = loglog_slope([r["m"] for r in big], [r["mape"] for r in big]) if len(big) > 1 else None
            entry = dict(slope_vs_m=slope, slope_vs_m_from_1024=slope_big)
            if label != "sign(Ax)":
                # baseline at equal bits, interpolated in log-log
                at = np.exp(np.interp(np.log([r["bits"] for r in big]), log_bits, log_mape))
                ratio = [float(r["mape"] / a) for r, a in zip(big, at)]
                jl_ratio = [float(r["jl_mape"] / a) for r, a in zip(big, at)]
                rows_p = fix[label]
                q_slope = loglog_slope([r["m"] for r in rows_p], [r["quant_err"] for r in rows_p])
                entry.update(ratio_to_sign_at_equal_bits=ratio, jl_ratio_to_sign_at_equal_bits=jl_ratio,
                             slope_met=slope <= -0.5, beats_sign_met=bool(ratio and max(ratio) < 1),
                             fixed_p_quant_err_slope=q_slope, fixed_p_quant_slope_met=q_slope <= -0.5,
                             fixed_p_mape_over_jl_at_largest_m=rows_p[-1]["mape"] / rows_p[-1]["jl_mape"])
            checks[f"{name} {label}"] = entry

    print(f"\nMAPE of distance estimates (n={n} points, {seeds} seeds); lambda ~ sqrt(m); m [bits]")
    for name, res in results.items():
        print(f"-- {name}")
        for label, rows in res.items():
            c = checks[f"{name} {label}"]
            cells = " ".join(f"{r['mape']:.4f}[{r['bits']}]" for r in rows)
            print(f"{label:9s} {cells}  slope {c['slope_vs_m']:.2f}")
    print(f"\np = {P_FIXED} fixed, lambda = m / p: MAPE / JL MAPE / quantization error |d_SD - d_JL| / d")
    for name, fix in fixed_p.items():
        print(f"-- {name}")
        for label, rows in fix.items():
            cells = " ".join(f"m={r['m']}: {r['mape']:.4f}/{r['jl_mape']:.4f}/{r['quant_err']:.4f}" for r in rows)
            print(f"{label:5s} {cells}  quant slope {checks[f'{name} {label}']['fixed_p_quant_err_slope']:.2f}")
    print()
    for key, c in checks.items():
        if "slope_met" in c:
            print(f"{verdict(c['slope_met']):8s} {key}: fitted slope of MAPE (lambda ~ sqrt(m)) "
                  f"{c['slope_vs_m']:.2f} (target <= -0.5)")
            print(f"{verdict(c['fixed_p_quant_slope_met']):8s} {key}: fitted slope of the quantization error "
                  f"(p = {P_FIXED}) {c['fixed_p_quant_err_slope']:.2f} (target <= -0.5)")
            ratios = " ".join(f"{x:.2f}" for x in c["ratio_to_sign_at_equal_bits"])
            jl = " ".join(f"{x:.2f}" for x in c["jl_ratio_to_sign_at_equal_bits"])
            print(f"{verdict(c['beats_sign_met']):8s} {key}: MAPE / sign(Ax) at equal bits, m >= 1024: {ratios} "
                  f"(unquantized JL from the same p: {jl})")

    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    for row, (name, res) in enumerate(results.items()):
        for label, rows in res.items():
            for col, key in enumerate(("m", "bits")):
                slope = checks[f"{name} {label}"]["slope_vs_m"]
                axes[row, col].loglog([r[key] for r in rows], [r["mape"] for r in rows], "o-",
                                      label=f"{label} (slope vs m {slope:.2f})")
        for col, key in enumerate(("m (code length)", "bits per vector after condensing")):
            ax = axes[row, col]
            title = f"{name}: error vs {key.split(' (')[0]}, lambda ~ sqrt(m)"
            ax.set(xlabel=key, ylabel="MAPE of ||a - b||_2", title=title)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        ax = axes[row, 2]
        for i, (label, rows) in enumerate(fixed_p[name].items()):
            slope = checks[f"{name} {label}"]["fixed_p_quant_err_slope"]
            ms = [r["m"] for r in rows]
            ax.loglog(ms, [r["quant_err"] for r in rows], "o-", color=f"C{i + 1}",
                      label=f"{label} quantization error (slope {slope:.2f})")
            ax.loglog(ms, [r["mape"] for r in rows], "s:", color=f"C{i + 1}", label=f"{label} total MAPE")
        ax.loglog(ms, [r["jl_mape"] for r in rows], "k--", label=f"unquantized JL, p = {P_FIXED}")
        ax.set(xlabel="m (code length)", ylabel="error / ||a - b||_2",
               title=f"{name}: p = {P_FIXED} fixed, lambda = m / p")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    payload = dict(n=n, seeds=seeds, p_fixed=P_FIXED, results=results, fixed_p=fixed_p, checks=checks)
    write(args.out, "noise_binary_embedding", payload, fig)


if __name__ == "__main__":
    main()
