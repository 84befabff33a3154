"""PTQ core against plain references: the u-vector GPFQ walk, column-by-column OPTQ, a
scalar AXE budget, unbiased stochastic rounding, and the API's errors and record."""

import math

import numpy as np
import pytest
import torch

from axe_deploy.core import accumulator
from axe_deploy.ptq import LayerStats, quantize_from_stats, quantize_layer, smallest_feasible_bits
from axe_deploy.ptq.axe import fit_factor, l1_ball_threshold, least_squares_gain
from axe_deploy.ptq.rtn import round_stochastic
from axe_deploy.ptq.spfq import align

torch.set_num_threads(1)


def layer(M=6, K=40, n=120, seed=0, dead=(), signed=False, bits=4):
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((M, K))
    s = np.abs(W).max(axis=1) / 7
    X = rng.standard_normal((n, K)) if signed else np.maximum(rng.standard_normal((n, K)) + 0.3, 0)
    lo, hi = accumulator.input_bounds(bits, signed)
    sx = np.abs(X).max() / hi
    Xq = np.clip(np.round(X / sx), lo, hi) * sx
    for j in dead:
        X[:, j] = Xq[:, j] = 0
    return W, s, X, Xq


def act_order_reference(diag):
    """Decreasing H_tt; entries equal to 9 significant digits keep their order (ptq.stats)."""
    return np.argsort(-np.round(diag / np.abs(diag).max() * 1e9), kind="stable")


def gpfq_reference(V, X, Xq, L, order=None):
    """The walk of docs/design.md ("GPFQ") with the error vector u, one row at a time."""
    M, K = V.shape
    Q = np.zeros((M, K))
    for m in range(M):
        u = np.zeros(X.shape[0])
        for t in (range(K) if order is None else order):
            nrm = Xq[:, t] @ Xq[:, t]
            if nrm > 0:
                Q[m, t] = np.clip(np.round((u + V[m, t] * X[:, t]) @ Xq[:, t] / nrm), -L, L)
            u += V[m, t] * X[:, t] - Q[m, t] * Xq[:, t]
    return Q


def optq_reference(V, Xq, L, percdamp=0.01, act_order=False):
    """gptq.py without blocks: one rank-1 update of the whole rest per column."""
    W = V.copy()
    H = 2 * Xq.T @ Xq / Xq.shape[0]
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    perm = act_order_reference(np.diag(H)) if act_order else np.arange(H.shape[0])
    W, H = W[:, perm], H[perm][:, perm]
    H = H + percdamp * np.mean(np.diag(H)) * np.eye(H.shape[0])
    Hinv = np.linalg.cholesky(np.linalg.inv(H)).T  # upper factor: Hinv = Uᵀ U
    Q = np.zeros_like(W)
    for i in range(W.shape[1]):
        Q[:, i] = np.clip(np.round(W[:, i]), -L, L)
        err = (W[:, i] - Q[:, i]) / Hinv[i, i]
        W[:, i:] -= np.outer(err, Hinv[i, i:])
    out = np.empty_like(Q)
    out[:, perm] = Q
    return out


def axe_gpfq_reference(V, X, Xq, L, P, x_min, x_max, lam, tile):
    """GPFQ with AXE, scalar per row: shrink by lam, then the feasible integers found by trying each."""
    M, K = V.shape
    Q = np.zeros((M, K))
    r_hi, r_lo = 2 ** (P - 1) - 1, -(2 ** (P - 1))
    for m in range(M):
        u = np.zeros(X.shape[0])
        hi, lo = {}, {}
        for t in range(K):
            b = t // tile
            h, l = hi.get(b, 0), lo.get(b, 0)
            ok = [c for c in range(-L, L + 1)
                  if h + max(c * x_max, c * x_min) <= r_hi and l + min(c * x_max, c * x_min) >= r_lo]
            nrm = Xq[:, t] @ Xq[:, t]
            arg = (u + V[m, t] * X[:, t]) @ Xq[:, t] / nrm
            arg = np.sign(arg) * max(abs(arg) - lam[m, b], 0)
            c = int(np.round(np.clip(arg, min(ok), max(ok))))
            Q[m, t] = c
            hi[b], lo[b] = h + max(c * x_max, c * x_min), l + min(c * x_max, c * x_min)
            u += V[m, t] * X[:, t] - c * Xq[:, t]
    return Q


KW = dict(weight_bits=4, input_bits=4, input_signed=False)
F64 = dict(KW, dtype=torch.float64)  # exact comparisons with float64 references


@pytest.mark.parametrize("block_size", [1, 7, 128])
@pytest.mark.parametrize("act_order", [False, True])
def test_gpfq_equals_u_vector_walk(block_size, act_order):
    W, s, X, Xq = layer(dead=(3, 17))
    q, info = quantize_layer(W, s, X, Xq, algorithm="gpfq", block_size=block_size, act_order=act_order, **F64)
    order = act_order_reference(np.sum(Xq**2, axis=0)) if act_order else None
    ref = gpfq_reference(W / s[:, None], X, Xq, 7, order)
    assert q.dtype == torch.long
    np.testing.assert_array_equal(q.numpy(), ref)
    assert np.all(q.numpy()[:, [3, 17]] == 0)
    assert info.algorithm == "gpfq" and info.accumulator_bits is None and info.budget_use is None


@pytest.mark.parametrize("block_size", [1, 16, 128])
@pytest.mark.parametrize("act_order", [False, True])
def test_optq_equals_column_by_column(block_size, act_order):
    W, s, X, Xq = layer(K=50, dead=(5,), seed=1)
    q, _ = quantize_layer(W, s, X, Xq, algorithm="optq", block_size=block_size, act_order=act_order, **F64)
    np.testing.assert_array_equal(q.numpy(), optq_reference(W / s[:, None], Xq, 7, act_order=act_order))


@pytest.mark.parametrize("signed,P,tile", [(False, 10, None), (False, 8, 9), (True, 9, None), (True, 7, 13)])
def test_axe_gpfq_equals_scalar_budget_reference(signed, P, tile):
    W, s, X, Xq = layer(M=5, K=45, seed=2, signed=signed)
    x_min, x_max = accumulator.input_bounds(4, signed)
    q, info = quantize_layer(W, s, X, Xq, weight_bits=4, input_bits=4, input_signed=signed, algorithm="gpfq",
                             accumulator_bits=P, tile_size=tile, soft_scale=1.0, passes=0,
                             dtype=torch.float64)
    V = W / s[:, None]
    T = tile or V.shape[1]
    lam = np.zeros((V.shape[0], math.ceil(V.shape[1] / T)))
    for b in range(lam.shape[1]):
        c = V[:, b * T:(b + 1) * T]
        lam[:, b] = l1_ball_threshold(torch.tensor(c - c.mean(axis=1, keepdims=True)),
                                      (2.0**P - 2) / (x_max - x_min)).numpy()
    assert lam.max() > 0  # the soft part is exercised
    np.testing.assert_array_equal(q.numpy(), axe_gpfq_reference(V, X, Xq, 7, P, x_min, x_max, lam, T))
    assert np.all(info.budget_use <= 1) and info.budget_use.max() > 0.9  # the hard part binds


def test_centre_equals_the_walk_on_centred_inputs():
    W, s, X, Xq = layer(M=5, K=45, seed=8)
    P, x_min, x_max = 10, 0, 15
    q, info = quantize_layer(W, s, X, Xq, algorithm="gpfq", accumulator_bits=P, centre=True, soft_scale=1.0,
                             passes=0, **F64)
    V = W / s[:, None]
    c = V - V.mean(axis=1, keepdims=True)
    lam = l1_ball_threshold(torch.tensor(c), (2.0**P - 2) / (x_max - x_min)).numpy()[:, None]
    ref = axe_gpfq_reference(V, X - X.mean(axis=0), Xq - Xq.mean(axis=0), 7, P, x_min, x_max, lam, 45)
    np.testing.assert_array_equal(q.numpy(), ref)
    assert info.centred and torch.equal(info.scale, torch.tensor(s))
    _, free = quantize_layer(W, s, X, Xq, algorithm="gpfq", centre=True, **F64)
    assert not free.centred  # the AXE options act only with a binding P


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("tile", [None, 8])
def test_fit_factor_fills_the_median_tile(signed, tile):
    rng = np.random.default_rng(9)
    v = torch.tensor(rng.standard_normal((7, 40)) * 8)
    v[6] = 0
    T = tile or 40
    x_min, x_max = accumulator.input_bounds(4, signed)
    c = fit_factor(v, torch.arange(40) // T, bits=9, x_min=x_min, x_max=x_max)
    use = []  # fraction of the 9-bit register each tile's worst case takes at c = 1
    for t0 in range(0, 40, T):
        part = v[:, t0:t0 + T].numpy()
        pos, neg = np.clip(part, 0, None).sum(1), np.clip(-part, 0, None).sum(1)
        use.append(np.maximum((x_max * pos - x_min * neg) / 255, (x_max * neg - x_min * pos) / 256))
    use = np.array(use)  # [tiles, rows]
    np.testing.assert_allclose(c[:6].numpy() * np.median(use[:, :6], axis=0), 1.0, rtol=1e-12)
    assert c[6] == 1 and torch.all(c[:6] < 1)


def test_least_squares_gain_is_the_1d_optimum():
    W, s, X, Xq = layer(M=4, K=20, seed=10)
    st = LayerStats.from_data(X, Xq, dtype=torch.float64)
    V = torch.tensor(W / s[:, None])
    q = torch.round(V * 0.5)
    q[3] = 0
    g = least_squares_gain(q, V, st.H, st.G).numpy()
    for m in range(3):
        a, b = Xq @ q[m].numpy(), X @ V[m].numpy()
        assert g[m] == pytest.approx(a @ b / (a @ a), rel=1e-9)
    assert g[3] == 1.0


def test_rescale_refits_the_scale_within_the_budget():
    W, s, X, Xq = layer(M=8, K=60, n=300, seed=11)
    P = 9
    ref = X @ W.T
    err = {}
    for rescale in (False, True):
        q, info = quantize_layer(W, s, X, Xq, algorithm="gpfq", accumulator_bits=P, rescale=rescale, **F64)
        assert info.exact_bits <= P and np.all(info.budget_use <= 1)
        err[rescale] = np.linalg.norm(ref - Xq @ (info.scale.numpy()[:, None] * q.numpy()).T)
    st = LayerStats.from_data(X, Xq, dtype=torch.float64)
    gain = least_squares_gain(q, torch.tensor(W / s[:, None]), st.H, st.G)
    torch.testing.assert_close(info.scale, torch.tensor(s) * gain, rtol=1e-12, atol=0)
    assert torch.all(info.scale > torch.tensor(s))  # shrunk integers, larger steps
    assert err[True] < 0.8 * err[False]


def test_l1_ball_threshold_projects_onto_the_ball():
    rng = np.random.default_rng(3)
    v = torch.tensor(rng.standard_normal((50, 30)) * rng.uniform(0.1, 5, (50, 1)))
    for radius in (0.5, 5.0, 40.0):
        theta = l1_ball_threshold(v, radius)
        l1 = (v.abs() - theta[:, None]).clamp_min(0).sum(dim=1)
        inside = v.abs().sum(dim=1) <= radius
        assert torch.all(theta[inside] == 0)
        torch.testing.assert_close(l1[~inside], torch.full_like(l1[~inside], radius))


def test_stochastic_rounding_is_unbiased():
    z = torch.tensor([-7.0, -6.5, -3.25, -0.9, 0.0, 0.1, 1.5, 2.75, 6.99, 7.0], dtype=torch.float64)
    n = 40000
    g = torch.Generator().manual_seed(1234)
    samples = torch.stack([round_stochastic(z, 7, g) for _ in range(n)])
    assert torch.all((samples == torch.floor(z)) | (samples == torch.ceil(z)))
    frac = z - torch.floor(z)
    sigma = torch.sqrt(frac * (1 - frac) / n)
    # 5 sigma per entry (two-sided, 10 entries): a false alarm about once in 10^5 seeds
    assert torch.all((samples.mean(dim=0) - z).abs() <= 5 * sigma + 1e-12)
    assert torch.all(samples[:, [0, 4, 9]] == z[[0, 4, 9]])  # integers are kept


def test_spfq_seeded_and_alignment():
    W, s, X, Xq = layer(K=30, n=200, seed=4)
    a, _ = quantize_layer(W, s, X, Xq, algorithm="spfq", seed=7, **KW)
    b, _ = quantize_layer(W, s, X, Xq, algorithm="spfq", seed=7, **KW)
    c, _ = quantize_layer(W, s, X, Xq, algorithm="spfq", seed=8, **KW)
    assert torch.equal(a, b) and not torch.equal(a, c)
    st = LayerStats.from_data(X, Xq, dtype=torch.float64)
    V = torch.tensor(W / s[:, None])
    # the first alignment sweep is the walk without quantization
    walk = np.zeros_like(W)
    for m in range(W.shape[0]):
        u = np.zeros(X.shape[0])
        for t in range(W.shape[1]):
            walk[m, t] = (u + V[m, t].item() * X[:, t]) @ Xq[:, t] / (Xq[:, t] @ Xq[:, t])
            u += V[m, t].item() * X[:, t] - walk[m, t] * Xq[:, t]
    np.testing.assert_allclose(align(V, st.H, st.G, 1).numpy(), walk, rtol=1e-9, atol=1e-9)
    # later sweeps are coordinate descent: the alignment error never grows
    errs = [np.linalg.norm(X @ W.T / s - Xq @ align(V, st.H, st.G, r).numpy().T) for r in (1, 2, 4)]
    assert errs[0] >= errs[1] >= errs[2]
    q3, _ = quantize_layer(W, s, X, Xq, algorithm="spfq", order=3, seed=7, **KW)
    assert q3.abs().max() <= 7


def test_streamed_stats_equal_one_batch():
    W, s, X, Xq = layer(K=24, n=90, seed=5)
    st = LayerStats(24)
    for i in range(0, 90, 32):
        st.update(X[i:i + 32], Xq[i:i + 32])
    for alg in ("gpfq", "optq", "spfq"):
        a, _ = quantize_from_stats(W, s, st, algorithm=alg, accumulator_bits=11, **KW)
        b, _ = quantize_layer(W, s, X, Xq, algorithm=alg, accumulator_bits=11, **KW)
        assert torch.equal(a, b), alg


def test_axe_respend_improves_the_objective_and_keeps_the_budget():
    W, s, X, Xq = layer(M=8, K=60, n=300, seed=6)
    ref = X @ W.T
    errs = {}
    for passes in (0, 1):
        q, info = quantize_layer(W, s, X, Xq, algorithm="gpfq", accumulator_bits=9, passes=passes, **KW)
        assert info.exact_bits <= 9
        errs[passes] = np.linalg.norm(ref - Xq @ (s[:, None] * q.numpy()).T, axis=0)
    assert np.all(errs[1] <= errs[0] + 1e-9) and errs[1].sum() < errs[0].sum()


@pytest.mark.parametrize("alg", ["gpfq", "optq"])
def test_unconstrained_descent_is_opt_in_and_never_worse(alg):
    W, s, X, Xq = layer(M=8, K=60, n=300, seed=6)
    ref = X @ W.T
    plain, info = quantize_layer(W, s, X, Xq, algorithm=alg, **F64)
    assert info.options["passes"] is None
    explicit0, _ = quantize_layer(W, s, X, Xq, algorithm=alg, passes=0, **F64)
    assert torch.equal(plain, explicit0)  # the default leaves the published algorithm alone
    polished, _ = quantize_layer(W, s, X, Xq, algorithm=alg, passes=1, **F64)
    assert polished.abs().max() <= 2 ** (KW["weight_bits"] - 1) - 1
    err = {k: np.linalg.norm((ref if alg == "gpfq" else Xq @ W.T) - Xq @ (s[:, None] * q.numpy()).T, axis=0)
           for k, q in (("plain", plain), ("polished", polished))}
    assert np.all(err["polished"] <= err["plain"] + 1e-9) and err["polished"].sum() < err["plain"].sum()


def test_record_and_multi_stage_widths():
    W, s, X, Xq = layer(M=4, K=64, seed=7)
    q, info = quantize_layer(W, s, X, Xq, algorithm="optq", accumulator_bits=9, tile_size=16, **KW)
    qn = q.numpy()
    np.testing.assert_array_equal(info.l1, np.abs(qn).sum(axis=1))
    lo, hi = accumulator.tile_ranges(qn, 0, 15, 16)
    assert info.tile_bits.shape == (4,) and np.all(info.tile_bits <= 9)
    assert info.exact_bits == max(info.tile_bits) and info.exact_bits <= 9
    row_lo, row_hi = accumulator.row_ranges(qn, 0, 15)
    assert info.outer_bits == accumulator.min_bits(row_lo.min(), row_hi.max())
    assert info.outer_bits <= 9 + 2  # four tiles: at most two more bits
    np.testing.assert_allclose(info.budget_use, np.maximum(hi / 255, lo / -256).max(axis=1))
    assert info.seconds > 0 and info.options["percdamp"] == 0.01 and info.tile_size == 16


def test_infeasible_accumulator_names_the_smallest():
    W, s, X, Xq = layer(M=2, K=8)
    assert smallest_feasible_bits(4, False) == 5 and smallest_feasible_bits(4, True) == 5
    with pytest.raises(ValueError, match=r"accumulator_bits >= 5"):
        quantize_layer(W, s, X, Xq, algorithm="gpfq", accumulator_bits=4, **KW)
    q, info = quantize_layer(W, s, X, Xq, algorithm="gpfq", accumulator_bits=5, **KW)
    assert info.exact_bits <= 5 and q.abs().sum() > 0


@pytest.mark.parametrize("kwargs,match", [
    (dict(algorithm="adaround"), "unknown algorithm"),
    (dict(algorithm="rtn", act_order=True), "do not apply to rtn"),
    (dict(tile_size=0), "tile_size"),
    (dict(weight_bits=1), "weight_bits"),
])
def test_bad_arguments(kwargs, match):
    W, s, X, Xq = layer(M=2, K=8)
    args = {**KW, **kwargs}
    with pytest.raises(ValueError, match=match):
        quantize_layer(W, s, X, Xq, **args)


def test_bad_shapes_and_scales():
    W, s, X, Xq = layer(M=3, K=8)
    with pytest.raises(ValueError, match="positive"):
        quantize_layer(W, -s, X, Xq, **KW)
    with pytest.raises(ValueError, match="K=5 inputs"):
        quantize_from_stats(W, s, LayerStats.from_data(X[:, :5], Xq[:, :5]), **KW)
    with pytest.raises(ValueError, match=r"\[M, K\]"):
        quantize_layer(W[0], s, X, Xq, **KW)
    q, _ = quantize_layer(W, s, None, None, algorithm="rtn", **KW)
    np.testing.assert_array_equal(q.numpy(), np.clip(np.round(W / s[:, None]), -7, 7))


def test_act_order_keeps_the_input_order_of_ties_within_float_noise():
    """Equal sums of squares whose last bits differ (other CPU kernels) are a tie, not an order."""
    from axe_deploy.ptq.stats import act_order_permutation

    d = torch.tensor([2.0, 3.0, 3.0 * (1 + 1e-13), 3.0 * (1 - 1e-13), 1.0, 2.5], dtype=torch.float64)
    assert act_order_permutation(torch.diag(d)).tolist() == [1, 2, 3, 5, 0, 4]
    assert torch.argsort(d, descending=True, stable=True).tolist() != [1, 2, 3, 5, 0, 4]
