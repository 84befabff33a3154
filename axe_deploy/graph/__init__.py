"""QONNX graphs: reading the quantized layers (``layers``), the accumulator annotation
(``annotate``), files as other tools write them (``foreign``), execution and checks
(``validate``, ``check``).
"""
