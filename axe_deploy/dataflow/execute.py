"""The integer executor of the dataflow graph: runs the lowered graph node by node, each
hardware layer through its spec's ``reference`` (the same integer model the RTL is
simulated against), so that lowering can be checked against onnxruntime."""

from __future__ import annotations

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.dataflow.hw_bridge import node_layers
from axe_deploy.dataflow.nodes import DOMAIN, HW_OPS
from axe_deploy.graph.layers import GraphError, node_attr


def _preprocess(node, x: np.ndarray) -> np.ndarray:
    """The InputQuant's absorbed scalar preprocessing, in float32 as the graph computed it."""
    ops = [o.decode() if isinstance(o, bytes) else o for o in node_attr(node, "preprocess_ops") or []]
    consts = node_attr(node, "preprocess_consts") or []
    if not ops:
        return x
    y = np.asarray(x, dtype=np.float32)
    for op, c in zip(ops, consts):
        c = np.float32(c)
        y = {"Mul": lambda: y * c, "Add": lambda: y + c, "Sub": lambda: y - c, "Div": lambda: y / c}[op]()
    return y.astype(np.float64)


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
            a = _preprocess(node, a)
            out = np.clip(np.round(a / node_attr(node, "scale")), node_attr(node, "min"),
                          node_attr(node, "max")).astype(np.int64)
            perm = node_attr(node, "perm")
            out = out.transpose(perm) if perm is not None else out
        elif op in HW_OPS:
            layers = node_layers(model, node)
            rows = a.shape[1:-1] if op == "MVAU" else (layers[0].OH, layers[0].OW)
            out = a.reshape(n, -1)
            for layer in layers:
                out = layer.reference(out)
            out = out.reshape(n, *rows, -1)
        elif op == "ChannelwiseAffine":
            out = (a * model.get_initializer(node.input[1]).astype(np.float64)
                   + model.get_initializer(node.input[2]).astype(np.float64))
        elif op == "onnx.Transpose":
            out = a.transpose(node_attr(node, "perm"))
        elif op in ("onnx.Reshape", "onnx.Flatten"):
            out = a.reshape(n, -1)
        else:
            raise GraphError(f"executor: node '{node.name}' ({node.op_type}, domain '{node.domain}') "
                             f"is not a dataflow node; lower the graph first")
        ctx[node.output[0]] = out
    return ctx
