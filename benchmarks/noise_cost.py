"""Cost: quantize + decode time vs m (fitted exponent), and sparse vs dense projection speed.

Part 1: a batch of N vectors y in [-1, 1]^m, time of codes + condensed decoding for
Sigma-Delta r = 1, 2, 3 (1 bit) and beta, m = 15 * 2^k; fitted exponent of time vs m.
Part 2: vectors per second of x -> A x at n = 16384, m = 4096: the sparse Gaussian A
(density 1/sqrt(n), CSR float32, i.e. BinaryEmbedding.project) against a dense Gaussian A
(numpy BLAS, float64 and float32), all on one thread (scipy's sparse product uses one);
plus the whole embedding (projection + Sigma-Delta r = 3 + condensing) for scale.
Times are the best of several runs in process CPU time (robust to a shared machine).

    python benchmarks/noise_cost.py [--quick] [--out build/bench/noise]
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from noise_common import best_time, loglog_slope, parse_args, verdict, write
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from axe_deploy.noise_shaping import BinaryEmbedding, beta_quantize, beta_vector, decode, sigma_delta, sigma_delta_vector

SCHEMES = {
    "SD r=1 (lambda=4)": lambda y: decode(sigma_delta(y, 1, 1), sigma_delta_vector(1, 4), 1.0),
    "SD r=2 (lambda=5)": lambda y: decode(sigma_delta(y, 2, 1), sigma_delta_vector(2, 5), 1.0),
    "SD r=3 (lambda=4)": lambda y: decode(sigma_delta(y, 3, 1), sigma_delta_vector(3, 4), 1.0),
    "beta (lambda=4)": lambda y: decode(beta_quantize(y, 1.5, 4), beta_vector(1.5, 4), 1.0),
}


def main():
    args = parse_args(__doc__.splitlines()[0])
    batch, ks, (n, m, nvec) = (32, range(5, 8), (2048, 512, 64)) if args.quick else (32, range(5, 12), (16384, 4096, 256))
    rng = np.random.default_rng(0)

    quantize = {}
    for name, fn in SCHEMES.items():
        rows = quantize[name] = []
        for k in tqdm(ks, desc=name):
            mk = 15 * 2**k
            y = rng.uniform(-1, 1, size=(batch, mk))
            rows.append(dict(m=mk, seconds=best_time(lambda: fn(y), repeat=5)))
    exponents = {name: loglog_slope([r["m"] for r in rows], [r["seconds"] for r in rows]) for name, rows in quantize.items()}

    X = rng.normal(size=(nvec, n))
    with threadpool_limits(1):
        emb = BinaryEmbedding(n_bits=m, order=3, random_state=0).fit(X[:8])
        A32 = rng.normal(size=(m, n)).astype(np.float32)
        X32 = X.astype(np.float32)
        A64 = A32.astype(np.float64)
        t_sparse = best_time(lambda: emb.project(X))
        t_dense64 = best_time(lambda: A64 @ X.T)
        t_dense32 = best_time(lambda: A32 @ X32.T)
        t_embed = best_time(lambda: emb.compress(emb.transform(X)), repeat=1)
    del A32, A64
    speed = dict(
        n=n, m=m, vectors=nvec, density=emb.density_, nnz=int(emb.A_.nnz),
        sparse_vps=nvec / t_sparse, dense64_vps=nvec / t_dense64, dense32_vps=nvec / t_dense32,
        full_sparse_embedding_vps=nvec / t_embed,
    )
    speed["ratio_vs_fastest_dense"] = speed["sparse_vps"] / max(speed["dense64_vps"], speed["dense32_vps"])

    print(f"\nquantize + decode, batch of {batch} vectors: seconds")
    print(f"{'scheme':20s} " + " ".join(f"{r['m']:>8d}" for r in next(iter(quantize.values()))) + "  exponent")
    for name, rows in quantize.items():
        print(f"{name:20s} " + " ".join(f"{r['seconds']:8.4f}" for r in rows) + f"  {exponents[name]:6.2f}")
    print(f"\nprojection n={n}, m={m}, {nvec} vectors, 1 thread: sparse (s={speed['density']:.4f}, nnz={speed['nnz']}) "
          f"{speed['sparse_vps']:.0f} vec/s; dense float64 {speed['dense64_vps']:.0f}; "
          f"dense float32 {speed['dense32_vps']:.0f}; "
          f"whole sparse embedding (project + SD r=3 + condense) {speed['full_sparse_embedding_vps']:.0f}")
    for name, e in exponents.items():
        print(f"{verdict(e <= 1.1):8s} {name}: time exponent {e:.2f} (target <= 1.1)")
    ratio = speed["ratio_vs_fastest_dense"]
    print(f"{verdict(ratio >= 2):8s} sparse projection {ratio:.1f}x the fastest dense one (target >= 2x)")

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for name, rows in quantize.items():
        label = f"{name} (exponent {exponents[name]:.2f})"
        axes[0].loglog([r["m"] for r in rows], [r["seconds"] for r in rows], "o-", label=label)
    axes[0].set(xlabel="m", ylabel=f"seconds for {batch} vectors", title="quantize + decode")
    axes[0].grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    bars = {"sparse A": speed["sparse_vps"], "dense f64": speed["dense64_vps"], "dense f32": speed["dense32_vps"],
            "sparse A + SD r=3": speed["full_sparse_embedding_vps"]}
    axes[1].bar(list(bars), list(bars.values()))
    axes[1].set(ylabel="vectors per second (1 thread)", title=f"projection, n={n}, m={m}")
    write(args.out, "noise_cost", dict(batch=batch, quantize_decode=quantize, exponents=exponents, projection=speed), fig)


if __name__ == "__main__":
    main()
