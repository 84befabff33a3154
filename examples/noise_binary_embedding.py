"""Binary codes of digits images whose condensed l1 distances estimate Euclidean distances.

    python examples/noise_binary_embedding.py
"""

import numpy as np
from sklearn.datasets import load_digits

from axe_deploy.noise_shaping import BinaryEmbedding

X = load_digits().data[:500]
true = np.linalg.norm(X[:, None] - X[None], axis=-1)

# digits are sparse (many zero pixels): spread them with the Walsh-Hadamard transform first
emb = BinaryEmbedding(n_bits=4095, order=2, hadamard=True, random_state=0).fit(X)
codes = emb.transform(X)  # int8 in {-1, +1}, 4095 per image
est = emb.pairwise_distances(codes)

i, j = np.triu_indices(len(X), 1)
mape = np.mean(np.abs(est[i, j] - true[i, j]) / true[i, j])
print(f"{codes.shape[1]} bits per code, condensed to {emb.bits_per_vector} bits "
      f"(block {emb.block_}); distance MAPE {100 * mape:.1f}%")

# nearest-neighbour search on the codes: how many of the true 10 nearest are found
np.fill_diagonal(true, np.inf)
np.fill_diagonal(est, np.inf)
recall = np.mean([len(set(np.argsort(t)[:10]) & set(np.argsort(e)[:10])) / 10 for t, e in zip(true, est)])
print(f"recall@10 of the nearest neighbours from the codes: {recall:.2f}")
