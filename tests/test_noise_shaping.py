"""Noise-shaping quantizers, decoders, QuantizedRFF and BinaryEmbedding."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.linalg import hadamard
from sklearn.base import clone
from sklearn.metrics.pairwise import rbf_kernel

from axe_deploy.noise_shaping import (
    BinaryEmbedding,
    QuantizedRFF,
    beta_quantize,
    beta_vector,
    bits_per_vector,
    block_values,
    condense,
    decode,
    decoder_matrix,
    fwht,
    levels,
    round_quantize,
    sigma_delta,
    sigma_delta_rule,
    sigma_delta_vector,
    sparse_gaussian,
    stochastic_quantize,
)

EPS = 1e-9
unit = st.floats(-1.0, 1.0, allow_nan=False)
extreme = st.sampled_from([-1.0, 1.0, 0.0, 2 / 3, -2 / 3, 0.999, -0.999])
inputs = st.lists(st.one_of(unit, extreme), min_size=1, max_size=80)


def d_r(u, r):
    """(D^r u)_j with u_j = 0 for j < 0."""
    for _ in range(r):
        u = np.diff(u, prepend=0.0)
    return u


# --- stability and the noise-shaping identity, for every input in [-1, 1] ---------------


@settings(max_examples=150, deadline=None)
@given(y=inputs, order=st.integers(1, 3), bits=st.integers(1, 3))
def test_sigma_delta_state_bounded_for_every_input(y, order, bits):
    rule = sigma_delta_rule(order, bits)
    codes, u = sigma_delta(np.array(y), order, bits, return_state=True)
    level = codes / (2**bits - 1)
    assert set(np.unique(codes)) <= set(range(-(2**bits - 1), 2**bits, 2))
    assert np.abs(u).max() <= rule.state_bound + EPS
    np.testing.assert_allclose(rule.mu * np.array(y) - level, d_r(u, order), atol=1e-9)


@pytest.mark.parametrize("order,bits", [(o, b) for o in (1, 2, 3) for b in (1, 2, 3)])
def test_sigma_delta_worst_case_sequences_stay_bounded(order, bits):
    m = 3000
    j = np.arange(m)
    worst = np.stack([np.ones(m), -np.ones(m), np.where(j % 2, 1.0, -1.0), np.sign(np.sin(0.01 * j))])
    rule = sigma_delta_rule(order, bits)
    _, u = sigma_delta(worst, order, bits, return_state=True)
    assert np.abs(u).max() <= rule.state_bound + EPS


def test_rule_choice_and_radii():
    # 1-bit orders 2 and 3 need the stable filters: mu = 2 - ||h||_1
    assert sigma_delta_rule(1, 1).kind == "greedy" and sigma_delta_rule(1, 1).mu == 1.0
    r2, r3 = sigma_delta_rule(2, 1), sigma_delta_rule(3, 1)
    assert (r2.kind, r3.kind) == ("stable", "stable")
    assert r2.mu == pytest.approx(2 / 3) and r3.mu == pytest.approx(2 - 632 / 432)
    assert r2.state_bound == pytest.approx(3.5)  # ||g||_1 for h = (7 z - z^7) / 6
    # with 2 bits, greedy order 2 has radius (4 - 3) / 3 and u bounded by delta / 2
    assert sigma_delta_rule(2, 2).kind == "greedy" and sigma_delta_rule(2, 2).mu == pytest.approx(1 / 3)


@settings(max_examples=100, deadline=None)
@given(y=inputs, bits=st.integers(1, 3), beta=st.floats(1.05, 1.95), block=st.integers(1, 6))
def test_beta_state_bounded_and_telescopes(y, bits, beta, block):
    y = np.resize(np.array(y), block * max(1, len(y) // block))
    codes, u = beta_quantize(y, beta, block, bits, return_state=True)
    mu = (2**bits - beta) / (2**bits - 1)
    assert np.abs(u).max() <= 1 / (2**bits - 1) + EPS
    ub = u.reshape(-1, block)
    prev = np.concatenate([np.zeros((len(ub), 1)), ub[:, :-1]], axis=1)
    np.testing.assert_allclose(mu * y - codes / (2**bits - 1), (ub - beta * prev).ravel(), atol=1e-9)
    # v = beta^-(1..lambda) telescopes the block error to beta^-lambda u_lambda
    err = condense(mu * y - codes / (2**bits - 1), beta_vector(beta, block, bits))
    np.testing.assert_allclose(err, beta**-block * ub[:, -1], atol=1e-9)


# --- exact small cases by hand --------------------------------------------------------------


def test_first_order_one_bit_by_hand():
    # u: 0 -> -.7 -> .6 -> -.1 -> -.8 ; q = sign(u + y)
    codes, u = sigma_delta([0.3, 0.3, 0.3, 0.3], 1, 1, return_state=True)
    assert codes.tolist() == [1, -1, 1, 1]
    np.testing.assert_allclose(u, [-0.7, 0.6, -0.1, -0.8])


def test_second_order_stable_filter_by_hand():
    # mu y = .5; w1 = .5 -> +1, v1 = -.5; w2 = 7/6 v1 + .5 = -1/12 -> -1, v2 = 11/12;
    # w3 = 7/6 v2 + .5 = 113/72 -> +1
    assert sigma_delta([0.75, 0.75, 0.75], 2, 1).tolist() == [1, -1, 1]


def test_second_order_greedy_two_bit_by_hand():
    # mu = 1/3, levels +-1/3, +-1; q_j = Q(2 u_{j-1} - u_{j-2} + mu y_j)
    # y = 1: w = 1/3 -> 1/3, u = 0; again u = 0 ... ; y = (1, -1): w2 = -1/3 -> -1/3
    assert sigma_delta([1.0, 1.0, -1.0], 2, 2).tolist() == [1, 1, -1]
    # mu y = .2: w1 = .2 -> 1/3 (code 1), u1 = -2/15; w2 = -4/15 + .2 = -1/15 -> -1/3, u2 = 4/15
    codes, u = sigma_delta([0.6, 0.6], 2, 2, return_state=True)
    assert codes.tolist() == [1, -1]
    np.testing.assert_allclose(u, [-2 / 15, 4 / 15])


def test_round_and_beta_by_hand():
    assert round_quantize([-1, -0.34, -0.33, 0, 0.5, 1], bits=2).tolist() == [-3, -1, -1, 1, 1, 3]
    np.testing.assert_allclose(levels(2), [-1, -1 / 3, 1 / 3, 1])
    # beta = 1.5, mu = .5, blocks of 2 with reset: (.5 -> +1, u=-.5), (-.25 -> -1), | (-.5 -> -1), (.85 -> +1)
    codes, u = beta_quantize([1, 1, -1, 0.2], 1.5, 2, return_state=True)
    assert codes.tolist() == [1, -1, -1, 1]
    np.testing.assert_allclose(u, [-0.5, 0.75, 0.5, -0.15])


def test_decoder_vectors_and_bit_accounting_by_hand():
    assert sigma_delta_vector(1, 4).tolist() == [1, 1, 1, 1]
    assert sigma_delta_vector(2, 5).tolist() == [1, 2, 3, 2, 1]
    assert sigma_delta_vector(3, 4).tolist() == [1, 3, 3, 1]
    np.testing.assert_allclose(beta_vector(1.5, 3), [1 / 1.5, 1 / 2.25, 1 / 3.375])
    assert block_values([1, 2, 1], 1) == 5  # <v, a> in {-4, -2, 0, 2, 4}
    assert block_values([1, 1], 2) == 7  # sums of two of {-3, -1, 1, 3}
    assert block_values([1, 3, 3, 1], 1) == 9
    assert bits_per_vector(9, 1, np.array([1, 2, 1])) == 7  # ceil(3 log2 5)
    assert bits_per_vector(12, 2) == 24
    assert bits_per_vector(8, 1, beta_vector(1.5, 4)) == 8  # beta: no compression


# --- decoders ------------------------------------------------------------------------------


def test_decoder_matrix_is_normalised_block_diagonal():
    v = sigma_delta_vector(2, 5)
    V = decoder_matrix(v, 3, 0.7)
    np.testing.assert_allclose(V @ V.T, 0.49 * np.eye(3), atol=1e-12)
    x = np.arange(15.0)
    np.testing.assert_allclose(V @ x, decode(x, v, 0.7))


@settings(max_examples=60, deadline=None)
@given(y=st.lists(unit, min_size=60, max_size=60), order=st.integers(1, 3))
def test_condensed_sigma_delta_error_is_bounded(y, order):
    # v^T D^r u touches r + 1 entries of u per block (2^r ||u|| in all): the error of a block
    # does not grow with lambda, so after dividing by ||v||_2 it decays like lambda^-(r-1/2)
    block = {1: 6, 2: 5, 3: 4}[order]
    rule = sigma_delta_rule(order, 1)
    codes = sigma_delta(np.array(y), order, 1)
    err = condense(rule.mu * np.array(y) - codes, sigma_delta_vector(order, block))
    assert np.abs(err).max() <= 2**order * rule.state_bound + EPS


def test_rff_decoder_normalisation_gives_unbiased_kernel():
    # V z with c = sqrt(2/p): E <V z(x), V z(y)> = exp(-gamma |x - y|^2); p = 4000 -> std ~ 0.02
    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 5)) * 0.4
    est = QuantizedRFF(20000, gamma=0.5, quantizer="sigma_delta", order=2, block=5, random_state=0).fit(X)
    F = decode(est.features(X), est.v_, np.sqrt(2 / est.n_decoded_))
    np.testing.assert_allclose(F @ F.T, rbf_kernel(X, gamma=0.5), atol=0.1)


def test_embedding_decoder_normalisation_gives_l2_norm():
    # c = sqrt(pi/2)/p: ||V A x||_1 ~ ||x||_2 for Gaussian A
    rng = np.random.default_rng(1)
    x = rng.normal(size=64)
    A = rng.normal(size=(20000, 64))
    v = sigma_delta_vector(2, 5)
    est = np.abs(decode(A @ x, v, np.sqrt(np.pi / 2) / 4000)).sum()
    assert est == pytest.approx(np.linalg.norm(x), rel=0.05)


# --- stochastic rounding -------------------------------------------------------------------


@pytest.mark.parametrize("bits", [1, 2, 3])
def test_stochastic_rounding_is_unbiased(bits):
    y = np.array([-1.0, -0.77, -0.3, 0.0, 0.1, 1 / 3, 0.9, 1.0])
    n, draws = 2**bits - 1, 20000
    q = stochastic_quantize(np.tile(y, (draws, 1)), bits, rng=0) / n
    # each draw is one of the two neighbouring levels (spacing 2/n): variance <= 1/n^2
    assert np.all(np.abs(q - y) < 2 / n + EPS)
    tol = 5 / n / np.sqrt(draws) + EPS
    np.testing.assert_array_less(np.abs(q.mean(axis=0) - y), tol)
    exact = np.isclose((y + 1) * n / 2, np.round((y + 1) * n / 2))
    assert np.all(q[:, exact] == y[exact])  # values on a level are kept exactly


def test_round_to_nearest_is_biased_where_stochastic_is_not():
    y = np.full((20000, 1), 0.5)
    assert round_quantize(y, 1).mean() == 1.0
    assert abs(stochastic_quantize(y, 1, rng=2).mean() - 0.5) < 0.05


# --- QuantizedRFF -------------------------------------------------------------------------


def _kernel_error(est, X, K):
    F = est.fit(X).transform(X)
    iu = np.triu_indices(len(X), 1)
    return np.abs(F @ F.T - K)[iu].mean()


@pytest.mark.parametrize(
    "quantizer,kw",
    [("sigma_delta", {"order": 1}), ("sigma_delta", {"order": 2}), ("beta", {}), ("stochastic", {}), (None, {})],
)
def test_rff_kernel_error_decreases_with_m(quantizer, kw):
    rng = np.random.default_rng(3)
    X = rng.uniform(size=(40, 8))
    K = rbf_kernel(X, gamma=0.3)
    def error(m):
        ests = [QuantizedRFF(m, gamma=0.3, quantizer=quantizer, random_state=s, **kw) for s in range(3)]
        return np.mean([_kernel_error(est, X, K) for est in ests])

    errs = [error(300), error(4800)]
    assert errs[1] < 0.5 * errs[0]  # 16x the features: about 4x smaller
    assert errs[1] < 0.06


def test_rff_noise_shaping_beats_round_to_nearest_at_large_m():
    rng = np.random.default_rng(4)
    X = rng.uniform(size=(40, 8))
    K = rbf_kernel(X, gamma=0.3)
    rnd = _kernel_error(QuantizedRFF(4800, gamma=0.3, quantizer="round", random_state=0), X, K)
    sd = _kernel_error(QuantizedRFF(4800, gamma=0.3, quantizer="sigma_delta", order=2, block=5, random_state=0), X, K)
    assert sd < 0.5 * rnd  # sign(cos) estimates a different kernel: its error does not vanish


def test_rff_encode_decode_shapes_and_storage():
    X = np.random.default_rng(5).normal(size=(7, 3))
    est = QuantizedRFF(60, gamma=1.0, quantizer="sigma_delta", order=2, block=5, bits=2, random_state=0).fit(X)
    codes = est.encode(X)
    assert codes.shape == (7, 60) and codes.dtype == np.int8 and set(np.unique(codes)) <= {-3, -1, 1, 3}
    np.testing.assert_allclose(est.decode(codes), est.transform(X))
    assert est.transform(X).shape == (7, 12)
    assert est.bits_per_vector == bits_per_vector(60, 2, est.v_)
    assert QuantizedRFF(60, quantizer=None).fit(X).bits_per_vector == 32 * 60
    assert QuantizedRFF(60, quantizer="round", bits=3).fit(X).bits_per_vector == 180
    assert clone(est).get_params() == est.get_params()


def test_rff_stochastic_draws_fresh_noise_and_is_reproducible():
    X = np.random.default_rng(6).normal(size=(5, 3))
    a = QuantizedRFF(200, quantizer="stochastic", random_state=1).fit(X)
    b = QuantizedRFF(200, quantizer="stochastic", random_state=1).fit(X)
    first = a.encode(X)
    assert np.array_equal(first, b.encode(X))
    assert not np.array_equal(first, a.encode(X))


# --- BinaryEmbedding ----------------------------------------------------------------------


def _mape(est, X):
    codes = est.fit(X).transform(X)
    i, j = np.triu_indices(len(X), 1)
    d = np.linalg.norm(X[i] - X[j], axis=1)
    return np.mean(np.abs(est.distance(codes[i], codes[j]) - d) / d)


@pytest.mark.parametrize("order", [1, 2, 3])
def test_embedding_distance_error_decreases_with_m(order):
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 256))
    small, large = ({1: 120, 2: 125, 3: 130}[order], {1: 7200, 2: 7225, 3: 7300}[order])
    errs = [np.mean([_mape(BinaryEmbedding(m, order=order, random_state=s), X)
                     for s in (0, 1)]) for m in (small, large)]
    assert errs[1] < 0.6 * errs[0]
    assert errs[1] < {1: 0.2, 2: 0.12, 3: 0.12}[order]


@pytest.mark.parametrize("order", [2, 3])
def test_embedding_estimates_are_unbiased(order):
    # the sqrt(pi/2)/p normalisation, mu and the input scale together: mean ratio ~ 1
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 256))
    i, j = np.triu_indices(30, 1)
    d = np.linalg.norm(X[i] - X[j], axis=1)
    ratios = []
    for s in range(3):
        est = BinaryEmbedding(7225 if order == 2 else 7300, order=order, random_state=s).fit(X)
        codes = est.transform(X)
        ratios.append(np.mean(est.distance(codes[i], codes[j]) / d))
    assert np.mean(ratios) == pytest.approx(1.0, abs=0.025)


def test_embedding_hadamard_handles_sparse_data():
    # one-hot-like vectors are not spread out: a very sparse A misses their support
    rng = np.random.default_rng(8)
    X = np.zeros((30, 200))
    X[np.arange(30), rng.integers(0, 200, 30)] = 1.0
    X[np.arange(30), rng.integers(0, 200, 30)] += 2.0
    kw = dict(n_bits=3025, order=2, density=0.01, random_state=0)
    assert _mape(BinaryEmbedding(hadamard=True, **kw), X) < 0.5 * _mape(BinaryEmbedding(hadamard=False, **kw), X)


def test_embedding_codes_distances_and_storage():
    X = np.random.default_rng(9).normal(size=(12, 40))
    est = BinaryEmbedding(n_bits=100, order=2, block=5, random_state=0).fit(X)
    codes = est.transform(X)
    assert codes.dtype == np.int8 and set(np.unique(codes)) <= {-1, 1}
    D = est.pairwise_distances(codes)
    np.testing.assert_allclose(D[3, 7], est.distance(codes[3], codes[7]))
    np.testing.assert_allclose(np.diag(D), 0.0)
    np.testing.assert_allclose(est.distance(codes[:1], codes), D[0])  # rows broadcast
    assert est.compress(codes).shape == (12, 20)
    assert est.bits_per_vector == bits_per_vector(100, 1, est.v_) < 100
    sign = BinaryEmbedding(n_bits=4000, order=0, density=1.0, random_state=0)
    Xu = X / np.linalg.norm(X, axis=1, keepdims=True)
    assert _mape(sign, Xu) < 0.05  # angle -> chord estimate on unit vectors
    assert sign.bits_per_vector == 4000


def test_embedding_input_scale_by_hand():
    X = np.random.default_rng(10).normal(size=(6, 16))
    R = np.linalg.norm(X, axis=1).max()
    tail = BinaryEmbedding(n_bits=100, order=1, block=10, random_state=0).fit(X)
    # kappa = Phi^-1(1 - 1/(2m)) = Phi^-1(0.995) for m = 100
    assert tail.kappa_ == pytest.approx(2.5758293035489, rel=1e-9)
    assert tail.input_scale_ == pytest.approx(1.0 / (2.5758293035489 * R), rel=1e-9)
    fixed = BinaryEmbedding(n_bits=100, order=1, block=10, random_state=0, scale=2).fit(X)
    assert fixed.kappa_ == 2.0 and fixed.input_scale_ == pytest.approx(1.0 / (2.0 * R))
    peak = BinaryEmbedding(n_bits=100, order=1, block=10, random_state=0, scale="max").fit(X)
    assert peak.kappa_ is None
    assert peak.input_scale_ == pytest.approx(1.0 / np.abs(peak.project(X)).max())
    # with hadamard, |H D x| = |x| (zero padding to 32), so the same R applies
    had = BinaryEmbedding(n_bits=100, order=1, block=10, hadamard=True, random_state=0).fit(X[:, :13])
    assert had.input_scale_ == pytest.approx(1.0 / (2.5758293035489 * np.linalg.norm(X[:, :13], axis=1).max()))


@settings(max_examples=25, deadline=None)
@given(st.floats(1e-3, 1e4), st.sampled_from([1, 2, 3]), st.integers(0, 3))
def test_embedding_clips_so_state_stays_bounded(blowup, order, seed):
    # inputs far larger than those seen in fit are clipped into [-1, 1]: the codes are those
    # of the clipped projections and the Sigma-Delta state keeps its worst-case bound
    X = np.random.default_rng(seed).normal(size=(5, 12))
    est = BinaryEmbedding(n_bits=63, order=order, block=7, random_state=seed).fit(X)
    Z = blowup * np.random.default_rng(seed + 1).normal(size=(4, 12))
    y = np.clip(est.project(Z) * est.input_scale_, -1.0, 1.0)
    codes, u = sigma_delta(y, order, 1, return_state=True)
    np.testing.assert_array_equal(est.transform(Z), codes)
    assert np.abs(u).max() <= sigma_delta_rule(order, 1).state_bound + EPS


def test_embedding_tail_scale_beats_max_scale_for_first_order():
    # with the largest |A x| mapped to 1, typical inputs use a small part of the range and the
    # first-order block error is large next to the signal; the Gaussian-tail scale fixes that
    rng = np.random.default_rng(7)
    X = rng.normal(size=(30, 256))
    errs = {sc: np.mean([_mape(BinaryEmbedding(4096, order=1, scale=sc, random_state=s), X) for s in (0, 1)])
            for sc in ("tail", "max")}
    assert errs["tail"] < 0.85 * errs["max"]


def test_fwht_is_the_orthonormal_hadamard_transform():
    x = np.random.default_rng(10).normal(size=(3, 16))
    np.testing.assert_allclose(fwht(x), x @ hadamard(16).T / 4, atol=1e-12)
    np.testing.assert_allclose(fwht(fwht(x)), x, atol=1e-12)


def test_sparse_gaussian_density_and_variance():
    A = sparse_gaussian(400, 500, 0.05, 0)
    assert A.nnz / 200000 == pytest.approx(0.05, rel=0.05)
    assert (A.multiply(A)).sum() / 200000 == pytest.approx(1.0, rel=0.05)  # E A_ij^2 = 1


# --- errors on bad arguments --------------------------------------------------------------


BETA_RANGE = r"beta must be a number in the open interval \(1, 2\^bits\) = \(1, 2\)"


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: sigma_delta([0.5], order=4), r"order must be one of \[1, 2, 3\], got 4"),
        (lambda: sigma_delta([0.5], bits=0), r"bits must be an integer in 1\.\.8, got 0"),
        (lambda: sigma_delta([1.5]), r"y must lie in \[-1, 1\]"),
        (lambda: sigma_delta([np.nan]), r"y must lie in \[-1, 1\]"),
        (lambda: beta_quantize([0.1, 0.2], beta=2.0, block=2), BETA_RANGE),
        (lambda: beta_quantize([0.1, 0.2, 0.3], beta=1.5, block=2), r"block must be a positive integer dividing .* m = 3"),
        (lambda: sigma_delta_vector(2, 4), r"block must be r\*\(t-1\)\+1 for order r = 2"),
        (lambda: stochastic_quantize([0.2], bits=9), r"bits must be an integer in 1\.\.8"),
    ],
)
def test_core_errors_name_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


X_SMALL = np.random.default_rng(11).normal(size=(4, 3))


@pytest.mark.parametrize(
    "params,match",
    [
        ({"quantizer": "sd"}, r"quantizer must be one of \('sigma_delta', 'beta', 'round', 'stochastic', None\)"),
        ({"n_components": 0}, r"n_components must be a positive integer"),
        ({"gamma": -1.0}, r"gamma must be a positive number"),
        ({"bits": 1.5}, r"bits must be an integer in 1\.\.8"),
        ({"quantizer": "round", "order": 2}, r"order applies only to quantizer in \('sigma_delta',\)"),
        ({"quantizer": "sigma_delta", "beta": 1.5}, r"beta applies only to quantizer in \('beta',\)"),
        ({"quantizer": "stochastic", "block": 4}, r"block applies only to quantizer in \('sigma_delta', 'beta'\)"),
        ({"n_components": 60, "order": 2, "block": 4}, r"block must divide m = 60 .* order r = 2; got 4 \(valid: \[3, 5, 15"),
        ({"n_components": 64, "order": 2}, r"m = 64 has no block length lambda > 1 .* order r = 2"),
        ({"n_components": 64, "quantizer": "beta", "beta": 2.5}, BETA_RANGE),
    ],
)
def test_rff_errors_name_the_parameter(params, match):
    with pytest.raises(ValueError, match=match):
        QuantizedRFF(**params).fit(X_SMALL)


def test_rff_none_quantizer_has_no_codes():
    with pytest.raises(ValueError, match="quantizer=None keeps float features"):
        QuantizedRFF(10, quantizer=None).fit(X_SMALL).encode(X_SMALL)


@pytest.mark.parametrize(
    "params,match",
    [
        ({"n_bits": -3}, r"n_bits must be a positive integer"),
        ({"order": 4}, r"order must be one of \[0, 1, 2, 3\], got 4"),
        ({"order": 0, "block": 4}, r"block applies only to order 1\.\.3"),
        ({"density": 0.0}, r"density must be 'auto' or a number in \(0, 1\], got 0\.0"),
        ({"density": "dense"}, r"density must be 'auto' or a number in \(0, 1\]"),
        ({"hadamard": "yes"}, r"hadamard must be True or False"),
        ({"scale": "quantile"}, r"scale must be 'tail', 'max' or a positive number kappa, got 'quantile'"),
        ({"scale": 0.0}, r"scale must be 'tail', 'max' or a positive number kappa, got 0\.0"),
        ({"scale": True}, r"scale must be 'tail', 'max' or a positive number kappa"),
        ({"n_bits": 100, "order": 2, "block": 4}, r"block must divide m = 100 and be r\*\(t-1\)\+1 for order r = 2"),
    ],
)
def test_embedding_errors_name_the_parameter(params, match):
    with pytest.raises(ValueError, match=match):
        BinaryEmbedding(**params).fit(X_SMALL)


def test_embedding_rejects_wrong_widths():
    est = BinaryEmbedding(n_bits=100, order=1, block=10).fit(X_SMALL)
    with pytest.raises(ValueError, match=r"X has 5 features, but BinaryEmbedding was fitted with 3"):
        est.transform(np.ones((2, 5)))
    with pytest.raises(ValueError, match=r"codes must have n_bits = 100 columns"):
        est.distance(np.ones((2, 99)), np.ones((2, 99)))
    with pytest.raises(ValueError, match="all-zero data"):
        BinaryEmbedding(n_bits=100, order=1, block=10).fit(np.zeros((3, 3)))
