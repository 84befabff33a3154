"""Handoffs to other compilers: FINN and hls4ml (and, in the hardware flow, Vivado)."""
