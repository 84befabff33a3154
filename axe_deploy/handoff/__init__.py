"""Handoffs to other compilers: FINN (and, in the hardware flow, Vivado)."""
