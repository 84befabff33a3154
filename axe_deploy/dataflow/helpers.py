"""Small graph helpers shared by the dataflow rewrites (and by the hls4ml handoff)."""

from __future__ import annotations

import numpy as np
from onnx import helper
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.custom_op.general.quant import quant

from axe_deploy.graph.layers import GraphError, node_attr, quant_spec


def sole_consumer(model: ModelWrapper, tensor: str, op_type: str):
    """The node reading ``tensor`` if it is the only one and an ``op_type``, else None."""
    consumers = model.find_consumers(tensor) or []
    return consumers[0] if len(consumers) == 1 and consumers[0].op_type == op_type else None


def node_ints(node, name: str, default: list[int]) -> list[int]:
    """An ints attribute as a list (``default`` when the node does not have it)."""
    value = node_attr(node, name, default)
    return list(value) if isinstance(value, (list, tuple)) else value


def make_transpose(model: ModelWrapper, src: str, dst: str, perm: tuple, name: str):
    """A Transpose node src -> dst; dst gets src's DataType (a transpose moves integers)."""
    model.set_tensor_datatype(dst, model.get_tensor_datatype(src))
    return helper.make_node("Transpose", [src], [dst], name=name, perm=list(perm))


def channels_last_positions(C: int, H: int, W: int) -> np.ndarray:
    """For each element of a (c, h, w) tensor in that order, its position in (h, w, c) order."""
    c, h, w = np.meshgrid(np.arange(C), np.arange(H), np.arange(W), indexing="ij")
    return ((h * W + w) * C + c).reshape(-1)


def module_name(node, fallback: str) -> str:
    """The PyTorch module of an exported node: '/features/pool/MaxPool' gives 'features.pool'.

    torch.onnx names a container's child by its name in the container's parent
    ('/features/features.4/MaxPool', '/body/body.0/body.0.1/Relu'): such a scope replaces
    the container's instead of extending it, so these give 'features.4' and 'body.0.1'."""
    scopes = [p for p in node.name.split("/") if p][:-1]
    path: list[str] = []
    for scope in scopes:
        if path and scope.startswith(path[-1] + "."):
            path[-1] = scope
        else:
            path.append(scope)
    return ".".join(path) or fallback


def remove_dead_nodes(model: ModelWrapper) -> None:
    """Drop nodes whose outputs nobody reads (the weight and bias Quant nodes)."""
    outputs = {o.name for o in model.graph.output}
    changed = True
    while changed:
        changed = False
        for node in list(model.graph.node):
            if all(not model.find_consumers(o) and o not in outputs for o in node.output):
                model.graph.node.remove(node)
                changed = True
    used = {i for n in model.graph.node for i in n.input}
    for init in list(model.graph.initializer):
        if init.name not in used:
            model.graph.initializer.remove(init)


def layer_bias(model: ModelWrapper, node, M: int) -> np.ndarray:
    """The real-valued bias the compute node adds (dequantized if it is quantized)."""
    if len(node.input) < 3 or not node.input[2]:
        return np.zeros(M)
    producer = model.find_producer(node.input[2])
    if producer is not None and producer.op_type == "Quant":
        spec = quant_spec(model, producer)
        b = quant(model.get_initializer(producer.input[0]).astype(np.float64), spec.scale, spec.zero_point,
                  np.array(spec.bits, dtype=np.float64), spec.signed, spec.narrow,
                  node_attr(producer, "rounding_mode", "ROUND"))
        # the runtimes add the float32 dequantized bias: use exactly that value
        return np.asarray(b, dtype=np.float32).astype(np.float64).reshape(-1)
    b = model.get_initializer(node.input[2])
    if b is None:
        raise GraphError(f"{node.op_type} node '{node.name}': bias is neither a constant nor a Quant of one")
    return np.asarray(b, dtype=np.float32).astype(np.float64).reshape(-1)
