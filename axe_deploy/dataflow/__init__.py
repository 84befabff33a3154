"""FINN-style lowering of an annotated QONNX graph into integer dataflow layers.

``lower`` (the ``LOWERING`` list; each rewrite in its own file named after its step, with
its contract), ``nodes`` (the dataflow node set and what each node computes), ``helpers``
(graph helpers the rewrites share), ``conv_geometry`` (a Conv as the sliding-window
generator sees it), ``thresholds`` (exact integer thresholds), ``execute`` (the integer
executor of a lowered graph), ``hw_bridge`` (hardware nodes -> :mod:`axe_deploy.hw.spec`
layers, and their folding back into the nodes).
"""
