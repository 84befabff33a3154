"""Quantized random Fourier features for the Gaussian kernel exp(-gamma ||x - y||^2).

z(x)_j = cos(omega_j^T x + xi_j), omega_j ~ N(0, 2 gamma I), xi_j ~ U[0, 2 pi], j = 1..m.
Plain RFF: <sqrt(2/m) z(x), sqrt(2/m) z(y)> estimates the kernel. Quantized RFF: the m
features are quantized to b-bit codes q(x) and decoded to p features V q(x) / mu, with V
from `decoders` (c = sqrt(2/p)) and mu the quantizer's input scale, so that
transform(X) @ transform(Y).T estimates the kernel matrix.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array, check_random_state
from sklearn.utils.validation import check_is_fitted

from . import decoders as dec
from . import quantizers as qz

QUANTIZERS = ("sigma_delta", "beta", "round", "stochastic", None)
# Default block lengths: small, because the kernel estimate's error is mostly its Monte
# Carlo part ~ p^-1/2 in the p = m / lambda decoded features (on digits, m = 2160..8640,
# lambda = 2..5 gave the smallest kernel error); classifiers may prefer longer blocks.
DEFAULT_BLOCK = {"sigma_delta": 5, "beta": 4}


def _optimal_beta(block: int, bits: int) -> float:
    # minimise the block error bound beta^-lambda ||u||_inf / (mu ||v||_2) over (1, 2K)
    two_k = 2**bits
    betas = np.linspace(1.0, two_k, 2001)[1:-1]
    v_norm = np.sqrt((1 - betas ** (-2.0 * block)) / (betas**2 - 1))
    bound = betas**-block / (qz.beta_mu(betas, bits) * v_norm)
    return float(betas[np.argmin(bound)])


class QuantizedRFF(TransformerMixin, BaseEstimator):
    """Random Fourier features, quantized by noise shaping and decoded.

    Parameters
    ----------
    n_components : m, the number of random features (and of codes per vector).
    gamma : kernel parameter of exp(-gamma ||x - y||^2).
    quantizer : "sigma_delta", "beta", "round" (to nearest), "stochastic" (unbiased
        rounding, fresh noise at every call) or None (plain float RFF).
    order : Sigma-Delta order r in 1..3 (default 2); only for "sigma_delta".
    bits : bits b per code (1..8).
    block : lambda, features condensed into one decoded feature; m must be a multiple.
        Sigma-Delta needs lambda = r (t - 1) + 1. Default: the valid lambda > 1 dividing m
        closest to 5 (Sigma-Delta) or 4 (beta). Only for "sigma_delta" and "beta".
    beta : in (1, 2^b); default: the minimiser of the block error bound for lambda.
    random_state : seed or numpy RandomState for omega and xi (and the stochastic noise).

    Attributes (after fit): omega_ (d, m), offset_ (m,), block_, order_, beta_, v_ (decoder
    vector), n_decoded_ (p), scale_ (mu), bits_per_vector (storage after condensing).
    """

    def __init__(
        self,
        n_components=1024,
        gamma=1.0,
        quantizer="sigma_delta",
        order=None,
        bits=1,
        block=None,
        beta=None,
        random_state=None,
    ):
        self.n_components = n_components
        self.gamma = gamma
        self.quantizer = quantizer
        self.order = order
        self.bits = bits
        self.block = block
        self.beta = beta
        self.random_state = random_state

    def _check_params(self):
        if self.quantizer not in QUANTIZERS:
            raise ValueError(f"quantizer must be one of {QUANTIZERS}, got {self.quantizer!r}")
        m = self.n_components
        if isinstance(m, bool) or not isinstance(m, (int, np.integer)) or m < 1:
            raise ValueError(f"n_components must be a positive integer, got {m!r}")
        if not isinstance(self.gamma, (int, float, np.number)) or not self.gamma > 0:
            raise ValueError(f"gamma must be a positive number, got {self.gamma!r}")
        qz.check_bits(self.bits)
        for name, allowed in (("order", ("sigma_delta",)), ("block", ("sigma_delta", "beta")), ("beta", ("beta",))):
            if getattr(self, name) is not None and self.quantizer not in allowed:
                raise ValueError(
                    f"{name} applies only to quantizer in {allowed}, got {name}={getattr(self, name)!r} "
                    f"with quantizer={self.quantizer!r}; leave it None"
                )

    def fit(self, X, y=None):
        """Draw omega and xi for the feature dimension of X and set the decoder."""
        self._check_params()
        X = check_array(X, dtype=np.float64)
        rng = check_random_state(self.random_state)
        m, quantizer = self.n_components, self.quantizer
        self.omega_ = rng.normal(0.0, np.sqrt(2.0 * self.gamma), size=(X.shape[1], m))
        self.offset_ = rng.uniform(0.0, 2.0 * np.pi, size=m)
        self._noise = np.random.default_rng(rng.randint(2**31))
        self.order_ = self.beta_ = None
        self.block_, self.v_, self.scale_ = 1, np.ones(1, dtype=np.int64), 1.0
        if quantizer in ("sigma_delta", "beta"):
            r = 1 if quantizer == "beta" else qz.check_order(2 if self.order is None else self.order)
            if self.block is None:
                self.block_ = dec.choose_block(m, r, DEFAULT_BLOCK[quantizer])
            else:
                self.block_ = dec.check_block(self.block, m, r)
        if quantizer == "sigma_delta":
            self.order_ = r
            self.v_ = dec.sigma_delta_vector(self.order_, self.block_)
            self.scale_ = qz.sigma_delta_rule(self.order_, self.bits).mu
        elif quantizer == "beta":
            self.beta_ = _optimal_beta(self.block_, self.bits) if self.beta is None else self.beta
            self.v_ = dec.beta_vector(self.beta_, self.block_, self.bits)
            self.scale_ = qz.beta_mu(self.beta_, self.bits)
        self.n_decoded_ = m // self.block_
        self.n_features_in_ = X.shape[1]
        return self

    def features(self, X) -> np.ndarray:
        """The unquantized features z(X) in [-1, 1], shape (n, m)."""
        check_is_fitted(self, "omega_")
        X = check_array(X, dtype=np.float64)
        if X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, but QuantizedRFF was fitted with {self.n_features_in_}")
        z = X @ self.omega_
        z += self.offset_
        return np.clip(np.cos(z, out=z), -1.0, 1.0)

    def encode(self, X) -> np.ndarray:
        """Integer codes (n, m): odd integers a, level a / (2^b - 1)."""
        z = self.features(X)
        if self.quantizer is None:
            raise ValueError("quantizer=None keeps float features and has no integer codes; use transform")
        if self.quantizer == "sigma_delta":
            return qz.sigma_delta(z, self.order_, self.bits)
        if self.quantizer == "beta":
            return qz.beta_quantize(z, self.beta_, self.block_, self.bits)
        if self.quantizer == "round":
            return qz.round_quantize(z, self.bits)
        return qz.stochastic_quantize(z, self.bits, self._noise)

    def decode(self, codes) -> np.ndarray:
        """Decoded features V level(codes) / mu, shape (n, p)."""
        check_is_fitted(self, "omega_")
        levels = np.asarray(codes, dtype=np.float64) / (2**self.bits - 1)
        return dec.decode(levels, self.v_, np.sqrt(2.0 / self.n_decoded_)) / self.scale_

    def transform(self, X) -> np.ndarray:
        """Decoded features, so that transform(X) @ transform(Y).T estimates the kernel."""
        if self.quantizer is None:
            return self.features(X) * np.sqrt(2.0 / self.n_components)
        return self.decode(self.encode(X))

    @property
    def bits_per_vector(self) -> int:
        """Bits to store one vector: condensed codes (or 32 m for float32 plain RFF)."""
        check_is_fitted(self, "omega_")
        if self.quantizer is None:
            return 32 * self.n_components
        v = None if self.quantizer in ("round", "stochastic") else self.v_
        return dec.bits_per_vector(self.n_components, self.bits, v)
