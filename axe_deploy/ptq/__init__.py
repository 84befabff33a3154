"""Accumulator-aware post-training quantization core: RTN, GPFQ, OPTQ and SPFQ with AXE.

Functions on tensors only (no Brevitas, no files): ``quantize_layer`` for one batch of
calibration inputs, ``LayerStats`` + ``quantize_from_stats`` to stream many batches.
"""

from .axe import Infeasible, check_feasible, smallest_feasible_bits
from .device import resolve_device
from .layer import ALGORITHMS, OPTIONS, QuantInfo, quantize_from_stats, quantize_layer
from .stats import LayerStats

__all__ = ["ALGORITHMS", "OPTIONS", "Infeasible", "LayerStats", "QuantInfo", "check_feasible",
           "quantize_from_stats", "quantize_layer", "resolve_device", "smallest_feasible_bits"]
