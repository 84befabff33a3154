"""Real network shapes on scikit-learn's digits (8x8), as plain PyTorch modules: a small
ResNet and a MobileNetV2-style net, run by the flow files next to this file:

    axe-deploy run examples/resnet_digits.toml --out build/resnet_digits
    axe-deploy run examples/mobilenet_digits.toml --out build/mobilenet_digits

They have what the module swap of ``bundle_from_float`` cannot take (BatchNorm, residual
``+``, depthwise convs, ReLU6, a global average pool), so it builds the Brevitas twin with
Brevitas graph mode (``axe_deploy.quant.graph_mode``): BatchNorm merged into the convs,
both inputs of every residual sum re-quantized to one scale, module names kept.
"""

import torch
from torch import nn

from my_models import digits, trained

from axe_deploy.quant.convert import bundle_from_float


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN plus the shortcut (identity, or a 1x1 stride-s projection
    with BN when the shape changes), then ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
        self.relu2 = nn.ReLU()

    def forward(self, x):
        return self.relu2(self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x))))) + self.shortcut(x))


class ResNet(nn.Module):
    """stem 3x3 1→16, block 16→16, block 16→32 stride 2 (8x8 → 4x4, projection shortcut),
    global average pool, linear 32→10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
        self.layer1 = BasicBlock(16, 16)
        self.layer2 = BasicBlock(16, 32, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layer2(self.layer1(self.stem(x)))), 1))


class InvertedResidual(nn.Module):
    """1x1 expand (BN, ReLU6), depthwise 3x3 stride s (BN, ReLU6), 1x1 project (BN, linear);
    the input is added when the shapes match."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1, expand: int = 2):
        super().__init__()
        hidden = c_in * expand
        self.expand = nn.Sequential(nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.depthwise = nn.Sequential(nn.Conv2d(hidden, hidden, 3, stride=stride, padding=1, groups=hidden,
                                                 bias=False), nn.BatchNorm2d(hidden), nn.ReLU6())
        self.project = nn.Sequential(nn.Conv2d(hidden, c_out, 1, bias=False), nn.BatchNorm2d(c_out))
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class MobileNet(nn.Module):
    """stem 3x3 1→16 (BN, ReLU6), inverted residuals 16→16 (+), 16→24 stride 2, 24→24 (+),
    1x1 24→64 (BN, ReLU6), global average pool, linear 64→10."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16), nn.ReLU6())
        self.blocks = nn.Sequential(InvertedResidual(16, 16), InvertedResidual(16, 24, stride=2),
                                    InvertedResidual(24, 24))
        self.head = nn.Sequential(nn.Conv2d(24, 64, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU6())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, 10)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.head(self.blocks(self.stem(x)))), 1))


def _bundle(make, name: str, quant: dict, epochs: int):
    x_tr, x_te, y_tr, y_te = digits(True)
    torch.manual_seed(0)
    model = make()
    model.train()
    float_model = trained(model, x_tr, y_tr, name, epochs)
    return bundle_from_float(float_model, quant, calib_x=x_tr, test_x=x_te, test_y=y_te, input_range=(0.0, 1.0),
                             name=name)


def digits_resnet(quant: dict):
    return _bundle(ResNet, "resnet-digits", quant, epochs=15)


def digits_mobilenet(quant: dict):
    return _bundle(MobileNet, "mobilenet-digits", quant, epochs=30)
