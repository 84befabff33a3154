"""AbsorbTransposeIntoInputQuant: the accelerator's input interface takes the image
channels-last.

Before: a dataflow ``InputQuant`` without ``perm`` whose only consumer is a
``Transpose(perm)``.

After: the InputQuant gets ``perm`` and writes the transposed integers itself (an
elementwise quantizer commutes with a transpose); its output is the transpose's output,
with the InputQuant's DataType, and the transpose is gone. The host reorders the image.
One InputQuant per call (returns changed = True). Refuses nothing.
"""

from __future__ import annotations

from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from axe_deploy.dataflow.helpers import node_ints, sole_consumer
from axe_deploy.dataflow.nodes import DOMAIN
from axe_deploy.graph.layers import node_attr


class AbsorbTransposeIntoInputQuant(Transformation):
    """InputQuant -> Transpose(perm): the InputQuant gets ``perm`` (see the module docstring)."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.op_type != "InputQuant" or node.domain != DOMAIN or node_attr(node, "perm") is not None:
                continue
            t = sole_consumer(model, node.output[0], "Transpose")
            if t is None:
                continue
            node.attribute.append(helper.make_attribute("perm", node_ints(t, "perm", [])))
            model.set_tensor_datatype(t.output[0], model.get_tensor_datatype(node.output[0]))
            node.output[0] = t.output[0]
            model.graph.node.remove(t)
            return model, True
        return model, False
