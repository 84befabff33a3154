"""Public Brevitas quantizers for models the PTQ driver takes (the zoo's models use them).

- :class:`WeightQuant`: signed, narrow range (±(2^(b−1) − 1)), per output channel, scale
  initialised from the max |w| of each channel and then kept as a parameter: PTQ writes
  ``s·q`` back and the integers must stay exactly ``q`` (a scale recomputed from the new
  weights, as Brevitas's stock ``Int8WeightPerChannelFloat`` does, would change them; the
  driver refuses such quantizers). :class:`WeightQuantPerTensor`: the same, one scale.
- :class:`BiasQuant`: 32-bit integers on the accumulator's scale (input scale × weight
  scale), so the bias is exact in every runtime: onnxruntime's optimizer quantizes a float
  bias of a QDQ Gemm to that grid by itself, which made its outputs differ from PyTorch's.
- :class:`ReluQuant`: activations after ReLU, unsigned N bits, per-tensor scale from
  calibration statistics.
- :func:`input_quant`: the input quantizer, a constant scale from the input's range.
"""

from brevitas.inject.enum import ScalingImplType
from brevitas.quant import Int8WeightPerChannelFloat, Int8WeightPerTensorFloat, Int32Bias, Uint8ActPerTensorFloat
from brevitas.quant import Int8ActPerTensorFloat

__all__ = ["WeightQuant", "WeightQuantPerTensor", "BiasQuant", "ReluQuant", "input_quant"]


class WeightQuant(Int8WeightPerChannelFloat):
    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS


class WeightQuantPerTensor(Int8WeightPerTensorFloat):
    scaling_impl_type = ScalingImplType.PARAMETER_FROM_STATS


class BiasQuant(Int32Bias):
    pass


class ReluQuant(Uint8ActPerTensorFloat):
    pass


def input_quant(max_value: float, bits: int, signed: bool = False):
    """``bits``-bit input quantizer with a constant scale: unsigned, max_value/(2^bits − 1),
    or with ``signed`` max_value/(2^(bits−1) − 1) on a narrow symmetric range."""
    if signed:
        return type("SignedInputQuant", (Int8ActPerTensorFloat,), {
            "scaling_impl_type": ScalingImplType.CONST, "max_val": float(max_value),
            "min_val": -float(max_value), "bit_width": bits, "narrow_range": True,
        })
    return type("InputQuant", (Uint8ActPerTensorFloat,), {
        "scaling_impl_type": ScalingImplType.CONST,
        "max_val": float(max_value),
        "bit_width": bits,
    })
