"""Export a Brevitas model to QONNX and QCDQ, with a symbolic batch dimension.

Brevitas's TorchScript exporter (``dynamo=False``) is used for both: the dynamo
exporter writes lifted tensors as graph inputs and refuses quantized bias (docs/reference.md).
The trace is taken at batch 1 and the batch dimension of the graph inputs and outputs
renamed to ``batch`` afterwards, so onnxruntime and Netron see the network, not a trace.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from brevitas.export import export_onnx_qcdq, export_qonnx
from qonnx.core.modelwrapper import ModelWrapper

BATCH = "batch"


def symbolic_batch(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with the batch dimension of its inputs and outputs named ``batch`` (any batch runs)."""
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
    return onnx.shape_inference.infer_shapes(model)


def export_model(quant_model: torch.nn.Module, example: torch.Tensor) -> tuple[ModelWrapper, ModelWrapper]:
    """The QONNX (Quant nodes, for qonnx/FINN) and QCDQ (for onnxruntime) graphs, in memory
    (Brevitas's exporter writes files: they go to a temporary folder)."""
    quant_model.eval()
    x = example[:1]
    with tempfile.TemporaryDirectory(prefix="axe-export-") as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        qonnx_path, qcdq_path = Path(tmp) / "model.qonnx.onnx", Path(tmp) / "model.qcdq.onnx"
        export_qonnx(quant_model, args=x, export_path=str(qonnx_path), dynamo=False)
        export_onnx_qcdq(quant_model, args=x, export_path=str(qcdq_path), dynamo=False)
        return tuple(ModelWrapper(symbolic_batch(onnx.load(str(path)))) for path in (qonnx_path, qcdq_path))
