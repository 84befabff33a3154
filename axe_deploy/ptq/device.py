"""Where the PTQ core, the calibration statistics and the LM evaluation run: flow key
``quant.device`` = "auto" | "cpu" | "cuda"."""

from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str, where: str = "quant.device") -> torch.device:
    """The torch device for ``name``: "auto" is CUDA when torch sees a GPU, else the CPU;
    "cuda" without one is an error that says so (the CPU results would not be what was asked)."""
    if name not in DEVICES:
        raise ValueError(f"{where} = {name!r} is not allowed; allowed values: {', '.join(DEVICES)}")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise ValueError(f"{where} = \"cuda\" but torch {torch.__version__} ({build}) sees no CUDA GPU; "
                         f"use quant.device = \"auto\" or \"cpu\", or run on a machine with a GPU")
    return torch.device(name)
