"""Models on scikit-learn's digits (1797 8×8 images, pixels 0..16, 10 classes).

The float model sees pixels/16 in [0, 1]. The quantized model's input quantizer has
scale 1/16 when its bit width can hold 16, so the integer input is the pixel itself.
"""

from __future__ import annotations

import brevitas.nn as qnn
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from axe_deploy.core.layer_glob import match_layer
from axe_deploy.quant.bundle import ModelBundle
from axe_deploy.zoo.registry import cache_dir, load_cached, register
from axe_deploy.zoo import shipped
from axe_deploy.quant.quantizers import BiasQuant, ReluQuant, WeightQuant, input_quant

MLP_SIZES = (64, 256, 128, 10)


def digits_split(seed: int = 0):
    """Stratified 80/20 split; the test split (360 images) is fixed by ``seed``."""
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    return train_test_split(x, data.target.astype(np.int64), test_size=0.2,
                            random_state=seed, stratify=data.target)


class FloatMLP(nn.Module):
    def __init__(self, sizes=MLP_SIZES):
        super().__init__()
        self.fc1 = nn.Linear(sizes[0], sizes[1])
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(sizes[1], sizes[2])
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(sizes[2], sizes[3])

    def forward(self, x):
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))


class QuantMLP(nn.Module):
    """FloatMLP with an unsigned input quantizer, per-channel weights and N-bit ReLUs."""

    def __init__(self, sizes=MLP_SIZES, *, weight_bits=4, act_bits=4, input_bits=8, layer_weight_bits=None):
        super().__init__()
        in_max = max(1.0, (2**input_bits - 1) / 16)
        self.inp = qnn.QuantIdentity(act_quant=input_quant(in_max, input_bits), return_quant_tensor=True)

        def linear(name, k, m):
            bits = match_layer(layer_weight_bits or {}, name, weight_bits)
            return qnn.QuantLinear(k, m, bias=True, weight_quant=WeightQuant, bias_quant=BiasQuant,
                                   weight_bit_width=bits, return_quant_tensor=False)

        def relu():
            return qnn.QuantReLU(act_quant=ReluQuant, bit_width=act_bits, return_quant_tensor=True)

        self.fc1, self.relu1 = linear("fc1", sizes[0], sizes[1]), relu()
        self.fc2, self.relu2 = linear("fc2", sizes[1], sizes[2]), relu()
        self.fc3 = linear("fc3", sizes[2], sizes[3])

    def forward(self, x):
        x = self.relu1(self.fc1(self.inp(x)))
        return self.fc3(self.relu2(self.fc2(x)))


def train_classifier(model: nn.Module, x: np.ndarray, y: np.ndarray, *, seed: int,
                     epochs: int = 100, lr: float = 1e-3, batch: int = 64) -> nn.Module:
    """Adam on cross-entropy, full determinism from ``seed`` (1 thread, fixed shuffles)."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    model.train()
    for _ in range(epochs):
        perm = torch.randperm(len(xt), generator=gen)
        for i in range(0, len(xt), batch):
            idx = perm[i:i + batch]
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    return model.eval()


def cached_float_model(name: str, make, x, y, *, seed: int, retrain: bool, **train_kw) -> nn.Module:
    """The float model ``name`` for ``seed``: the shipped weights (:mod:`axe_deploy.zoo.shipped`)
    where the package has them and ``retrain`` is off; otherwise ``make()`` trained on (x, y)
    once per (name, seed) and cached, later calls loading the cached state dict."""
    model = make()
    if not retrain and shipped.load(name, seed, model):
        return model.eval()
    path = cache_dir() / f"{name}-seed{seed}.pt"
    if path.is_file() and not retrain and load_cached(path, model):
        return model.eval()
    torch.manual_seed(seed)
    model = train_classifier(make(), x, y, seed=seed, **train_kw)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model


def digits_bundle(name: str, float_model: nn.Module, quant_model: nn.Module, split, *, seed: int,
                  calibration_samples: int, info: dict, as_input=torch.from_numpy) -> ModelBundle:
    """Bundle a digits classifier: the float weights loaded into ``quant_model``, a seeded
    calibration sample of the training split, the test split; ``as_input`` shapes rows."""
    x_tr, x_te, _, y_te = split
    quant_model.load_state_dict(float_model.state_dict(), strict=False)
    calib = np.random.default_rng(seed).permutation(len(x_tr))[:calibration_samples]
    return ModelBundle(
        name=name, float_model=float_model, quant_model=quant_model.eval(), calib_x=as_input(x_tr[calib]),
        test_x=as_input(x_te), test_y=torch.from_numpy(y_te),
        info={**info, "train_samples": len(x_tr), "test_samples": len(x_te)},
    )


@register("digits-mlp")
def digits_mlp(*, weight_bits=4, act_bits=4, input_bits=8, layer_weight_bits=None, seed=0,
               retrain=False, calibration_samples=1024) -> ModelBundle:
    split = digits_split()
    float_model = cached_float_model("digits-mlp", FloatMLP, split[0], split[2], seed=seed, retrain=retrain)
    quant_model = QuantMLP(weight_bits=weight_bits, act_bits=act_bits, input_bits=input_bits,
                           layer_weight_bits=layer_weight_bits)
    return digits_bundle("digits-mlp", float_model, quant_model, split, seed=seed,
                         calibration_samples=calibration_samples, info={"sizes": list(MLP_SIZES)})
