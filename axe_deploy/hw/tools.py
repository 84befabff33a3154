"""The external programs the hardware steps run, checked before a flow starts.

A flow whose simulator or yosys is missing still runs every step that does not need
them: ``run_flow`` drops the steps listed by :func:`missing_tool_steps`, says so in one
line (:func:`skip_notice`) and records them in report.json under ``skipped_steps``.
"""

from __future__ import annotations

import shutil

from axe_deploy.hw.place_route import INSTALL_HINT as FPGA_INSTALL_COMMAND
from axe_deploy.hw.place_route import missing_programs

INSTALL_COMMAND = "sudo make system-tools"  # docker/install-system-tools.sh: apt-get install verilator iverilog yosys

SIMULATOR_PROGRAMS = {"verilator": ("verilator",), "icarus": ("iverilog", "vvp")}


def installed(programs) -> bool:
    """Every program of ``programs`` is on PATH."""
    return all(shutil.which(p) is not None for p in programs)


def missing_tool_steps(steps: list[str], simulator: str = "auto") -> dict[str, str]:
    """{step: what it needs and is missing} for the steps of ``steps`` that cannot run here
    (``simulator``: the [hardware] simulator the flow asks for)."""
    missing = {}
    if "simulate" in steps:
        want = simulator
        names = list(SIMULATOR_PROGRAMS) if want == "auto" else [want]
        if not any(installed(SIMULATOR_PROGRAMS[n]) for n in names):
            missing["simulate"] = " or ".join("+".join(SIMULATOR_PROGRAMS[n]) for n in names)
    if "synthesize" in steps and not installed(["yosys"]):
        missing["synthesize"] = "yosys"
    if "place_route" in steps and missing_programs():
        missing["place_route"] = "+".join(missing_programs())
    return missing


def skip_notice(skipped: dict[str, str]) -> str:
    """One line: the skipped steps, what they need, the command that installs it."""
    needs = "; ".join(f"{step} needs {tool}" for step, tool in skipped.items())
    commands = [f"`{INSTALL_COMMAND}`"] if set(skipped) - {"place_route"} else []
    commands += [f"`{FPGA_INSTALL_COMMAND}`"] if "place_route" in skipped else []
    return (f"skipped steps {', '.join(skipped)} ({needs}, not found): install the tools with "
            f"{' and '.join(commands)} and run again")
