"""Your own model, first-class: a plain PyTorch MLP and CNN on scikit-learn's digits,
defined here, outside the package, and run by the flow files next to this file:

    axe-deploy run examples/my_mlp.toml --out build/my_mlp
    axe-deploy run examples/my_cnn.toml --out build/my_cnn

``[model] module = "my_models:digits_mlp"`` imports this file (the flow file's folder comes
first on sys.path) and calls ``digits_mlp(quant)`` with the flow's [quant] table; the
function trains the float model (cached after the first run) and hands it with its data to
``axe_deploy.quant.convert.bundle_from_float``, which builds the Brevitas twin (same module
names, the flow's bit widths) and returns the ``axe_deploy.ModelBundle`` the flow runs.
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

from axe_deploy.quant.convert import bundle_from_float
from axe_deploy.zoo import cache_dir


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

    def forward(self, x):
        return self.layers(x)


class CNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1),
                                      nn.ReLU(), nn.MaxPool2d(2))
        self.classifier = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.classifier(torch.flatten(self.features(x), 1))


def digits(image: bool):
    """Pixels / 16 in [0, 1]; stratified 80/20 split, fixed seed."""
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    if image:
        x = x.reshape(-1, 1, 8, 8)
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target, test_size=0.2, random_state=0, stratify=data.target)
    return torch.from_numpy(x_tr), torch.from_numpy(x_te), torch.from_numpy(y_tr), torch.from_numpy(y_te)


def trained(model: nn.Module, x: torch.Tensor, y: torch.Tensor, name: str, epochs: int) -> nn.Module:
    """Adam on cross-entropy, seeded; the state dict is cached after the first run."""
    path = cache_dir() / f"example-{name}.pt"
    if path.is_file():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    gen = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
            opt.step()
    torch.save(model.state_dict(), path)
    return model.eval()


def _bundle(make, name, image, quant, epochs):
    x_tr, x_te, y_tr, y_te = digits(image)
    torch.manual_seed(0)  # before the model's initial weights are drawn: the same model every run
    float_model = trained(make(), x_tr, y_tr, name, epochs)
    return bundle_from_float(float_model, quant, calib_x=x_tr, test_x=x_te, test_y=y_te,
                             input_range=(0.0, 1.0), name=name)


def digits_mlp(quant: dict):
    return _bundle(MLP, "my-mlp", False, quant, epochs=60)


def digits_cnn(quant: dict):
    return _bundle(CNN, "my-cnn", True, quant, epochs=40)


class BrevitasMLP(nn.Module):
    """The Brevitas route: your own quantized model, written with Brevitas layers and the
    public quantizers of axe_deploy.quant.quantizers, module names equal to MLP's."""

    def __init__(self, weight_bits=4, act_bits=4, input_bits=8):
        super().__init__()
        import brevitas.nn as qnn

        from axe_deploy.quant.quantizers import BiasQuant, ReluQuant, WeightQuant, input_quant

        def linear(k, m):
            return qnn.QuantLinear(k, m, bias=True, weight_quant=WeightQuant, bias_quant=BiasQuant,
                                   weight_bit_width=weight_bits)

        def relu():
            return qnn.QuantReLU(act_quant=ReluQuant, bit_width=act_bits, return_quant_tensor=True)

        self.inp = qnn.QuantIdentity(act_quant=input_quant(1.0, input_bits), return_quant_tensor=True)
        self.layers = nn.Sequential(linear(64, 128), relu(), linear(128, 64), relu(), linear(64, 10))

    def forward(self, x):
        return self.layers(self.inp(x))


def brevitas_mlp(quant: dict):
    """A ModelBundle built by hand: the trained float MLP and your Brevitas model."""
    from axe_deploy import ModelBundle
    x_tr, x_te, y_tr, y_te = digits(False)
    torch.manual_seed(0)
    float_model = trained(MLP(), x_tr, y_tr, "my-mlp", epochs=60)
    quant_model = BrevitasMLP(quant["weight_bits"], quant["act_bits"], quant["input_bits"])
    quant_model.load_state_dict(float_model.state_dict(), strict=False)
    return ModelBundle(name="my-brevitas-mlp", float_model=float_model, quant_model=quant_model.eval(),
                       calib_x=x_tr, test_x=x_te, test_y=y_te)
