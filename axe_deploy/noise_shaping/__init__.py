"""Noise-shaping quantizers for embeddings: Sigma-Delta and distributed (beta) quantization
of random Fourier features, and fast distance-preserving binary embeddings.

Functional core in `quantizers` (codes, stability) and `decoders` (V, bit accounting);
scikit-learn style adapters `QuantizedRFF` and `BinaryEmbedding`.
"""

from .decoders import beta_vector, bits_per_vector, block_values, condense, decode, decoder_matrix, sigma_delta_vector
from .quantizers import beta_quantize, levels, round_quantize, sigma_delta, sigma_delta_rule, stochastic_quantize
from .embedding import BinaryEmbedding, fwht, sparse_gaussian
from .rff import QuantizedRFF

__all__ = [
    "BinaryEmbedding",
    "fwht",
    "sparse_gaussian",
    "QuantizedRFF",
    "beta_quantize",
    "beta_vector",
    "bits_per_vector",
    "block_values",
    "condense",
    "decode",
    "decoder_matrix",
    "levels",
    "round_quantize",
    "sigma_delta",
    "sigma_delta_rule",
    "sigma_delta_vector",
    "stochastic_quantize",
]
