"""FINN-style lowering of an annotated QONNX graph into integer dataflow layers."""
