"""Old import path of :mod:`axe_deploy.quantizers` (the public quantizer classes)."""

from axe_deploy.quantizers import BiasQuant, ReluQuant, WeightQuant, input_quant  # noqa: F401
