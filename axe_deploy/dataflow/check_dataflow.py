"""CheckDataflow: the lowered graph is one stream of hardware layers. Changes nothing.

Passes when every node is in the ``axe_deploy.dataflow`` domain or a shape-only op
(graph.layers.PASS_THROUGH_OPS), and between the first and the last hardware layer
(ConvolutionInputGenerator, MVAU, StreamingMaxPool) there is nothing but hardware layers
and Flatten/Reshape, which do not reorder a channels-last stream.

Refuses (GraphError), naming the node:
- "node '...' (op) cannot be lowered to the dataflow accelerator; supported: ...";
- "node '...' (op) sits between two hardware layers; the stream between them cannot be
  reordered or rescaled (a layout change that the channels-last rewrites could not remove?)".
"""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.base import Transformation

from axe_deploy.dataflow.nodes import DOMAIN, HW_OPS
from axe_deploy.graph.layers import PASS_THROUGH_OPS, GraphError


class CheckDataflow(Transformation):
    """Only dataflow nodes and shape ops, and one stream of hardware layers (see the module
    docstring)."""

    def apply(self, model: ModelWrapper):
        for node in model.graph.node:
            if node.domain != DOMAIN and node.op_type not in PASS_THROUGH_OPS:
                raise GraphError(f"node '{node.name}' ({node.op_type}) cannot be lowered to the dataflow "
                                 f"accelerator; supported: quantized Gemm/MatMul/Conv with bias, ReLU and an "
                                 f"unsigned activation quantizer, 2x2 MaxPool after a quantizer, and "
                                 f"{', '.join(PASS_THROUGH_OPS)}")
        hw = [i for i, n in enumerate(model.graph.node) if n.domain == DOMAIN and n.op_type in HW_OPS]
        for node in list(model.graph.node)[hw[0]:hw[-1]] if hw else []:
            if not (node.domain == DOMAIN and node.op_type in HW_OPS) and node.op_type not in ("Flatten", "Reshape"):
                raise GraphError(f"node '{node.name}' ({node.op_type}) sits between two hardware layers; "
                                 f"the stream between them cannot be reordered or rescaled (a layout "
                                 f"change that the channels-last rewrites could not remove?)")
        return model, False
