"""The bridge from the dataflow graph to the hardware backend: which nodes are hardware
layers, their :mod:`axe_deploy.hw.spec` layer objects (what write_rtl, simulate and
synthesize take), and the folding written back into the nodes."""

from __future__ import annotations

import json

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.dataflow.nodes import DOMAIN, HW_OPS
from axe_deploy.graph.layers import node_attr
from axe_deploy.hw.spec import Layer, MaxPoolLayer, MVAULayer, ReorderLayer, SlidingWindowLayer


def hardware_nodes(model: ModelWrapper) -> list:
    """The nodes that become hardware layers, in stream order (CheckDataflow has checked
    that nothing but Flatten/Reshape sits between them)."""
    return [n for n in model.graph.node if n.domain == DOMAIN and n.op_type in HW_OPS]


def node_layers(model: ModelWrapper, node) -> list[Layer]:
    """The hardware layer(s) of one hardware node: an MVAU with an ``inputOrder`` is a
    reorder followed by the MVAU."""
    if node.op_type == "MVAU":
        acc = DataType[node_attr(node, "accDataType")]
        inp = DataType[node_attr(node, "inputDataType")]
        w = DataType[node_attr(node, "weightDataType")]
        thresholds = model.get_initializer(node.input[2]) if len(node.input) > 2 else None
        tile = node_attr(node, "tileSize", 0)
        name, vectors = node_attr(node, "layer_name"), node_attr(node, "numInputVectors")
        mvau = MVAULayer(
            name=name, MW=node_attr(node, "MW"), MH=node_attr(node, "MH"),
            SIMD=node_attr(node, "SIMD"), PE=node_attr(node, "PE"), input_bits=inp.bitwidth(),
            input_signed=inp.signed(), weight_bits=w.bitwidth(), acc_bits=acc.bitwidth(),
            acc_signed=acc.signed(), weights=model.get_initializer(node.input[1]).T,
            thresholds=thresholds, num_vectors=vectors, act_val=node_attr(node, "ActVal", 0), tile_size=tile,
            input_narrow=bool(node_attr(node, "inputNarrow", 0)),
            outer_bits=DataType[node_attr(node, "outerAccDataType")].bitwidth() if tile else 0,
            annotated_range=tuple(json.loads(node_attr(node, "outerAccRange" if tile else "accRange"))))
        order = node_attr(node, "inputOrder")
        if order is None:
            return [mvau]
        return [ReorderLayer(name=f"{name}_reorder", N=mvau.MW, bits=inp.bitwidth(), signed=inp.signed(),
                             order=np.asarray(order), num_vectors=vectors), mvau]
    if node.op_type == "ConvolutionInputGenerator":
        dt = DataType[node_attr(node, "inputDataType")]
        H, W = node_attr(node, "IFMDim")
        return [SlidingWindowLayer(
            name=node_attr(node, "layer_name"), H=H, W=W, C=node_attr(node, "IFMChannels"),
            K=node_attr(node, "ConvKernelDim"), SIMD=node_attr(node, "SIMD"), bits=dt.bitwidth(),
            signed=dt.signed(), stride=node_attr(node, "Stride"), pad=node_attr(node, "Padding"))]
    dt = DataType[node_attr(node, "dataType")]
    H, W = node_attr(node, "ImgDim")
    return [MaxPoolLayer(name=node_attr(node, "layer_name"), H=H, W=W, C=node_attr(node, "NumChannels"),
                         PE=node_attr(node, "PE"), bits=dt.bitwidth(), signed=dt.signed())]


def hw_layers(model: ModelWrapper) -> list[Layer]:
    """Every hardware layer (sliding window, reorder, MVAU, max-pool) as a spec, in stream
    order, with its current folding: what write_rtl, simulate and synthesize take."""
    return [layer for node in hardware_nodes(model) for layer in node_layers(model, node)]


def set_folding(model: ModelWrapper, layers: list[Layer]) -> None:
    """Write the PE/SIMD of ``layers`` back into the dataflow nodes of the same names."""
    by_name = {l.name: l for l in layers if not isinstance(l, ReorderLayer)}
    for node in hardware_nodes(model):
        layer = by_name[node_attr(node, "layer_name")]
        for a in node.attribute:
            if a.name in ("PE", "SIMD"):
                a.i = getattr(layer, a.name)
