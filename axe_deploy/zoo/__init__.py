"""Model zoo: a name maps to a builder returning float model, Brevitas model and data.

A builder takes the bit widths of the flow (``weight_bits``, ``act_bits``,
``input_bits``), a ``seed`` and ``retrain``; it trains (or loads from the cache) the
float model deterministically and returns a :class:`axe_deploy.quant.bundle.ModelBundle`.
"""

from __future__ import annotations

from axe_deploy.quant.bundle import ModelBundle
from axe_deploy.zoo import digits  # noqa: F401  (registers its models)
from axe_deploy.zoo import digits_cnn  # noqa: F401  (registers its models)
from axe_deploy.zoo import shakespeare, smollm2  # noqa: F401  (register the language models)
from axe_deploy.zoo.registry import build, cache_dir, load_cached, names, register

__all__ = ["ModelBundle", "register", "names", "build", "cache_dir", "load_cached"]
