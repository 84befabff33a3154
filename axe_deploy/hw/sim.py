"""Cycle-accurate simulation of a stitched design on integer input images.

``simulate(design, x)`` writes a testbench next to the design (``sim/``), builds it with
Verilator (or runs it with Icarus Verilog when Verilator is missing or asked for) with the
``AXE_SIM_OVERFLOW`` define, streams every image through the top and returns the outputs,
the measured cycles and the overflow counts of every MVAU (output values whose
accumulation left the register's range, seen by 64-bit shadow accumulators; for a tiled
MVAU the inner register's and the outer register's separately).
``simulate_many`` does the same for several designs written into one folder, side by side
in one testbench, so that they cost one simulator build.

The testbench can throttle both handshakes with a pseudo-random pattern (``stall=True``)
to exercise the valid/ready logic; cycle figures are meaningful with ``stall=False``.
"""

from __future__ import annotations

import subprocess
import time
from dataclasses import dataclass, field

import numpy as np

from axe_deploy.hw.tools import SIMULATOR_PROGRAMS, installed

from .spec import estimate_latency
from .verilog import RtlDesign, pack_words, unpack_words

_MAIN_CPP = """#include "Vaxe_tb.h"
#include "verilated.h"
int main(int argc, char** argv) {
  VerilatedContext ctx;
  ctx.commandArgs(argc, argv);
  Vaxe_tb tb{&ctx};
  while (!ctx.gotFinish()) {
    tb.clk = 0; tb.eval();
    tb.clk = 1; tb.eval();
    ctx.timeInc(1);
  }
  tb.final();
  return 0;
}
"""

_CLOCK_V = """module axe_tb_clock;
  reg clk = 1'b0;
  always #1 clk = ~clk;
  axe_tb tb (.clk(clk));
endmodule
"""


@dataclass
class SimResult:
    """Outputs [n, out_elems] (int64, signed where the last layer's output is), cycle
    figures of the run and overflow counts per MVAU layer: ``overflows`` of the (inner)
    accumulator, ``outer_overflows`` of a tiled MVAU's outer accumulator (0 for one stage)."""

    outputs: np.ndarray
    simulator: str
    start_cycles: np.ndarray       # cycle each image's first input beat was accepted
    done_cycles: np.ndarray        # cycle each image's last output beat left
    overflows: dict[str, int]
    outer_overflows: dict[str, int]
    build_s: float
    run_s: float
    timed_out: bool = False
    log: str = field(default="", repr=False)

    @property
    def latency(self) -> int:
        """Cycles from the first image's first input beat to its last output beat."""
        return int(self.done_cycles[0] - self.start_cycles[0] + 1)

    @property
    def interval(self) -> float:
        """Mean cycles between consecutive images' completions (the initiation interval)."""
        n = len(self.done_cycles)
        return float(np.diff(self.done_cycles).mean()) if n > 1 else float(self.latency)

    @property
    def total_cycles(self) -> int:
        return int(self.done_cycles[-1] - self.start_cycles[0] + 1)

    @property
    def total_overflows(self) -> int:
        """Inner and outer overflows of every MVAU."""
        return sum(self.overflows.values()) + sum(self.outer_overflows.values())


def available_simulator(prefer: str = "auto") -> str:
    """'verilator' or 'icarus' (``prefer`` if installed; 'auto': Verilator first)."""
    have = {name: installed(programs) for name, programs in SIMULATOR_PROGRAMS.items()}
    order = ["verilator", "icarus"] if prefer == "auto" else [prefer]
    if prefer not in ("auto", *have):
        raise ValueError(f"unknown simulator '{prefer}': use 'auto', 'verilator' or 'icarus'")
    for name in order:
        if have[name]:
            return name
    raise RuntimeError(f"no simulator found ({' or '.join(order)}): run "
                       "`bash docker/install-system-tools.sh` as root")


def _check_input(design: RtlDesign, x: np.ndarray) -> np.ndarray:
    first = design.layers[0]
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != first.in_elems or len(x) == 0:
        raise ValueError(f"input has shape {x.shape}, expected [n >= 1, {first.in_elems}]")
    lo = -(2 ** (first.input_bits - 1)) if first.input_signed else 0
    hi = 2 ** (first.input_bits - (1 if first.input_signed else 0)) - 1
    if x.min() < lo or x.max() > hi or not np.array_equal(x.astype(np.int64), x):
        raise ValueError(f"input must be integers in [{lo}, {hi}] (layer '{first.name}')")
    return x.astype(np.int64)


def _driver(k: int, design: RtlDesign, n: int) -> tuple[str, str]:
    """Declarations and clocked body that stream ``n`` images through design ``k``."""
    first, last = design.layers[0], design.layers[-1]
    iw = first.in_lanes * first.input_bits
    ow = last.out_lanes * last.output_bits
    in_beats = first.in_elems // first.in_lanes
    out_beats = last.out_elems // last.out_lanes
    decl = f"""  // design {k}: {design.top}
  localparam integer N_IN_{k} = {n * in_beats};
  localparam integer IN_PER_IMAGE_{k} = {in_beats};
  localparam integer N_OUT_{k} = {n * out_beats};
  localparam integer OUT_PER_IMAGE_{k} = {out_beats};
  reg [{iw - 1}:0] in_mem_{k} [0:N_IN_{k}-1];
  integer n_in_{k} = 0, n_out_{k} = 0, next_in_{k}, fd_out_{k};
  reg in_valid_{k} = 1'b0;
  reg done_{k} = 1'b0;
  reg [{iw - 1}:0] in_data_{k} = {iw}'d0;
  wire in_ready_{k}, out_valid_{k};
  wire [{ow - 1}:0] out_data_{k};
  wire out_ready_{k} = (STALL == 0) || lfsr[3] || lfsr[7];
  {design.top} dut_{k} (.clk(clk), .rst_n(rst_n),
    .in_data(in_data_{k}), .in_valid(in_valid_{k}), .in_ready(in_ready_{k}),
    .out_data(out_data_{k}), .out_valid(out_valid_{k}), .out_ready(out_ready_{k}));
  initial begin
    $readmemh("sim/tb_in_{k}.hex", in_mem_{k});
    fd_out_{k} = $fopen("sim/tb_out_{k}.hex", "w");
  end
"""
    body = f"""      next_in_{k} = n_in_{k} + ((in_valid_{k} && in_ready_{k}) ? 1 : 0);
      if (in_valid_{k} && in_ready_{k} && n_in_{k} % IN_PER_IMAGE_{k} == 0) $fwrite(fd_log, "in {k} %0d\\n", cycle);
      n_in_{k} <= next_in_{k};
      if (!in_valid_{k} || in_ready_{k}) begin
        in_valid_{k} <= next_in_{k} < N_IN_{k} && (STALL == 0 || lfsr[0] || lfsr[5]);
        in_data_{k} <= in_mem_{k}[next_in_{k} < N_IN_{k} ? next_in_{k} : 0];
      end
      if (out_valid_{k} && out_ready_{k}) begin
        $fwrite(fd_out_{k}, "%h\\n", out_data_{k});
        n_out_{k} <= n_out_{k} + 1;
        if ((n_out_{k} + 1) % OUT_PER_IMAGE_{k} == 0) $fwrite(fd_log, "done {k} %0d\\n", cycle);
        if (n_out_{k} + 1 == N_OUT_{k}) done_{k} <= 1'b1;
      end
"""
    return decl, body


def _testbench(designs: list[RtlDesign], counts: list[int], stall: bool, max_cycles: int) -> str:
    """One testbench for several designs side by side (one build, one run): each gets its
    own input memory and output file; the run ends when every design has given all its
    outputs (or at ``max_cycles``), then writes every MVAU's overflow count."""
    parts = [_driver(k, d, n) for k, (d, n) in enumerate(zip(designs, counts))]
    all_done = " && ".join(f"done_{k}" for k in range(len(designs)))
    ovf = "".join(f'      $fwrite(fd_log, "ovf {k} {j} %0d %0d\\n", dut_{k}.{path}.ovf_count, '
                  f'dut_{k}.{path}.ovf_outer_count);\n'
                  for k, d in enumerate(designs) for j, (_, path) in enumerate(d.mvau_cores))
    closes = "".join(f"        $fclose(fd_out_{k});\n" for k in range(len(designs)))
    return f"""// Testbench generated by axe_deploy.hw.sim.
module axe_tb (input wire clk);
  localparam integer MAX_CYCLES = {max_cycles};
  localparam integer STALL = {int(stall)};
  integer cycle = 0, fd_log;
  reg [31:0] lfsr = 32'h1;
  reg rst_n = 1'b0;
  initial fd_log = $fopen("sim/tb_log.txt", "w");
{"".join(decl for decl, _ in parts)}
  always @(posedge clk) begin
    cycle <= cycle + 1;
    lfsr <= {{lfsr[30:0], lfsr[31] ^ lfsr[21] ^ lfsr[1] ^ lfsr[0]}};
    rst_n <= cycle >= 3;
    if (rst_n) begin
{"".join(body for _, body in parts)}      if (({all_done}) || cycle > MAX_CYCLES) begin
        if (cycle > MAX_CYCLES) $fwrite(fd_log, "timeout %0d\\n", cycle);
{ovf}{closes}        $fclose(fd_log);
        $finish;
      end
    end
  end
endmodule
"""


def _run(cmd: list[str], cwd, what: str) -> None:
    proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}): {' '.join(cmd)}\n"
                           f"{(proc.stdout + proc.stderr)[-4000:]}")


def simulate(design: RtlDesign, x: np.ndarray, simulator: str = "auto", stall: bool = False,
             max_cycles: int | None = None, jobs: int = 2) -> SimResult:
    """Stream the images ``x`` [n, in_elems] (integers in the first layer's input range)
    through ``design`` and collect what comes out.

    ``max_cycles`` (default: 4x the sum of the layers' latencies per image, plus slack)
    stops a design that hangs; the result then has ``timed_out`` set and fewer outputs.
    """
    return simulate_many([design], [x], simulator, stall, max_cycles, jobs)[0]


def simulate_many(designs: list[RtlDesign], inputs: list[np.ndarray], simulator: str = "auto",
                  stall: bool = False, max_cycles: int | None = None,
                  jobs: int = 2) -> list[SimResult]:
    """``simulate`` for several designs written into one folder (different tops), in one
    testbench: one simulator build for all of them. ``max_cycles`` (default: that of the
    slowest design) bounds the whole run. Returns one result per design, with the build
    and run times of the shared run."""
    folder = designs[0].folder
    if len(designs) != len(inputs) or any(d.folder != folder for d in designs):
        raise ValueError("simulate_many: one input array per design, all designs in one folder")
    inputs = [_check_input(d, x) for d, x in zip(designs, inputs)]
    if max_cycles is None:
        per_image = [sum(estimate_latency(layer) for layer in d.layers) for d in designs]
        max_cycles = max(4 * c * (len(x) + 1) + 1000 for c, x in zip(per_image, inputs))
    simulator = available_simulator(simulator)
    sim_dir = folder / "sim"
    sim_dir.mkdir(exist_ok=True)
    for f in sim_dir.glob("tb_*.hex"):
        f.unlink()
    (sim_dir / "tb_log.txt").unlink(missing_ok=True)
    for k, (d, x) in enumerate(zip(designs, inputs)):
        beats = x.reshape(-1, d.layers[0].in_lanes)
        (sim_dir / f"tb_in_{k}.hex").write_text("\n".join(pack_words(beats, d.layers[0].input_bits)) + "\n")
    (sim_dir / "tb.v").write_text(_testbench(designs, [len(x) for x in inputs], stall, max_cycles))
    sources = ["sim/tb.v"] + list(dict.fromkeys(f for d in designs for f in d.files))

    t0 = time.perf_counter()
    if simulator == "verilator":
        (sim_dir / "tb_main.cpp").write_text(_MAIN_CPP)
        # the Verilator runtime needs no optimisation, the model a little: a faster build
        make_opts = ["-MAKEFLAGS", "OPT_GLOBAL=-O0", "-MAKEFLAGS", "OPT_FAST=-O1",
                     "-MAKEFLAGS", "OPT_SLOW=-O0"]
        _run(["verilator", "--cc", "--exe", "--build", "-j", str(jobs), "-Wno-fatal",
              "-Wno-lint", "-Wno-style", "--top-module", "axe_tb", "-DAXE_SIM_OVERFLOW",
              *make_opts, "-Mdir", "sim/obj", "-o", "axe_sim",
              str((sim_dir / "tb_main.cpp").resolve()), *sources], folder, "verilator build")
        binary = ["sim/obj/axe_sim"]
    else:
        (sim_dir / "tb_clock.v").write_text(_CLOCK_V)
        _run(["iverilog", "-g2005", "-DAXE_SIM_OVERFLOW", "-s", "axe_tb_clock",
              "-o", "sim/axe_sim.vvp", "sim/tb_clock.v", *sources], folder, "iverilog build")
        binary = ["vvp", "-n", "sim/axe_sim.vvp"]
    t1 = time.perf_counter()
    _run(binary, folder, f"{simulator} simulation")
    t2 = time.perf_counter()

    log = (sim_dir / "tb_log.txt").read_text()
    starts = [[] for _ in designs]
    dones = [[] for _ in designs]
    overflows = [{} for _ in designs]
    outer = [{} for _ in designs]
    timed_out = False
    for line in log.splitlines():
        key, *rest = line.split()
        if key == "in":
            starts[int(rest[0])].append(int(rest[1]))
        elif key == "done":
            dones[int(rest[0])].append(int(rest[1]))
        elif key == "ovf":
            k, j = int(rest[0]), int(rest[1])
            name = designs[k].mvau_cores[j][0]
            overflows[k][name], outer[k][name] = int(rest[2]), int(rest[3])
        elif key == "timeout":
            timed_out = True
    results = []
    for k, d in enumerate(designs):
        last = d.layers[-1]
        out_lines = (sim_dir / f"tb_out_{k}.hex").read_text().split()
        flat = unpack_words(out_lines, last.out_lanes, last.output_bits, last.output_signed)
        outputs = flat[: (len(flat) // last.out_elems) * last.out_elems].reshape(-1, last.out_elems)
        results.append(SimResult(outputs=outputs, simulator=simulator, start_cycles=np.array(starts[k]),
                                 done_cycles=np.array(dones[k]), overflows=overflows[k],
                                 outer_overflows=outer[k], build_s=t1 - t0,
                                 run_s=t2 - t1, timed_out=timed_out, log=log))
    return results


def lint(design: RtlDesign) -> str:
    """``verilator --lint-only -Wall`` on the design (without the simulation define);
    returns Verilator's messages, empty when clean."""
    proc = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", design.top,
                           *design.files], cwd=design.folder, capture_output=True, text=True)
    return (proc.stdout + proc.stderr).strip()
