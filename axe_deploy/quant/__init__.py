"""The PyTorch / Brevitas side: quantizers, model conversion, the layer-by-layer PTQ driver
that feeds :mod:`axe_deploy.ptq` (``driver``; ``blockwise`` for decoder LLMs, one block at a
time), the model bundle the flow works on, and QONNX/QCDQ export.
"""
