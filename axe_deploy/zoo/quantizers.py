"""Brevitas quantizers shared by the zoo's models.

Weights: signed, narrow range (±(2^(b−1) − 1)), per output channel, scale initialised
from the max |w| of each channel and then kept as a parameter: PTQ writes ``s·q`` back
and the integers must stay exactly ``q`` (a scale recomputed from the new weights
would change them).
Bias: 32-bit integers on the accumulator's scale (input scale × weight scale), so
the bias is exact in every runtime: onnxruntime's optimizer quantizes a float bias of a
QDQ Gemm to that grid by itself, which made its outputs differ from PyTorch's.
Activations after ReLU: unsigned N bits, per-tensor scale from calibration statistics.
"""

from brevitas.inject.enum import ScalingImplType
from brevitas.quant import Int8WeightPerChannelFloat, Int32Bias, Uint8ActPerTensorFloat


class WeightQuant(Int8WeightPerChannelFloat):
    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS


class BiasQuant(Int32Bias):
    pass


class ReluQuant(Uint8ActPerTensorFloat):
    pass


def input_quant(max_value: float, bits: int):
    """Unsigned ``bits``-bit input quantizer with the constant scale max_value/(2^bits − 1)."""
    return type("InputQuant", (Uint8ActPerTensorFloat,), {
        "scaling_impl_type": ScalingImplType.CONST,
        "max_val": float(max_value),
        "bit_width": bits,
    })
