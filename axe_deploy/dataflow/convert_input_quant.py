"""ConvertInputQuant: the graph input's quantizer becomes the accelerator's integer input.

Before: the graph input reaches exactly one ``Quant`` node, through shape-only ops
(Reshape/Flatten, which stay) and then scalar ``Mul``/``Add``/``Sub``/``Div`` by constants
(FINN's TFC/CNV compute ``2x - 1`` there); per-tensor scale, 2 or more bits.

After: one ``InputQuant`` node (``axe_deploy.dataflow`` domain, see
:mod:`axe_deploy.dataflow.nodes`) in place of the preprocessing nodes and the Quant, with
``scale``, ``min``, ``max``, ``outputDataType`` and, when there was preprocessing,
``preprocess_ops``/``preprocess_consts`` (run in float32 in graph order, as the runtimes
do); its output carries the Quant's integer DataType; dead nodes and initializers are
removed.

Refuses (GraphError):
- "graph input '...' is not read by exactly one Quant node (through shape ops and scalar
  Mul/Add/Sub/Div); the accelerator's input must be quantized ...";
- "input preprocessing node '...' (op): only x op scalar constant is absorbed into the
  input quantizer; ..." for a per-channel or non-constant preprocessing operand;
- "input Quant node '...': per-channel input scale is not supported";
- "input Quant node '...': a bipolar (1-bit signed) input has no integer datapath here; ...".
"""

from __future__ import annotations

from onnx import helper
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from axe_deploy.dataflow.helpers import remove_dead_nodes
from axe_deploy.dataflow.nodes import DOMAIN
from axe_deploy.graph.layers import QUANT_OPS, GraphError, quant_spec

PREPROCESS_OPS = ("Mul", "Add", "Sub", "Div")


def _input_chain(model: ModelWrapper):
    """From the graph input to the first quantizer: (the tensor the InputQuant reads, the
    scalar preprocessing nodes in order, the Quant node). Shape-only ops before the first
    preprocessing node stay in the graph; FINN's TFC/CNV compute ``2x - 1`` there."""
    tensor, pre = model.graph.input[0].name, []
    start = tensor
    while True:
        consumers = model.find_consumers(tensor) or []
        if len(consumers) != 1:
            return start, pre, None
        node = consumers[0]
        if node.op_type in QUANT_OPS:
            return start, pre, node
        if node.op_type in ("Reshape", "Flatten") and not pre:
            start = node.output[0]
        elif node.op_type in PREPROCESS_OPS:
            const = model.get_initializer(node.input[1])
            if const is None or const.size != 1 or node.input[0] != tensor:
                raise GraphError(f"input preprocessing node '{node.name}' ({node.op_type}): only x {node.op_type} "
                                 f"scalar constant is absorbed into the input quantizer; fold per-channel "
                                 f"preprocessing into the data or the first layer")
            pre.append(node)
        else:
            return start, pre, None
        tensor = node.output[0]


class ConvertInputQuant(Transformation):
    """The Quant node on the graph input, with the scalar preprocessing before it, becomes
    one InputQuant (see the module docstring)."""

    def apply(self, model: ModelWrapper):
        inp, pre, q = _input_chain(model)
        if q is None:
            raise GraphError(f"graph input '{model.graph.input[0].name}' is not read by exactly one Quant node "
                             f"(through shape ops and scalar Mul/Add/Sub/Div); the accelerator's input must be "
                             f"quantized (e.g. a QuantIdentity first)")
        spec = quant_spec(model, q)
        if spec.scale.size != 1:
            raise GraphError(f"input Quant node '{q.name}': per-channel input scale is not supported")
        if spec.bipolar:
            raise GraphError(f"input Quant node '{q.name}': a bipolar (1-bit signed) input has no integer "
                             f"datapath here; use an input quantizer of 2 or more bits")
        lo, hi = (DataType[spec.datatype].min() + int(spec.narrow and spec.signed), DataType[spec.datatype].max())
        extra = {}
        if pre:
            extra = dict(preprocess_ops=[n.op_type for n in pre],
                         preprocess_consts=[float(model.get_initializer(n.input[1]).reshape(-1)[0]) for n in pre])
        node = helper.make_node("InputQuant", [inp], [q.output[0]], name="InputQuant_0", domain=DOMAIN,
                                scale=float(spec.scale.reshape(-1)[0]), min=int(lo), max=int(hi),
                                outputDataType=spec.datatype, **extra)
        first = pre[0] if pre else q
        model.graph.node.insert(list(model.graph.node).index(first), node)
        for n in pre + [q]:
            model.graph.node.remove(n)
        model.set_tensor_datatype(q.output[0], DataType[spec.datatype])
        remove_dead_nodes(model)
        return model, False
