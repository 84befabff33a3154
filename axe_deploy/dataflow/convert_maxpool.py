"""ConvertMaxPool: a 2×2 max-pool on integers becomes a streaming max-pool.

Before: standard-domain ``MaxPool`` nodes with kernel 2×2, stride 2, no padding, no
dilation, floor mode, no indices output, on an [n, C, H, W] tensor whose DataType is
integer, i.e. the output of a dataflow node: run it after ConvertLayersToMVAU and
ConvertInputQuant.

After: each is Transpose(to NHWC) -> ``StreamingMaxPool`` (``ImgDim``, ``NumChannels``,
``PE`` = 1, ``dataType``, ``layer_name`` = the PyTorch module) -> Transpose(to NCHW);
the pool selects integers, so every tensor keeps the input's DataType.

Refuses (GraphError), naming the node:
- "only a 2x2 max-pool with stride 2, no padding, floor mode and no indices output has a
  streaming module; got kernel, strides, pads, dilations, ceil_mode, auto_pad = ...";
- "input shape ... is not [n, C, H, W]";
- "its input is <DataType>, not the integer output of a quantizer; put the max-pool after an
  activation quantizer (QuantReLU), where it selects integers".
"""

from __future__ import annotations

from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from axe_deploy.dataflow.helpers import make_transpose, module_name, node_ints
from axe_deploy.dataflow.nodes import DOMAIN, TO_NCHW, TO_NHWC
from axe_deploy.graph.layers import GraphError, node_attr


class ConvertMaxPool(Transformation):
    """Each 2×2, stride-2, unpadded MaxPool on an integer tensor becomes
    Transpose -> StreamingMaxPool -> Transpose (see the module docstring)."""

    def apply(self, model: ModelWrapper):
        for i, node in enumerate(list(model.graph.node)):
            if node.op_type != "MaxPool" or node.domain not in ("", "ai.onnx"):
                continue
            shape = model.get_tensor_shape(node.input[0])
            dtype = model.get_tensor_datatype(node.input[0])
            geometry = (node_ints(node, "kernel_shape", []), node_ints(node, "strides", [1, 1]),
                        node_ints(node, "pads", [0, 0, 0, 0]), node_ints(node, "dilations", [1, 1]),
                        node_attr(node, "ceil_mode", 0), node_attr(node, "auto_pad", "NOTSET"))
            if geometry != ([2, 2], [2, 2], [0, 0, 0, 0], [1, 1], 0, "NOTSET") or len(node.output) > 1:
                raise GraphError(f"MaxPool node '{node.name}': only a 2x2 max-pool with stride 2, no "
                                 f"padding, floor mode and no indices output has a streaming module; "
                                 f"got kernel, strides, pads, dilations, ceil_mode, auto_pad = {geometry}")
            if shape is None or len(shape) != 4:
                raise GraphError(f"MaxPool node '{node.name}': input shape {shape} is not [n, C, H, W]")
            if not dtype.is_integer():
                raise GraphError(f"MaxPool node '{node.name}': its input is {dtype.name}, not the integer "
                                 f"output of a quantizer; put the max-pool after an activation "
                                 f"quantizer (QuantReLU), where it selects integers")
            name = module_name(node, f"maxpool{i}")
            nhwc, pooled = model.make_new_valueinfo_name(), model.make_new_valueinfo_name()
            model.set_tensor_datatype(pooled, dtype)
            new = [make_transpose(model, node.input[0], nhwc, TO_NHWC, f"Transpose_{name}_in"),
                   helper.make_node("StreamingMaxPool", [nhwc], [pooled], name=f"MaxPool_{name}",
                                    domain=DOMAIN, layer_name=name, ImgDim=[shape[2], shape[3]],
                                    NumChannels=shape[1], PE=1, dataType=dtype.name),
                   make_transpose(model, pooled, node.output[0], TO_NCHW, f"Transpose_{name}_out")]
            pos = list(model.graph.node).index(node)
            model.graph.node.remove(node)
            for k, n in enumerate(new):
                model.graph.node.insert(pos + k, n)
        return model, False
