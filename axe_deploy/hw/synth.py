"""Open-source synthesis for cost: yosys ``synth_xilinx -family xc7`` on a stitched design.

The top is synthesized without flattening, so every layer's wrapper module keeps its own
cells: a layer's figures are its wrapper's cells summed through its submodules, the top's
the whole design (layers plus the data-width converters and FIFOs between them). With
``jobs`` > 1 the layers are split into groups of similar size, each synthesized in its own
yosys run with the other layers as black boxes; the figures are the same as one run's.
``-noiopad``: an out-of-context core, no I/O buffers.

``-nodsp`` by default: the multipliers of narrow (2..8-bit) operands become LUTs and
CARRY4s, as FINN builds them (``resType="lut"``), so the figures show what the accumulator
width costs in logic; ``dsp=True`` lets yosys map multiply-adds to DSP48E1 slices.

Figures (keys of every result): ``luts`` = LUT1..LUT6 and inverters plus the LUTs used as
distributed RAM or shift registers (RAM32M/RAM64M = 4, RAM32X1D/RAM64X1D = 2, ...),
``ffs`` = FDRE/FDSE/FDCE/FDPE, ``carry4``, ``dsps`` = DSP48E1, ``brams`` = block RAMs in
18 Kb units (RAMB18E1 = 1, RAMB36E1 = 2).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from .spec import MVAULayer
from .verilog import RtlDesign

KEYS = ("luts", "ffs", "carry4", "dsps", "brams")
_LUT_EQUIV = {"LUT1": 1, "LUT2": 1, "LUT3": 1, "LUT4": 1, "LUT5": 1, "LUT6": 1, "INV": 1,
              "RAM32M": 4, "RAM64M": 4, "RAM32X1D": 2, "RAM64X1D": 2, "RAM128X1D": 4,
              "RAM256X1S": 4, "RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2,
              "SRL16E": 1, "SRLC32E": 1}
_FFS = ("FDRE", "FDSE", "FDCE", "FDPE")


@dataclass
class SynthResult:
    """Figures of the whole design and of each layer (by layer name)."""

    top: dict
    layers: dict[str, dict]
    seconds: float
    log_dir: str


def figures(cells: Counter) -> dict:
    """Map yosys xc7 cell counts to the five figures (see the module docstring)."""
    return {"luts": sum(n * _LUT_EQUIV.get(c, 0) for c, n in cells.items()),
            "ffs": sum(cells[c] for c in _FFS),
            "carry4": cells["CARRY4"],
            "dsps": cells["DSP48E1"],
            "brams": cells["RAMB18E1"] + 2 * cells["RAMB36E1"]}


def parse_stat(text: str) -> dict[str, Counter]:
    """Own cells of every module in yosys ``stat`` output (submodule instances included
    as cells named after the submodule)."""
    modules, current, in_cells = {}, None, False
    for line in text.splitlines():
        head = re.match(r"^=== (.+) ===$", line.strip())
        if head:
            current, in_cells = head.group(1), False
            modules[current] = Counter()
            continue
        if current is None:
            continue
        if re.match(r"^\s*Number of cells:", line):
            in_cells = True
            continue
        cell = re.match(r"^\s+(\S+)\s+(\d+)$", line)
        if in_cells and cell:
            modules[current][cell.group(1)] += int(cell.group(2))
        elif in_cells and line.strip() == "":
            in_cells = False
    return modules


def flatten_counts(modules: dict[str, Counter], name: str) -> Counter:
    """Cells of ``name`` with every submodule instance replaced by its own cells."""
    total = Counter()
    for cell, n in modules[name].items():
        key = cell if cell in modules else cell.lstrip("\\")
        if key in modules and key != name:
            for sub, m in flatten_counts(modules, key).items():
                total[sub] += n * m
        else:
            total[cell] += n
    return total


def _work(layer) -> int:
    """Rough synthesis work of a layer, to balance the parallel runs."""
    if isinstance(layer, MVAULayer):
        return (layer.PE * layer.SIMD * layer.input_bits * layer.weight_bits
                + layer.PE * (layer.n_thresholds + 1) * layer.acc_bits)
    return layer.in_lanes * layer.input_bits * 8


def partition(design: RtlDesign, jobs: int) -> list[list[int]]:
    """Layer indices in at most ``jobs`` groups of similar work (largest first, each to the
    lightest group)."""
    groups = [[] for _ in range(max(1, min(jobs, len(design.layers))))]
    load = [0] * len(groups)
    for i in sorted(range(len(design.layers)), key=lambda i: -_work(design.layers[i])):
        g = load.index(min(load))
        groups[g].append(i)
        load[g] += _work(design.layers[i])
    return [sorted(g) for g in groups]


def _yosys(design: RtlDesign, tag: str, blackboxes: list[str], dsp: bool,
           timeout: float) -> dict[str, Counter]:
    """One yosys run on the top with ``blackboxes`` emptied: own cells of every module."""
    script = (f"read_verilog -defer {' '.join(design.files)}\n"
              f"hierarchy -top {design.top}\n"
              + (f"blackbox {' '.join(blackboxes)}\n" if blackboxes else "")
              + f"synth_xilinx -family xc7 -noiopad {'' if dsp else '-nodsp '}-top {design.top}\n"
              f"tee -q -o synth/{tag}.stat stat\n")
    (design.folder / "synth" / f"{tag}.ys").write_text(script)
    cmd = ["yosys", "-q", "-l", f"synth/{tag}.log", "-s", f"synth/{tag}.ys"]
    proc = subprocess.run(cmd, cwd=design.folder, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        raise RuntimeError(f"yosys failed (exit {proc.returncode}), see "
                           f"{design.folder / 'synth' / (tag + '.log')}:\n"
                           f"{(proc.stdout + proc.stderr)[-3000:]}")
    modules = parse_stat((design.folder / "synth" / f"{tag}.stat").read_text())
    # yosys writes a plain module name as "\name" in some places and "name" in others
    return {k.lstrip("\\"): v for k, v in modules.items()}


def synthesize(design: RtlDesign, dsp: bool = False, jobs: int = 1,
               timeout: float = 1800) -> SynthResult:
    """Synthesize ``design`` for xc7 with yosys, in ``jobs`` parallel runs; figures of the
    top and of every layer. Each run pays ~3 s of fixed cost: ``jobs`` > 1 pays off for
    large layers on otherwise idle cores. Scripts, logs and ``stat`` outputs go to
    ``<folder>/synth/``."""
    if shutil.which("yosys") is None:
        raise RuntimeError("yosys not found: run `bash docker/install-system-tools.sh` as root")
    (design.folder / "synth").mkdir(exist_ok=True)
    groups = partition(design, jobs)
    runs = [(f"group{g}", [m for i, m in enumerate(design.modules) if i not in members])
            for g, members in enumerate(groups)]
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(runs)) as pool:
        stats = list(pool.map(lambda r: _yosys(design, r[0], r[1], dsp, timeout), runs))
    seconds = time.perf_counter() - t0
    layer_cells = {}
    for members, modules in zip(groups, stats):
        for i in members:
            layer_cells[i] = flatten_counts(modules, design.modules[i])
    # converters and FIFOs: the top's cells in group 0 less the layers synthesized there
    glue = (flatten_counts(stats[0], design.top)
            - sum((layer_cells[i] for i in groups[0]), Counter()))
    total = glue + sum(layer_cells.values(), Counter())
    layers = {layer.name: figures(layer_cells[i]) for i, layer in enumerate(design.layers)}
    return SynthResult(top=figures(total), layers=layers, seconds=seconds,
                       log_dir=str(design.folder / "synth"))
