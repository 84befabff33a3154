"""The geometry of a Conv node as the sliding-window generator sees it, or the reason it
cannot be lowered."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.dataflow.helpers import channels_last_positions, node_ints
from axe_deploy.graph.layers import GraphError, node_attr


@dataclass(frozen=True)
class ConvGeometry:
    """A square, equally strided and padded, undilated 2-D convolution on [n, C, H, W]."""

    H: int
    W: int
    C: int
    K: int
    stride: int
    pad: int

    OH = property(lambda self: (self.H + 2 * self.pad - self.K) // self.stride + 1)
    OW = property(lambda self: (self.W + 2 * self.pad - self.K) // self.stride + 1)

    def window_positions(self) -> np.ndarray:
        """For each column of the graph's (c, kh, kw) order, its position in the (kh, kw, c)
        window the sliding-window generator emits."""
        return channels_last_positions(self.C, self.K, self.K)

    def channels_last_columns(self, q: np.ndarray) -> np.ndarray:
        """Weight rows [M, C·K·K] in the graph's (c, kh, kw) order -> (kh, kw, c), the order
        in which the sliding-window generator emits a window. A permutation of each row:
        the exact accumulator range (and so the annotation) is unchanged."""
        return q.reshape(len(q), self.C, self.K, self.K).transpose(0, 2, 3, 1).reshape(len(q), -1)


def conv_geometry(model: ModelWrapper, node) -> ConvGeometry:
    """The geometry of a Conv node, or a GraphError naming what the sliding-window
    generator cannot do (it needs kh = kw, one stride and one padding for both axes,
    stride <= K, padding < K, no dilation)."""
    shape = model.get_tensor_shape(node.input[0])
    kh, kw = node_ints(node, "kernel_shape", [0, 0])
    pads, strides = node_ints(node, "pads", [0, 0, 0, 0]), node_ints(node, "strides", [1, 1])
    dilations = node_ints(node, "dilations", [1, 1])
    if shape is None or len(shape) != 4:
        raise GraphError(f"Conv node '{node.name}': input shape {shape} is not [n, C, H, W]; "
                         f"only 2-D convolutions are lowered")
    if (kh != kw or len(set(pads)) != 1 or len(set(strides)) != 1 or set(dilations) != {1}
            or node_attr(node, "auto_pad", "NOTSET") != "NOTSET" or strides[0] > kh or pads[0] >= kh):
        raise GraphError(f"Conv node '{node.name}': kernel {[kh, kw]}, strides {strides}, pads {pads}, "
                         f"dilations {dilations}: the sliding-window generator needs a square kernel K, "
                         f"one stride <= K and one padding < K on every side, and no dilation")
    return ConvGeometry(H=shape[2], W=shape[3], C=shape[1], K=kh, stride=strides[0], pad=pads[0])
