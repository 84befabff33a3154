"""Core facts shared by every layer: exact accumulator ranges and widths (``accumulator``).

Pure functions on integers and tensors; nothing here knows of Brevitas, ONNX or files.
"""
