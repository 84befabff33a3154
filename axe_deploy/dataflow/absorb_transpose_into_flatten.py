"""AbsorbTransposeIntoFlatten: the NHWC -> NCHW transpose before a classifier's flatten
goes into the classifier's weights (FINN's RemoveCNVtoFCFlatten).

Before: ``Transpose(perm = [0, 3, 1, 2])`` -> (its only consumer) ``Flatten`` or
``Reshape`` to [n, C·H·W] -> (its only consumer) a dataflow ``MVAU`` of one input vector
(``numInputVectors`` = 1) with ``MW`` = C·H·W.

After: the Flatten/Reshape reads the transpose's input and the transpose is gone. The
MVAU's weight rows are permuted from the (c, h, w) order of the NCHW flatten to the
(h, w, c) order of the channels-last stream; a permutation of each output channel's
weights, so the exact accumulator range, and so the annotation, is unchanged. A tiled
MVAU (``tileSize`` > 0) keeps its weights in the (c, h, w) order its tiles run along and
gets ``inputOrder`` instead, to take the channels-last stream in that order.
One transpose per call (returns changed = True). Refuses nothing: a transpose in any
other position stays (CheckDataflow reports it if it sits between hardware layers).
"""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from axe_deploy.dataflow.helpers import channels_last_positions, node_ints, sole_consumer
from axe_deploy.dataflow.nodes import DOMAIN
from axe_deploy.graph.layers import node_attr


class AbsorbTransposeIntoFlatten(Transformation):
    """Transpose(NHWC -> NCHW) -> Flatten -> MVAU: the transpose goes into the MVAU's
    weight order (see the module docstring)."""

    def apply(self, model: ModelWrapper):
        for t in list(model.graph.node):
            if t.op_type != "Transpose" or node_ints(t, "perm", []) != [0, 3, 1, 2]:
                continue
            consumers = model.find_consumers(t.output[0]) or []
            flat = consumers[0] if len(consumers) == 1 else None
            if flat is None or flat.op_type not in ("Flatten", "Reshape"):
                continue
            mvau = sole_consumer(model, flat.output[0], "MVAU")
            shape, flat_shape = model.get_tensor_shape(t.output[0]), model.get_tensor_shape(flat.output[0])
            if (mvau is None or mvau.domain != DOMAIN or node_attr(mvau, "numInputVectors") != 1
                    or shape is None or flat_shape is None or len(flat_shape) != 2):
                continue
            C, H, W = shape[1:]
            if flat_shape[1] != C * H * W or node_attr(mvau, "MW") != C * H * W:
                continue
            if node_attr(mvau, "tileSize", 0):
                order = channels_last_positions(C, H, W)
                mvau.attribute.append(helper.make_attribute("inputOrder", [int(i) for i in order]))
            else:
                w = model.get_initializer(mvau.input[1])
                model.set_initializer(mvau.input[1], np.ascontiguousarray(
                    w.reshape(C, H, W, -1).transpose(1, 2, 0, 3).reshape(w.shape)))
            flat.input[0] = t.input[0]
            model.graph.node.remove(t)
            return model, True
        return model, False
