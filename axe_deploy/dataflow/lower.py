"""Lowering as a readable list of small transformations, one file each in this package."""

from __future__ import annotations

from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.general import GiveReadableTensorNames, SortGraph
from qonnx.transformation.infer_shapes import InferShapes

from axe_deploy.dataflow.absorb_transpose_into_flatten import AbsorbTransposeIntoFlatten
from axe_deploy.dataflow.absorb_transpose_into_input_quant import AbsorbTransposeIntoInputQuant
from axe_deploy.dataflow.check_dataflow import CheckDataflow
from axe_deploy.dataflow.convert_input_quant import ConvertInputQuant
from axe_deploy.dataflow.convert_layers_to_mvau import ConvertLayersToMVAU
from axe_deploy.dataflow.convert_maxpool import ConvertMaxPool
from axe_deploy.dataflow.remove_inverse_transposes import RemoveInverseTransposes

LOWERING = [
    ("convert_layers_to_mvau", ConvertLayersToMVAU),  # reads the input Quant's scale: first
    ("convert_input_quant", ConvertInputQuant),
    ("convert_maxpool", ConvertMaxPool),              # needs integer inputs: after the two above
    ("remove_inverse_transposes", RemoveInverseTransposes),
    ("absorb_transpose_into_flatten", AbsorbTransposeIntoFlatten),
    ("absorb_transpose_into_input_quant", AbsorbTransposeIntoInputQuant),
    ("check_dataflow", CheckDataflow),
]


def lower(model: ModelWrapper) -> ModelWrapper:
    """Annotated QONNX -> dataflow graph (InputQuant, ConvolutionInputGenerator, MVAU,
    StreamingMaxPool, ChannelwiseAffine, shape ops), channels-last between its layers."""
    model = ModelWrapper(model.model.__deepcopy__())
    model = model.transform(InferShapes()).transform(SortGraph())
    for _, transformation in LOWERING:
        model = model.transform(transformation())
    return model.transform(GiveReadableTensorNames())
