"""A small CNN on scikit-learn's digits: the convolutional path through the whole flow.

conv3x3(1→16, pad 1) + ReLU, conv3x3(16→32, pad 1) + ReLU, max-pool 2×2, flatten,
linear 512→10, on the 1×8×8 image (pixels/16), same split and training helpers as
``digits-mlp``. The quantized model uses the same activation scheme as ``QuantMLP``:
an unsigned input quantizer of scale 1/16, per-channel signed weights, 32-bit biases
and unsigned N-bit ReLUs; the max-pool sits after the second ReLU's quantizer, so it
picks among integers (max commutes with the monotone ReLU-quantizer, so this equals
pooling before it).

Zero padding: every quantizer here has zero point 0, so a padded position is the
integer 0 and adds nothing to a convolution's accumulator; the accumulator bound over
the [C, kh, kw] reduction holds for border pixels too. A quantizer with a non-zero zero
point would make padding a non-zero integer; the export refuses such graphs.
"""

from __future__ import annotations

import brevitas.nn as qnn
import numpy as np
import torch
from torch import nn

from axe_deploy.core.layer_glob import match_layer
from axe_deploy.quant.bundle import ModelBundle
from axe_deploy.zoo.registry import register
from axe_deploy.zoo.digits import cached_float_model, digits_bundle, digits_split
from axe_deploy.quant.quantizers import BiasQuant, ReluQuant, WeightQuant, input_quant

CHANNELS = (1, 16, 32)
IMAGE = 8
CLASSES = 10


class FloatCNN(nn.Module):
    def __init__(self, channels=CHANNELS):
        super().__init__()
        self.conv1 = nn.Conv2d(channels[0], channels[1], 3, padding=1)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(channels[1], channels[2], 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(channels[2] * (IMAGE // 2) ** 2, CLASSES)

    def forward(self, x):
        x = self.pool(self.relu2(self.conv2(self.relu1(self.conv1(x)))))
        return self.fc(torch.flatten(x, 1))


class QuantCNN(nn.Module):
    """FloatCNN with the quantizers of ``QuantMLP``; module names match FloatCNN's."""

    def __init__(self, channels=CHANNELS, *, weight_bits=4, act_bits=4, input_bits=8, layer_weight_bits=None):
        super().__init__()
        in_max = max(1.0, (2**input_bits - 1) / 16)
        self.inp = qnn.QuantIdentity(act_quant=input_quant(in_max, input_bits), return_quant_tensor=True)

        def bits(name):
            return match_layer(layer_weight_bits or {}, name, weight_bits)

        def conv(name, c_in, c_out):
            return qnn.QuantConv2d(c_in, c_out, 3, padding=1, bias=True, weight_quant=WeightQuant,
                                   bias_quant=BiasQuant, weight_bit_width=bits(name), return_quant_tensor=False)

        def relu():
            return qnn.QuantReLU(act_quant=ReluQuant, bit_width=act_bits, return_quant_tensor=True)

        self.conv1, self.relu1 = conv("conv1", channels[0], channels[1]), relu()
        self.conv2, self.relu2 = conv("conv2", channels[1], channels[2]), relu()
        self.pool = nn.MaxPool2d(2)
        self.fc = qnn.QuantLinear(channels[2] * (IMAGE // 2) ** 2, CLASSES, bias=True, weight_quant=WeightQuant,
                                  bias_quant=BiasQuant, weight_bit_width=bits("fc"), return_quant_tensor=False)

    def forward(self, x):
        x = self.relu2(self.conv2(self.relu1(self.conv1(self.inp(x)))))
        return self.fc(torch.flatten(self.pool(x), 1))


def images(x: np.ndarray) -> torch.Tensor:
    """Flat digits rows [n, 64] as [n, 1, 8, 8] images."""
    return torch.from_numpy(x.reshape(-1, 1, IMAGE, IMAGE))


@register("digits-cnn")
def digits_cnn(*, weight_bits=4, act_bits=4, input_bits=8, layer_weight_bits=None, seed=0,
               retrain=False, calibration_samples=1024) -> ModelBundle:
    split = digits_split()
    float_model = cached_float_model("digits-cnn", FloatCNN, split[0].reshape(-1, 1, IMAGE, IMAGE), split[2],
                                     seed=seed, retrain=retrain, epochs=60, lr=2e-3)
    quant_model = QuantCNN(weight_bits=weight_bits, act_bits=act_bits, input_bits=input_bits,
                           layer_weight_bits=layer_weight_bits)
    return digits_bundle("digits-cnn", float_model, quant_model, split, seed=seed,
                         calibration_samples=calibration_samples, as_input=images,
                         info={"channels": list(CHANNELS), "image": [1, IMAGE, IMAGE]})
