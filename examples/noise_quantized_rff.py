"""Kernel SVM on 1-bit Sigma-Delta quantized random Fourier features (digits).

    python examples/noise_quantized_rff.py
"""

from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.svm import SVC

from axe_deploy.noise_shaping import QuantizedRFF

X, y = load_digits(return_X_y=True)
Xtr, Xte, ytr, yte = train_test_split(X / 16.0, y, test_size=0.3, random_state=0, stratify=y)
gamma, C = 0.2, 10

exact = SVC(kernel="rbf", gamma=gamma, C=C).fit(Xtr, ytr).score(Xte, yte)
print(f"exact RBF kernel: {100 * exact:.2f}%")

for quantizer, kw in [("sigma_delta", dict(order=2, block=19)), ("beta", dict(block=19)), ("round", {})]:
    rff = QuantizedRFF(n_components=8208, gamma=gamma, quantizer=quantizer, bits=1, random_state=0, **kw).fit(Xtr)
    Ftr, Fte = rff.transform(Xtr), rff.transform(Xte)  # decoded features: Ftr @ Ftr.T ~ kernel
    acc = SVC(kernel="precomputed", C=C).fit(Ftr @ Ftr.T, ytr).score(Fte @ Ftr.T, yte)
    codes = rff.encode(Xte[:1])  # what is stored: odd integer codes, here +-1
    print(f"{quantizer:12s} m=8208 codes {sorted(set(codes.ravel().tolist()))}, "
          f"{rff.bits_per_vector} bits/vector -> {Ftr.shape[1]} decoded features: {100 * acc:.2f}%")
