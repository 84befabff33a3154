"""RemoveInverseTransposes: a Transpose followed by its inverse goes.

Before: a ``Transpose(p)`` whose output is no graph output and whose only consumer is a
``Transpose(q)`` (output no graph output) with p then q the identity; typically
NCHW -> NHWC between two dataflow nodes, left by converting two adjacent layers.

After: both nodes are gone and the second one's consumers read the first one's input.
One pair per call (returns changed = True), so ``model.transform`` repeats it until
none is left. Refuses nothing: other transposes stay.
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from axe_deploy.dataflow.helpers import node_ints, sole_consumer


def _rewire(model: ModelWrapper, old: str, new: str) -> None:
    for consumer in model.find_consumers(old) or []:
        for k, name in enumerate(consumer.input):
            if name == old:
                consumer.input[k] = new


def _is_output(model: ModelWrapper, tensor: str) -> bool:
    return any(o.name == tensor for o in model.graph.output)


class RemoveInverseTransposes(Transformation):
    """Transpose(p) -> Transpose(q) with p then q the identity: both go."""

    def apply(self, model: ModelWrapper):
        for first in list(model.graph.node):
            if first.op_type != "Transpose" or _is_output(model, first.output[0]):
                continue
            second = sole_consumer(model, first.output[0], "Transpose")
            if second is None or _is_output(model, second.output[0]):
                continue
            p, q = node_ints(first, "perm", []), node_ints(second, "perm", [])
            if len(p) != len(q) or [p[i] for i in q] != list(range(len(p))):
                continue
            _rewire(model, second.output[0], first.input[0])
            model.graph.node.remove(first)
            model.graph.node.remove(second)
            return model, True
        return model, False
