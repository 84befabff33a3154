"""Fast distance-preserving binary embeddings: 1-bit Sigma-Delta of a sparse Gaussian A x.

A is m x n with i.i.d. entries Bernoulli(s) * N(0, 1/s) (E A_ij^2 = 1), stored sparse, so
A x costs about s m n operations; with hadamard=True the data first go through x -> H D x
(random signs D, orthonormal Walsh-Hadamard H, n padded to a power of two), which spreads
sparse vectors out at O(n log n) per vector. The projections are scaled into [-1, 1] and
clipped there (which keeps the state bounded for every input), quantized by 1-bit
Sigma-Delta of order r, and ||x - y||_2 is estimated by
||V (q_x - q_y)||_1 / (mu c) with V = sqrt(pi/2)/p (I_p (x) v)/||v||_2 and c the input scale.
order=0 is the baseline x -> sign(A x); its Hamming distance gives the angle
theta = pi * hamming / m, and `distance` returns 2 sin(theta/2) = ||x/|x| - y/|y|||_2.

Input scale. (A x)_i has variance ||x||_2^2 (E A_ij^2 = 1, and H D is orthonormal), so the
default scale="tail" maps kappa R to the edge of the range, R = the largest ||x||_2 in fit
and kappa = Phi^-1(1 - 1/(2m)) the Gaussian tail point that the m projections of a vector
of norm R exceed about once in all (the paper's assumption ||A x||_inf <= mu for each x,
by the union bound over its m coordinates). scale="max" (the largest |A x| over all fit
data: hardly any clipping, but typical inputs use a fifth of the range, so the shaped
error is larger relative to the signal) and a number kappa are the alternatives.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.spatial.distance import pdist, squareform
from scipy.stats import norm
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from . import decoders as dec
from . import quantizers as qz


def fwht(X) -> np.ndarray:
    """Orthonormal Walsh-Hadamard transform of each row; row length a power of two."""
    X = np.array(X, dtype=np.float64)
    n = X.shape[-1]
    if n & (n - 1):
        raise ValueError(f"fwht needs a power-of-two length, got {n}")
    lead, h = X.shape[:-1], 1
    while h < n:
        Y = X.reshape(*lead, n // (2 * h), 2, h)
        a, b = Y[..., 0, :], Y[..., 1, :]
        X = np.stack((a + b, a - b), axis=-2).reshape(*lead, n)
        h *= 2
    return X / np.sqrt(n)


def sparse_gaussian(m: int, n: int, density: float, rng) -> sp.csr_matrix:
    """m x n matrix of i.i.d. Bernoulli(density) * N(0, 1/density) entries, CSR."""
    rng = np.random.default_rng(rng)
    nnz = rng.binomial(m * n, density)
    flat = rng.choice(m * n, size=nnz, replace=False)
    data = rng.normal(0.0, 1.0 / np.sqrt(density), size=nnz)
    return sp.csr_matrix((data, (flat // n, flat % n)), shape=(m, n))


class BinaryEmbedding(TransformerMixin, BaseEstimator):
    """x -> {-1, 1}^m whose condensed l1 distances estimate Euclidean distances.

    Parameters
    ----------
    n_bits : m, the code length.
    density : s in (0, 1], or "auto" = 1/sqrt(n) (as scikit-learn's SparseRandomProjection).
    order : Sigma-Delta order r in 1..3, or 0 for the sign(A x) baseline.
    block : lambda; m must be a multiple, lambda = r (t - 1) + 1. Default: the valid lambda
        dividing m closest to sqrt(m), so that p = m / lambda is about lambda: the l1 estimate
        from p numbers (error ~ p^-1/2) and the shaped quantization error
        (~ lambda^-(r-1/2)) shrink together. Not used by order 0.
    hadamard : apply x -> H D x before A (for data that is not well spread).
    random_state : seed for A (and D).
    scale : how projections are mapped into the quantizer's range [-1, 1] (inputs beyond it
        are clipped, so the state stays bounded whatever the data): "tail" (default),
        kappa R -> 1 with R = max ||x||_2 over the fit data and kappa = Phi^-1(1 - 1/(2m));
        a positive number: that kappa; "max": max |A x| over the fit data -> 1.

    Attributes (after fit): A_ (sparse float32 m x n'), signs_ (D or None), n_padded_, v_, mu_,
    kappa_ (None for scale="max"), input_scale_ (the factor applied to A x before clipping),
    bits_per_vector (storage of the condensed codes that `distance` needs; m for order 0).
    """

    def __init__(self, n_bits=1024, density="auto", order=1, block=None, hadamard=False, random_state=None,
                 scale="tail"):
        self.n_bits = n_bits
        self.density = density
        self.order = order
        self.block = block
        self.hadamard = hadamard
        self.random_state = random_state
        self.scale = scale

    def _check_params(self, n_features: int) -> float:
        m = self.n_bits
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"n_bits must be a positive integer, got {m!r}")
        qz.check_order(self.order, allowed=range(0, qz.MAX_ORDER + 1))
        if self.order == 0 and self.block is not None:
            raise ValueError(f"block applies only to order 1..{qz.MAX_ORDER}, got block={self.block!r} with order=0")
        if not isinstance(self.hadamard, (bool, np.bool_)):
            raise ValueError(f"hadamard must be True or False, got {self.hadamard!r}")
        k = self.scale
        if not (isinstance(k, str) and k in ("tail", "max")) and (
            isinstance(k, (bool, str)) or not isinstance(k, (int, float, np.number)) or not 0 < k < np.inf
        ):
            raise ValueError(f"scale must be 'tail', 'max' or a positive number kappa, got {self.scale!r}")
        if isinstance(self.density, str) and self.density == "auto":
            return min(1.0, 1.0 / np.sqrt(n_features))
        s = self.density
        if isinstance(s, (bool, str)) or not isinstance(s, (int, float, np.number)) or not 0 < s <= 1:
            raise ValueError(f"density must be 'auto' or a number in (0, 1], got {self.density!r}")
        return float(self.density)

    def project(self, X) -> np.ndarray:
        """The real projections A x (after H D with hadamard=True), float32, shape (n, m)."""
        check_is_fitted(self, "A_")
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but BinaryEmbedding was fitted with {self.n_features_in_}")
        if self.signs_ is not None:
            X = fwht(np.pad(X * self.signs_, ((0, 0), (0, self.n_padded_ - X.shape[1]))))
        # CSR times a C-ordered right-hand side streams both (X.T as a view is ~2x slower);
        # float32 halves the memory traffic and is ample for 1-bit codes
        return (self.A_ @ np.ascontiguousarray(X.T, dtype=np.float32)).T

    def fit(self, X, y=None):
        """Draw A (and D), set the decoder and the input scale from the data X."""
        X = check_array(X, dtype=np.float64)
        density = self._check_params(X.shape[1])
        rng = check_random_state(self.random_state)
        m, n = self.n_bits, X.shape[1]
        self.n_padded_ = 1 << (n - 1).bit_length() if self.hadamard else n
        self.signs_ = rng.choice([-1.0, 1.0], size=n) if self.hadamard else None
        self.A_ = sparse_gaussian(m, self.n_padded_, density, rng.randint(2**31)).astype(np.float32)
        if self.order == 0:
            self.block_, self.v_, self.mu_ = 1, None, 1.0
        else:
            if self.block is None:
                self.block_ = dec.choose_block(m, self.order, np.sqrt(m))
            else:
                self.block_ = dec.check_block(self.block, m, self.order)
            self.v_ = dec.sigma_delta_vector(self.order, self.block_)
            self.mu_ = qz.sigma_delta_rule(self.order, 1).mu
        self.n_features_in_, self.density_ = n, density
        if isinstance(self.scale, str) and self.scale == "max":
            self.kappa_ = None
            peak = float(np.abs(self.project(X)).max())
        else:
            self.kappa_ = float(norm.isf(0.5 / m)) if isinstance(self.scale, str) else float(self.scale)
            peak = self.kappa_ * float(np.linalg.norm(X, axis=1).max())  # |H D x| = |x|
        if not peak > 0:
            raise ValueError("cannot set the input scale: A x = 0 for every row of X (all-zero data?)")
        self.input_scale_ = 1.0 / peak
        return self

    def transform(self, X) -> np.ndarray:
        """The codes, int8 in {-1, 1}, shape (n, m)."""
        y = self.project(X)
        if self.order == 0:
            return np.where(y >= 0, 1, -1).astype(np.int8)
        return qz.sigma_delta(np.clip(y * self.input_scale_, -1.0, 1.0), self.order, 1)

    def compress(self, codes) -> np.ndarray:
        """Condensed integer codes (I_p (x) v) q, shape (n, p): all that `distance` needs."""
        check_is_fitted(self, "A_")
        if self.order == 0:
            raise ValueError("order=0 (sign baseline) codes are not condensed")
        return dec.condense(np.asarray(codes, dtype=np.int64), self.v_)

    def _l1_scale(self) -> float:
        # ||x - y||_2 ~ c / ||v||_2 * ||(I_p (x) v)(q_x - q_y)||_1 / (mu kappa), c = sqrt(pi/2)/p
        p = self.n_bits // self.block_
        return np.sqrt(np.pi / 2.0) / (p * np.linalg.norm(self.v_.astype(np.float64)) * self.mu_ * self.input_scale_)

    def distance(self, codes_a, codes_b) -> np.ndarray:
        """Row-by-row estimates of ||a - b||_2 from codes (rows broadcast)."""
        check_is_fitted(self, "A_")
        a, b = np.asarray(codes_a, dtype=np.int64), np.asarray(codes_b, dtype=np.int64)
        m = self.n_bits
        if a.shape[-1] != m or b.shape[-1] != m:
            raise ValueError(f"codes must have n_bits = {m} columns, got shapes {a.shape} and {b.shape}")
        if self.order == 0:
            return 2.0 * np.sin(np.pi * np.count_nonzero(a != b, axis=-1) / (2.0 * m))
        return self._l1_scale() * np.abs(dec.condense(a - b, self.v_)).sum(axis=-1)

    def pairwise_distances(self, codes) -> np.ndarray:
        """Square matrix of the estimated distances between all rows of codes (n, m)."""
        check_is_fitted(self, "A_")
        codes = np.asarray(codes)
        if codes.ndim != 2 or codes.shape[1] != self.n_bits:
            raise ValueError(f"codes must have shape (n, n_bits = {self.n_bits}), got {codes.shape}")
        if self.order == 0:
            return squareform(2.0 * np.sin(np.pi / 2.0 * pdist(codes, "hamming")))
        return squareform(self._l1_scale() * pdist(self.compress(codes).astype(np.float64), "cityblock"))

    @property
    def bits_per_vector(self) -> int:
        """Storage of one vector as needed by `distance` (condensed codes; m for order 0)."""
        check_is_fitted(self, "A_")
        return self.n_bits if self.order == 0 else dec.bits_per_vector(self.n_bits, 1, self.v_)
