"""A QONNX file that axe-deploy did not write, through annotate, check and the hardware flow.

    python examples/foreign_qonnx.py build/foreign      # writes the files below, prints the commands
    axe-deploy check build/foreign/model.onnx           # exit 1: not annotated yet
    axe-deploy annotate build/foreign/model.onnx build/foreign/model.annotated.onnx
    axe-deploy check build/foreign/model.annotated.onnx # exit 0: every layer OK
    axe-deploy run build/foreign/flow.toml --out build/foreign_hw

The model is a small Brevitas MLP with Brevitas's stock quantizers (8-bit per-tensor
weights, unsigned 4-bit ReLUs, float bias), trained a few epochs on the digits with
quantization in the loop and exported with Brevitas's own ``export_qonnx``, as any Brevitas
user would; nothing is downloaded. The folder gets ``model.onnx``, the test split as
``inputs.npy`` / ``targets.npy`` and ``flow.toml`` (``[model] onnx`` + ``[data]``).
"""

import sys
import warnings
from pathlib import Path

import brevitas.nn as qnn
import numpy as np
import torch
from brevitas.export import export_qonnx
from brevitas.quant import Uint8ActPerTensorFloat
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

FLOW = """# written by examples/foreign_qonnx.py: a foreign QONNX file through the hardware flow
[flow]
name = "foreign_qonnx"

[model]
onnx = "model.onnx"

[data]
inputs = "inputs.npy"
targets = "targets.npy"

[hardware]
target_cycles = 1024
"""


class BrevitasMLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.inp = qnn.QuantIdentity(act_quant=Uint8ActPerTensorFloat, return_quant_tensor=True)
        self.fc1 = qnn.QuantLinear(64, 64, bias=True)
        self.relu1 = qnn.QuantReLU(bit_width=4, return_quant_tensor=True)
        self.fc2 = qnn.QuantLinear(64, 10, bias=True)

    def forward(self, x):
        return self.fc2(self.relu1(self.fc1(self.inp(x))))


def main(out: Path) -> None:
    torch.manual_seed(0)
    data = load_digits()
    x = (data.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target, test_size=0.2, random_state=0, stratify=data.target)
    model = BrevitasMLP()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    for _ in range(15):
        for idx in torch.randperm(len(xt)).split(64):
            opt.zero_grad()
            nn.functional.cross_entropy(model(xt[idx]), yt[idx]).backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        acc = float((model(torch.from_numpy(x_te)).argmax(1).numpy() == y_te).mean())
    out.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export_qonnx(model, args=torch.from_numpy(x_te[:1]), export_path=str(out / "model.onnx"), dynamo=False)
    np.save(out / "inputs.npy", x_te)
    np.save(out / "targets.npy", y_te)
    (out / "flow.toml").write_text(FLOW)
    print(f"Brevitas accuracy {acc:.4f}; wrote {out}/model.onnx, inputs.npy, targets.npy, flow.toml")
    print(f"next: axe-deploy check {out}/model.onnx; axe-deploy annotate {out}/model.onnx "
          f"{out}/model.annotated.onnx; axe-deploy run {out}/flow.toml --out {out}_hw")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "build/foreign"))
