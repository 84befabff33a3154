"""Core facts shared by every layer: exact accumulator ranges and widths (``accumulator``),
per-layer settings by glob pattern (``layer_glob``).

Pure functions on integers and tensors; nothing here knows of Brevitas, ONNX or files.
"""
