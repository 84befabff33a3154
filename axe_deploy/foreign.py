"""QONNX (or QCDQ) files that axe-deploy did not write: read, tidy, convert for onnxruntime.

:func:`load_graph` reads a file exported elsewhere (Brevitas ``export_qonnx``, FINN's
bnn_pynq graphs, a QCDQ file), drops initializers listed as graph inputs, turns
QuantizeLinear/DequantizeLinear pairs back into ``Quant`` nodes and folds constant
subgraphs (shape computations, TensorNorm's ``Pow``), keeping the tensor names the layer
names come from. :func:`to_qcdq` makes the onnxruntime twin of a QONNX graph where qonnx
can: every Quant of a constant folded to its dequantized value, every activation Quant
as QuantizeLinear/Clip/DequantizeLinear.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.fold_constants import FoldConstants
from qonnx.transformation.general import RemoveStaticGraphInputs
from qonnx.transformation.infer_shapes import InferShapes

from axe_deploy.graph import GraphError, _attr

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def load_graph(path: str | Path) -> ModelWrapper:
    """A QONNX graph from ``path`` (QONNX or QCDQ), ready for annotate / check / lower."""
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"{path}: file not found")
    try:
        model = ModelWrapper(onnx.load(str(path)))
    except Exception as e:  # onnx raises DecodeError, ValueError, ... on a file that is not ONNX
        raise GraphError(f"{path}: not an ONNX file ({type(e).__name__}: {e})") from None
    if not model.graph.input or not model.graph.output:
        raise GraphError(f"{path}: the graph has no input or no output")
    model = model.transform(RemoveStaticGraphInputs())
    ops = {n.op_type for n in model.graph.node}
    if ops & set(QDQ_OPS) and not ops & {"Quant", "BipolarQuant"}:
        from qonnx.transformation.qcdq_to_qonnx import QCDQToQuant
        model = model.transform(QCDQToQuant())
    for i, node in enumerate(model.graph.node):  # errors and layer names need node names
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    model = model.transform(InferShapes()).transform(FoldConstants())
    _batch_free_reshapes(model)
    return model


def _batch_free_reshapes(model: ModelWrapper) -> None:
    """A traced ``x.view(x.shape[0], -1)`` folds to the constant shape [1, ...] of the export's
    batch; make its first entry 0 (copy the input's batch) so that the graph runs any batch."""
    for node in model.graph.node:
        if node.op_type != "Reshape":
            continue
        shape, inp = model.get_initializer(node.input[1]), model.get_tensor_shape(node.input[0])
        if shape is not None and len(shape) and shape[0] == 1 and inp and inp[0] == 1 and not _attr(node, "allowzero", 0):
            fixed = np.array(shape, dtype=np.int64)
            fixed[0] = 0
            model.set_initializer(node.input[1], fixed)


def to_qcdq(model: ModelWrapper) -> tuple[ModelWrapper | None, str]:
    """(the QCDQ twin for onnxruntime, "") or (None, why there is none)."""
    from qonnx.transformation.qonnx_to_qcdq import QuantToQCDQ
    try:
        qcdq = ModelWrapper(model.model.__deepcopy__()).transform(FoldConstants(exclude_op_types=[]))
        qcdq = qcdq.transform(QuantToQCDQ())
    except Exception as e:  # the rewriter's own failures: report them, run qonnx alone
        return None, f"qonnx's QuantToQCDQ failed ({type(e).__name__}: {e})"
    left = [n for n in qcdq.graph.node if n.op_type in ("Quant", "BipolarQuant")]
    if left:
        return None, (f"qonnx's QuantToQCDQ cannot convert {left[0].op_type} node '{left[0].name}' (QCDQ "
                      f"needs 2..8-bit, zero-point 0, round-to-nearest quantizers)")
    return qcdq, ""


def load_array(path: Path, what: str) -> np.ndarray:
    """A .npy array (test inputs or targets) with a message naming the file on failure."""
    if not path.is_file():
        raise GraphError(f"{path}: {what} file not found")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as e:
        raise GraphError(f"{path}: not a .npy array ({e})") from None
