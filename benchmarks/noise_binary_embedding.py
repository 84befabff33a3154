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

Near pairs (nearest-neighbour search lives there): for each vector its K_NEAR = 5 nearest
neighbours by true distance, the union of these (unordered, deduplicated) pairs; MAPE over
them next to the all-pairs MAPE, and the same equal-bits ratio to sign(A x). A third data
set has genuinely near pairs: "clusters", n / 10 unit random centres in R^1024 with 10
points each, centre + rho g / sqrt(n) (g standard Gaussian, so |perturbation| ~ rho), rho
cycling over the clusters through 0.05, 0.1, 0.2, then scaled to unit norm. For
m = 2^12 (2^10 with --quick) the relative error per pair is binned by the true distance,
with sign(A x) also run at exactly the bits of each Sigma-Delta order, and overlaid by the
theory: sign(A x) exact (binomial Hamming distance), Sigma-Delta its JL floor
sqrt(1 - 2/pi) / sqrt(p) (see docs/noise_shaping.md).

    python benchmarks/noise_binary_embedding.py [--quick] [--out build/bench/noise]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from noise_common import loglog_slope, parse_args, verdict, write
from scipy.spatial.distance import pdist, squareform
from scipy.stats import binom
from sklearn.datasets import load_digits
from tqdm import tqdm

from axe_deploy.noise_shaping import BinaryEmbedding, condense


def datasets(n: int) -> dict:
    rng = np.random.default_rng(0)
    digits = load_digits().data[rng.choice(1797, n, replace=False)]
    spread = rng.normal(size=(n, 1024))
    unit = lambda X: X / np.linalg.norm(X, axis=1, keepdims=True)  # noqa: E731
    # drawn after the other two, which stay exactly as before
    n_clusters, dim = n // CLUSTER_SIZE, 1024
    centres = unit(rng.normal(size=(n_clusters, dim)))
    rho = np.resize(CLUSTER_RADII, n_clusters)
    clusters = np.repeat(centres, CLUSTER_SIZE, axis=0) + np.repeat(rho, CLUSTER_SIZE)[:, None] * rng.normal(
        size=(n_clusters * CLUSTER_SIZE, dim)) / np.sqrt(dim)
    return {"digits": (unit(digits), True), "random n=1024": (unit(spread), False),
            "clusters": (unit(clusters), False)}


K_NEAR, CLUSTER_SIZE, CLUSTER_RADII = 5, 10, (0.05, 0.1, 0.2)
BINS = np.geomspace(0.02, 2.0, 16)  # true-distance bins of the error-vs-distance panel
MIN_BIN = 10  # pairs in a bin for it to be plotted (all are in the JSON)


def near_mask(X, iu, k=K_NEAR) -> np.ndarray:
    """Boolean over the pairs iu: j is among the k nearest neighbours of i, or i of j."""
    D = squareform(pdist(X))
    np.fill_diagonal(D, np.inf)
    M = np.zeros(D.shape, dtype=bool)
    nn = np.argsort(D, axis=1, kind="stable")[:, :k]
    M[np.arange(len(X))[:, None], nn] = True
    return (M | M.T)[iu]


def sign_theory(d, m) -> np.ndarray:
    """Exact E|d_hat - d| / d of sign(A x) with m bits (dense Gaussian A, unit vectors):
    hamming ~ Binomial(m, theta / pi), theta = 2 arcsin(d / 2), d_hat = 2 sin(pi hamming / (2 m))."""
    d = np.atleast_1d(np.asarray(d, float))
    h = np.arange(m + 1)
    pmf = binom.pmf(h[None, :], m, 2 * np.arcsin(d[:, None] / 2) / np.pi)
    return (pmf * np.abs(2 * np.sin(np.pi * h / (2 * m)) - d[:, None])).sum(axis=1) / d


def jl_theory(p) -> float:
    """E|d_hat - d| / d of the l1 estimate from p Gaussian measurements (CLT): sqrt(1 - 2/pi) / sqrt(p)."""
    return float(np.sqrt(1 - 2 / np.pi) / np.sqrt(p))


def binned(d, rel) -> dict:
    idx = np.digitize(d, BINS) - 1
    ok = [b for b in range(len(BINS) - 1) if np.sum(idx == b) > 0]
    return dict(d=[float(np.sqrt(BINS[b] * BINS[b + 1])) for b in ok],
                d_mean=[float(d[idx == b].mean()) for b in ok],
                mape=[float(rel[idx == b].mean()) for b in ok], count=[int(np.sum(idx == b)) for b in ok])


def evaluate(est, X, iu, d, near) -> dict:
    """MAPE of the estimates (all pairs; near pairs); for Sigma-Delta also the unquantized l1
    estimate from the same V A. "_rel": the relative error of every pair (for binning)."""
    est.fit(X)
    D = est.pairwise_distances(est.transform(X))[iu]
    rel = np.abs(D - d) / d
    out = dict(mape=float(np.mean(rel)), near_mape=float(np.mean(rel[near])))
    if est.order:
        p, v = est.n_bits // est.block_, est.v_.astype(np.float64)
        C = condense(est.project(X).astype(np.float64), v)
        jl = np.sqrt(np.pi / 2) / (p * np.linalg.norm(v)) * np.abs(C[iu[0]] - C[iu[1]]).sum(axis=1)
        jl_rel = np.abs(jl - d) / d
        out.update(jl_mape=float(np.mean(jl_rel)), quant_err=float(np.mean(np.abs(D - jl) / d)),
                   near_jl_mape=float(np.mean(jl_rel[near])), p=p)
        out["_jl_rel"] = jl_rel
    out["_rel"] = rel
    return out


def block_for(order: int, target: float) -> int:
    """The valid lambda = r (t - 1) + 1 nearest target."""
    return order * max(1, round((target - 1) / order)) + 1


def sweep(X, hadamard, iu, d, near, order, ks, seeds, schedule, bin_k=None) -> list:
    rows = []
    for k in ks:
        if order == 0:
            m, kw = 2**k, dict(order=0, density=1.0)
        else:
            lam = block_for(order, 2 ** (k / 2) if schedule == "sqrt" else 2**k / P_FIXED)
            m, kw = lam * round(2**k / lam), dict(order=order, block=lam, hadamard=hadamard)
        runs = [evaluate(BinaryEmbedding(m, random_state=s, **kw), X, iu, d, near) for s in range(seeds)]
        bits = BinaryEmbedding(m, **kw).fit(X[:2]).bits_per_vector
        row = dict(m_target=2**k, m=m, block=kw.get("block"), bits=bits)
        rel = np.mean([r.pop("_rel") for r in runs], axis=0)
        jl_rel = np.mean([r.pop("_jl_rel") for r in runs], axis=0) if order else None
        if k == bin_k:
            row["by_distance"] = binned(d, rel)
            if order:
                row["by_distance"]["jl_mape"] = binned(d, jl_rel)["mape"]
        for key in runs[0]:
            row[key] = float(np.mean([r[key] for r in runs]))
        row["std"] = float(np.std([r["mape"] for r in runs]))
        rows.append(row)
    return rows


P_FIXED = 64


def main():
    args = parse_args(__doc__.splitlines()[0])
    n, seeds, ks, ks_p = (60, 1, range(7, 11), range(9, 11)) if args.quick else (200, 3, range(7, 15), range(9, 15))
    bin_k = min(12, max(ks))
    results, fixed_p, checks, near_info, by_distance = {}, {}, {}, {}, {}
    for name, (X, hadamard) in datasets(n).items():
        iu = np.triu_indices(n, 1)
        d = np.linalg.norm(X[iu[0]] - X[iu[1]], axis=1)
        near = near_mask(X, iu)
        near_info[name] = dict(pairs=int(near.sum()), all_pairs=len(d), median_distance=float(np.median(d[near])),
                               distance_range=[float(d[near].min()), float(d[near].max())],
                               median_distance_all=float(np.median(d)))
        res = results[name] = {}
        fix = fixed_p[name] = {}
        for order in tqdm((0, 1, 2, 3), desc=name):
            res[f"r={order}" if order else "sign(Ax)"] = sweep(X, hadamard, iu, d, near, order, ks, seeds, "sqrt",
                                                               bin_k)
            if order:
                fix[f"r={order}"] = sweep(X, hadamard, iu, d, near, order, ks_p, seeds, "fixed p")
        # error vs true distance at m = 2^bin_k, and sign(A x) at exactly the bits of each order there
        bd = by_distance[name] = {}
        for label, rows in res.items():
            row = next(r for r in rows if r["m_target"] == 2**bin_k)
            bd[label] = dict(m=row["m"], bits=row["bits"], p=row.get("p"), **row.pop("by_distance"))
            if label != "sign(Ax)":
                b = row["bits"]
                runs = [evaluate(BinaryEmbedding(b, order=0, density=1.0, random_state=s), X, iu, d, near)["_rel"]
                        for s in range(seeds)]
                bd[f"sign(Ax) at {label} bits"] = dict(m=b, bits=b, **binned(d, np.mean(runs, axis=0)))
        sign = res["sign(Ax)"]
        log_bits, log_mape = np.log([s["bits"] for s in sign]), np.log([s["mape"] for s in sign])
        log_near = np.log([s["near_mape"] for s in sign])
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
                at_near = np.exp(np.interp(np.log([r["bits"] for r in big]), log_bits, log_near))
                near_ratio = [float(r["near_mape"] / a) for r, a in zip(big, at_near)]
                near_jl_ratio = [float(r["near_jl_mape"] / a) for r, a in zip(big, at_near)]
                entry.update(near_ratio_to_sign_at_equal_bits=near_ratio,
                             near_jl_ratio_to_sign_at_equal_bits=near_jl_ratio,
                             beats_sign_near_met=bool(near_ratio and max(near_ratio) < 1),
                             beats_sign_near_at_some_m=bool(near_ratio and min(near_ratio) < 1))
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
    print(f"\nMAPE over near pairs ({K_NEAR} nearest neighbours of each vector); lambda ~ sqrt(m); m [bits]")
    for name, res in results.items():
        info = near_info[name]
        print(f"-- {name}: {info['pairs']} pairs, distance {info['distance_range'][0]:.3f}..."
              f"{info['distance_range'][1]:.3f}, median {info['median_distance']:.3f} "
              f"(all pairs {info['median_distance_all']:.3f})")
        for label, rows in res.items():
            cells = " ".join(f"{r['near_mape']:.4f}[{r['bits']}]" for r in rows)
            print(f"{label:9s} {cells}")
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
            ratios = " ".join(f"{x:.2f}" for x in c["near_ratio_to_sign_at_equal_bits"])
            jl = " ".join(f"{x:.2f}" for x in c["near_jl_ratio_to_sign_at_equal_bits"])
            print(f"{verdict(c['beats_sign_near_met']):8s} {key}: NEAR-pair MAPE / sign(Ax) at equal bits, "
                  f"m >= 1024: {ratios} (unquantized JL: {jl})")

    fig, axes = plt.subplots(len(results), 5, figsize=(29, 4.6 * len(results)))
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
        ax = axes[row, 3]
        for i, (label, rows) in enumerate(res.items()):
            ax.loglog([r["bits"] for r in rows], [r["near_mape"] for r in rows], "o-", color=f"C{i}", label=label)
        ax.set(xlabel="bits per vector after condensing", ylabel=f"MAPE over near pairs ({K_NEAR}-NN)",
               title=f"{name}: near pairs (median d = {near_info[name]['median_distance']:.2f}), lambda ~ sqrt(m)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        ax = axes[row, 4]
        bd = by_distance[name]
        grid = np.geomspace(BINS[0], BINS[-1], 80)
        for i, label in enumerate(res):
            e = bd[label]
            ok = np.array(e["count"]) >= MIN_BIN
            ax.loglog(np.array(e["d_mean"])[ok], np.array(e["mape"])[ok], "o-", color=f"C{i}",
                      label=f"{label}, m = {e['m']} [{e['bits']} b]")
            if label != "sign(Ax)":
                ax.loglog(np.array(e["d_mean"])[ok], np.array(e["jl_mape"])[ok], "^", color=f"C{i}", ms=4,
                          mfc="none", label=f"{label}: unquantized JL from the same p")
            if label == "sign(Ax)":
                ax.loglog(grid, sign_theory(grid, e["m"]), "--", color=f"C{i}", lw=1, label="sign(Ax) theory")
            else:
                ax.axhline(jl_theory(e["p"]), color=f"C{i}", ls="--", lw=1,
                           label=f"{label} JL floor sqrt(1-2/pi)/sqrt(p), p = {e['p']}")
                eq = bd[f"sign(Ax) at {label} bits"]
                ok = np.array(eq["count"]) >= MIN_BIN
                ax.loglog(np.array(eq["d_mean"])[ok], np.array(eq["mape"])[ok], "x", color=f"C{i}", ms=7,
                          label=f"sign(Ax) at {label} bits ({eq['bits']}) + theory (dotted)")
                ax.loglog(grid, sign_theory(grid, eq["bits"]), ":", color=f"C{i}", lw=1)
        info = near_info[name]["distance_range"]
        ax.axvspan(info[0], info[1], color="0.9", zorder=0)
        ax.set(xlabel="true distance ||a - b||_2 (unit vectors; shaded: near pairs)", ylabel="mean |d_hat - d| / d",
               title=f"{name}: error vs distance, m = 2^{bin_k} (bins with >= {MIN_BIN} pairs)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=6)
    payload = dict(n=n, seeds=seeds, p_fixed=P_FIXED, results=results, fixed_p=fixed_p, checks=checks,
                   near_pairs=dict(k=K_NEAR, cluster_size=CLUSTER_SIZE, cluster_radii=list(CLUSTER_RADII),
                                   **near_info),
                   by_distance=dict(m_target=2**bin_k, bins=BINS.tolist(), **by_distance))
    write(args.out, "noise_binary_embedding", payload, fig)


if __name__ == "__main__":
    main()
