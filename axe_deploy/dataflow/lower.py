"""Lowering as a readable list of small transformations, the integer executor of the
dataflow graph, and the bridge to the hardware backend's layer specs.
"""

from __future__ import annotations

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import GiveReadableTensorNames, SortGraph
from qonnx.transformation.infer_shapes import InferShapes

from axe_deploy.dataflow.layout import (AbsorbTransposeIntoFlatten, AbsorbTransposeIntoInputQuant,
                                        RemoveInverseTransposes)
from axe_deploy.dataflow.transforms import (DOMAIN, HW_OPS, CheckDataflow, ConvertInputQuant, ConvertLayersToMVAU,
                                            ConvertMaxPool, preprocess)
from axe_deploy.graph.layers import GraphError, _attr
from axe_deploy.hw.spec import Layer, MaxPoolLayer, MVAULayer, ReorderLayer, SlidingWindowLayer

LOWERING = [
    ("convert_layers_to_mvau", ConvertLayersToMVAU),  # reads the input Quant's scale: first
    ("convert_input_quant", ConvertInputQuant),
    ("convert_maxpool", ConvertMaxPool),              # needs integer inputs: after the two above
    ("remove_inverse_transposes", RemoveInverseTransposes),
    ("absorb_transpose_into_flatten", AbsorbTransposeIntoFlatten),
    ("absorb_transpose_into_input_quant", AbsorbTransposeIntoInputQuant),
    ("check_dataflow", CheckDataflow),
]


def lower(model: ModelWrapper) -> ModelWrapper:
    """Annotated QONNX -> dataflow graph (InputQuant, ConvolutionInputGenerator, MVAU,
    StreamingMaxPool, ChannelwiseAffine, shape ops), channels-last between its layers."""
    model = ModelWrapper(model.model.__deepcopy__())
    model = model.transform(InferShapes()).transform(SortGraph())
    for _, transformation in LOWERING:
        model = model.transform(transformation())
    return model.transform(GiveReadableTensorNames())


def _init(model: ModelWrapper, name: str) -> np.ndarray:
    return model.get_initializer(name)


def hardware_nodes(model: ModelWrapper) -> list:
    """The nodes that become hardware layers, in stream order (CheckDataflow has checked
    that nothing but Flatten/Reshape sits between them)."""
    return [n for n in model.graph.node if n.domain == DOMAIN and n.op_type in HW_OPS]


def _layers(model: ModelWrapper, node) -> list[Layer]:
    """The hardware layer(s) of one dataflow node: an MVAU with an ``inputOrder`` is a
    reorder followed by the MVAU."""
    if node.op_type == "MVAU":
        acc = DataType[_attr(node, "accDataType")]
        inp = DataType[_attr(node, "inputDataType")]
        w = DataType[_attr(node, "weightDataType")]
        thresholds = _init(model, node.input[2]) if len(node.input) > 2 else None
        tile = _attr(node, "tileSize", 0)
        name, vectors = _attr(node, "layer_name"), _attr(node, "numInputVectors")
        mvau = MVAULayer(
            name=name, MW=_attr(node, "MW"), MH=_attr(node, "MH"),
            SIMD=_attr(node, "SIMD"), PE=_attr(node, "PE"), input_bits=inp.bitwidth(),
            input_signed=inp.signed(), weight_bits=w.bitwidth(), acc_bits=acc.bitwidth(),
            acc_signed=acc.signed(), weights=_init(model, node.input[1]).T,
            thresholds=thresholds, num_vectors=vectors, act_val=_attr(node, "ActVal", 0), tile_size=tile,
            input_narrow=bool(_attr(node, "inputNarrow", 0)),
            outer_bits=DataType[_attr(node, "outerAccDataType")].bitwidth() if tile else 0)
        order = _attr(node, "inputOrder")
        if order is None:
            return [mvau]
        return [ReorderLayer(name=f"{name}_reorder", N=mvau.MW, bits=inp.bitwidth(), signed=inp.signed(),
                             order=np.asarray(order), num_vectors=vectors), mvau]
    if node.op_type == "ConvolutionInputGenerator":
        dt = DataType[_attr(node, "inputDataType")]
        H, W = _attr(node, "IFMDim")
        return [SlidingWindowLayer(
            name=_attr(node, "layer_name"), H=H, W=W, C=_attr(node, "IFMChannels"), K=_attr(node, "ConvKernelDim"),
            SIMD=_attr(node, "SIMD"), bits=dt.bitwidth(), signed=dt.signed(), stride=_attr(node, "Stride"),
            pad=_attr(node, "Padding"))]
    dt = DataType[_attr(node, "dataType")]
    H, W = _attr(node, "ImgDim")
    return [MaxPoolLayer(name=_attr(node, "layer_name"), H=H, W=W, C=_attr(node, "NumChannels"),
                         PE=_attr(node, "PE"), bits=dt.bitwidth(), signed=dt.signed())]


def hw_layers(model: ModelWrapper) -> list[Layer]:
    """Every hardware layer (sliding window, reorder, MVAU, max-pool) as a spec, in stream
    order, with its current folding: what write_rtl, simulate and synthesize take."""
    return [layer for node in hardware_nodes(model) for layer in _layers(model, node)]


def set_folding(model: ModelWrapper, layers: list[Layer]) -> None:
    """Write the PE/SIMD of ``layers`` back into the dataflow nodes of the same names."""
    by_name = {l.name: l for l in layers if not isinstance(l, ReorderLayer)}
    for node in hardware_nodes(model):
        layer = by_name[_attr(node, "layer_name")]
        for a in node.attribute:
            if a.name in ("PE", "SIMD"):
                a.i = getattr(layer, a.name)


def execute_dataflow(model: ModelWrapper, x: np.ndarray) -> dict[str, np.ndarray]:
    """Run the dataflow graph on float inputs ``x`` (the graph input's layout, e.g. NCHW);
    integers stay int64 end to end, image tensors channels-last [n, H, W, C]. Each
    hardware layer runs its spec's ``reference`` on the flattened stream. Returns every
    tensor, the graph output under its name."""
    ctx = {model.graph.input[0].name: np.asarray(x, dtype=np.float64)}
    for node in model.graph.node:
        a = ctx[node.input[0]]
        n = a.shape[0]
        op = node.op_type if node.domain == DOMAIN else f"onnx.{node.op_type}"
        if op == "InputQuant":
            a = preprocess(node, a)
            out = np.clip(np.round(a / _attr(node, "scale")), _attr(node, "min"), _attr(node, "max")).astype(np.int64)
            perm = _attr(node, "perm")
            out = out.transpose(perm) if perm is not None else out
        elif op in HW_OPS:
            layers = _layers(model, node)
            rows = a.shape[1:-1] if op == "MVAU" else (layers[0].OH, layers[0].OW)
            out = a.reshape(n, -1)
            for layer in layers:
                out = layer.reference(out)
            out = out.reshape(n, *rows, -1)
        elif op == "ChannelwiseAffine":
            out = a * _init(model, node.input[1]).astype(np.float64) + _init(model, node.input[2]).astype(np.float64)
        elif op == "onnx.Transpose":
            out = a.transpose(_attr(node, "perm"))
        elif op in ("onnx.Reshape", "onnx.Flatten"):
            out = a.reshape(n, -1)
        else:
            raise GraphError(f"executor: node '{node.name}' ({node.op_type}, domain '{node.domain}') "
                             f"is not a dataflow node; lower the graph first")
        ctx[node.output[0]] = out
    return ctx
