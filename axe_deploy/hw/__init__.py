"""Hardware backend: layer specs -> folding -> Verilog -> simulation and synthesis.

``spec`` (layer specs, integer references, cycle estimates), ``folding`` (PE/SIMD for a
throughput target), ``verilog`` (per-layer wrappers, ROM hex files, stitched top),
``sim`` (Verilator / Icarus testbench: outputs, cycles, overflow counts), ``synth``
(yosys xc7 figures), ``vivado`` (TCL for out-of-context synthesis and a bitfile).
The Verilog modules live in ``axe_deploy/rtl``.
"""
