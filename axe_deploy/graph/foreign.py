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

from axe_deploy.graph.layers import GraphError, node_attr

QDQ_OPS = ("QuantizeLinear", "DequantizeLinear")


def read_graph(path: str | Path) -> ModelWrapper:
    """The file as given (initializers listed as graph inputs dropped); errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise GraphError(f"{path}: file not found")
    try:
        model = ModelWrapper(onnx.load(str(path)))
    except Exception as e:  # onnx raises DecodeError, ValueError, ... on a file that is not ONNX
        raise GraphError(f"{path}: not an ONNX file ({type(e).__name__}: {e})") from None
    if not model.graph.input or not model.graph.output:
        raise GraphError(f"{path}: the graph has no input or no output")
    return model.transform(RemoveStaticGraphInputs())


def load_graph(path: str | Path) -> ModelWrapper:
    """A QONNX graph from ``path`` (QONNX or QCDQ), ready for annotate / check / lower."""
    return tidy_graph(read_graph(path), Path(path))


def tidy_graph(model: ModelWrapper, path: Path) -> ModelWrapper:
    """:func:`read_graph`'s model (changed in place) as a QONNX graph with named nodes,
    folded constants and batch-free reshapes; ``path`` names the file in errors."""
    ops = {n.op_type for n in model.graph.node}
    if ops & set(QDQ_OPS) and not ops & {"Quant", "BipolarQuant"}:
        from qonnx.transformation.qcdq_to_qonnx import QCDQToQuant
        _constant_dequant_to_quant(model)
        try:
            model = model.transform(InferShapes()).transform(QCDQToQuant())
        except Exception as e:  # qonnx's rewriter raises whatever it meets
            raise GraphError(f"{path}: qonnx cannot turn its QuantizeLinear/DequantizeLinear pairs into Quant "
                             f"nodes ({type(e).__name__}: {e})") from None
    for i, node in enumerate(model.graph.node):  # errors and layer names need node names
        if not node.name:
            node.name = f"{node.op_type}_{i}"
    model = model.transform(InferShapes()).transform(FoldConstants())
    _batch_free_reshapes(model)
    return model


def _constant_dequant_to_quant(model: ModelWrapper) -> None:
    """QCDQ weights are stored as integers: int8 constant -> (Clip) -> DequantizeLinear. Make
    each such chain a QONNX ``Quant`` of the dequantized constant, with the bit width,
    signedness and narrow range of the integer range (the Clip's, else the integer type's),
    so that the layer's integer weights are read as they are in a QONNX file."""
    from onnx import helper
    for dq in [n for n in model.graph.node if n.op_type == "DequantizeLinear"]:
        clip = model.find_producer(dq.input[0])
        source = clip.input[0] if clip is not None and clip.op_type == "Clip" else dq.input[0]
        q_int = model.get_initializer(source)
        scale = model.get_initializer(dq.input[1])
        zp = model.get_initializer(dq.input[2]) if len(dq.input) > 2 and dq.input[2] else np.zeros(1, np.int8)
        if q_int is None or scale is None or zp is None or (clip is not None and clip.op_type != "Clip"):
            continue
        info = np.iinfo(q_int.dtype)
        lo, hi = int(info.min), int(info.max)
        if clip is not None:
            lo, hi = (int(model.get_initializer(t)) for t in clip.input[1:3])
        signed = lo < 0
        bits = max((-lo - 1).bit_length(), hi.bit_length()) + 1 if signed else hi.bit_length()
        axis = node_attr(dq, "axis", 1)
        shape = [1] * q_int.ndim
        if scale.size > 1:
            shape[axis] = scale.size
        scale_f = scale.astype(np.float32).reshape(shape)
        w = ((q_int.astype(np.float64) - zp.astype(np.float64).reshape(shape if zp.size > 1 else ())) * scale_f)
        names = [f"{dq.name}_{k}" for k in ("weight", "scale", "zeropt", "bitwidth")]
        model.set_initializer(names[0], w.astype(np.float32))
        model.set_initializer(names[1], scale_f)
        model.set_initializer(names[2], np.zeros_like(scale_f) if zp.size > 1 else np.zeros((), np.float32))
        model.set_initializer(names[3], np.array(bits, dtype=np.float32))
        node = helper.make_node("Quant", names, [dq.output[0]], name=dq.name, domain="qonnx.custom_op.general",
                                signed=int(signed), narrow=int(signed and lo == -hi), rounding_mode="ROUND")
        idx = list(model.graph.node).index(dq)
        model.graph.node.insert(idx, node)
        model.graph.node.remove(dq)
        if clip is not None and clip.op_type == "Clip" and not model.find_consumers(clip.output[0]):
            model.graph.node.remove(clip)


def _batch_free_reshapes(model: ModelWrapper) -> None:
    """A traced ``x.view(x.shape[0], -1)`` folds to the constant shape [1, ...] of the export's
    batch; make its first entry 0 (copy the input's batch) so that the graph runs any batch."""
    for node in model.graph.node:
        if node.op_type != "Reshape":
            continue
        shape, inp = model.get_initializer(node.input[1]), model.get_tensor_shape(node.input[0])
        if shape is not None and len(shape) and shape[0] == 1 and inp and inp[0] == 1 and not node_attr(node, "allowzero", 0):
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
