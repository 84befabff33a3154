"""Export a Brevitas model to QONNX and QCDQ, with a symbolic batch dimension.

Brevitas's TorchScript exporter (``dynamo=False``) is used for both: the dynamo
exporter writes lifted tensors as graph inputs and refuses quantized bias (docs/reference.md).
The trace is taken at batch 1 and the batch dimension of the graph inputs and outputs
renamed to ``batch`` afterwards, so onnxruntime and Netron see the network, not a trace.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from brevitas.export import export_onnx_qcdq, export_qonnx

BATCH = "batch"


def symbolic_batch(path: Path) -> None:
    """Name the batch dimension of the graph's inputs and outputs ``batch`` (any batch runs)."""
    model = onnx.load(str(path))
    initializers = {t.name for t in model.graph.initializer}
    # Brevitas may list initializers as graph inputs; they are constants, not inputs.
    real_inputs = [i for i in model.graph.input if i.name not in initializers]
    del model.graph.input[:]
    model.graph.input.extend(real_inputs)
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims:
            dims[0].ClearField("dim_value")
            dims[0].dim_param = BATCH
    # Intermediate shapes were inferred at batch 1; drop them rather than keep wrong ones.
    del model.graph.value_info[:]
    model = onnx.shape_inference.infer_shapes(model)
    onnx.save(model, str(path))


def export_model(quant_model: torch.nn.Module, example: torch.Tensor, qonnx_path: Path,
                 qcdq_path: Path) -> None:
    """Write the QONNX (Quant nodes, for qonnx/FINN) and QCDQ (for onnxruntime) graphs."""
    quant_model.eval()
    x = example[:1]
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        export_qonnx(quant_model, args=x, export_path=str(qonnx_path), dynamo=False)
        export_onnx_qcdq(quant_model, args=x, export_path=str(qcdq_path), dynamo=False)
    for path in (qonnx_path, qcdq_path):
        symbolic_batch(path)
