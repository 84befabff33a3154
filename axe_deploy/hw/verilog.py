"""Verilog for a chain of layer specs: per-layer wrappers and ROM hex files, a stitched top.

``write_rtl(layers, folder)`` writes into ``folder``:
- the generic modules it uses (``axe_mvau.v`` with ``axe_rom.v`` and ``axe_pipe.v``, ``axe_swg.v``,
  ``axe_maxpool.v``, ``axe_reorder.v``, ``axe_dwc.v``, ``axe_fifo.v``, copied from the
  package);
- per layer ``<top>_<name>.v``, a wrapper module of that name that fixes the generic
  module's parameters (synthesizable on its own), and for an MVAU its
  ``<top>_<name>_weights.hex`` / ``_thresholds.hex`` ROM images, for a reorder its
  ``<top>_<name>_order.hex``;
- ``<top>.v``, the stitched top: layers in order, a data-width converter wherever one
  layer's lanes differ from the next one's, and a FIFO of one input vector in front of
  every MVAU that follows another layer (so the producer can work on the next vector while
  the MVAU replays the current one: the chain then runs at the slowest layer's interval);
- ``files.f``, the Verilog files in compile order.

The ROM files are read by ``$readmemh`` with paths relative to ``folder``: simulators and
synthesis run there. Ports of the top and of every wrapper: ``clk``, ``rst_n``
(synchronous, active low), ``in_data/in_valid/in_ready``, ``out_data/out_valid/out_ready``.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .spec import Layer, MaxPoolLayer, MVAULayer, ReorderLayer, SlidingWindowLayer, check_chain

RTL_DIR = Path(__file__).resolve().parent.parent / "rtl"
CORE_FILES = {MVAULayer: ("axe_rom.v", "axe_pipe.v", "axe_mvau.v"), SlidingWindowLayer: ("axe_swg.v",),
              MaxPoolLayer: ("axe_maxpool.v",), ReorderLayer: ("axe_reorder.v",)}


@dataclass
class RtlDesign:
    """What ``write_rtl`` wrote; everything simulation and synthesis need."""

    folder: Path
    top: str
    files: list[str]             # compile order, relative to folder
    layers: list[Layer]
    modules: list[str]           # per-layer wrapper module names, in layer order
    instances: list[str]         # their instance names in the top

    @property
    def mvau_cores(self) -> list[tuple[str, str]]:
        """(layer name, hierarchical path of its MVAU core below the top)."""
        return [(layer.name, f"{inst}.core") for layer, inst in zip(self.layers, self.instances)
                if isinstance(layer, MVAULayer)]


def pack_words(values: np.ndarray, bits: int) -> list[str]:
    """Hex words for ``$readmemh``: row r of ``values`` [n_words, lanes] is one word, lane i
    in bits [i*bits, (i+1)*bits) as two's complement; MSB first, ceil(lanes*bits/4) digits."""
    v = np.asarray(values, dtype=np.int64)
    n, lanes = v.shape
    width = lanes * bits
    b = ((v[:, :, None] >> np.arange(bits, dtype=np.int64)) & 1).reshape(n, width)
    ndig = -(-width // 4)
    b = np.concatenate([b, np.zeros((n, ndig * 4 - width), dtype=np.int64)], axis=1)
    nib = b[:, ::-1].reshape(n, ndig, 4) @ np.array([8, 4, 2, 1])
    digits = np.array(list("0123456789abcdef"))[nib]
    return ["".join(row) for row in digits]


def unpack_words(words: list[str], lanes: int, bits: int, signed: bool) -> np.ndarray:
    """Inverse of ``pack_words``: hex words -> int64 [len(words) * lanes], lane 0 first."""
    mask = (1 << bits) - 1
    out = np.array([[(int(w, 16) >> (i * bits)) & mask for i in range(lanes)] for w in words],
                   dtype=np.int64).reshape(-1)
    if signed:
        out = np.where(out >= 1 << (bits - 1), out - (1 << bits), out)
    return out


def weight_words(layer: MVAULayer) -> np.ndarray:
    """Weight ROM contents [NF*SF, PE*SIMD]: address nf*SF + sf, lane p*SIMD + s holds
    W[nf*PE + p, sf*SIMD + s]."""
    NF, SF = layer.MH // layer.PE, layer.MW // layer.SIMD
    w = layer.weights.reshape(NF, layer.PE, SF, layer.SIMD).transpose(0, 2, 1, 3)
    return w.reshape(NF * SF, layer.PE * layer.SIMD)


def threshold_words(layer: MVAULayer) -> np.ndarray:
    """Threshold ROM contents [NF, PE*n_thr], each threshold clamped to
    [register min, register max + 1] of the register it is compared with (the outer one
    when tiled): below the range it is always reached, above never, and the comparison on
    result_bits + 1 bits stays exact."""
    P = layer.result_bits
    lo, hi = (-(2 ** (P - 1)), 2 ** (P - 1)) if layer.acc_signed else (0, 2**P)
    t = np.clip(layer.thresholds, lo, hi)
    NF = layer.MH // layer.PE
    return t.reshape(NF, layer.PE * layer.n_thresholds)


def verilog_name(name: str) -> str:
    """A Verilog identifier for a layer name (ONNX names carry '/', '.', ':')."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return ident if re.match(r"[A-Za-z_]", ident) else f"l_{ident}"


def _params(pairs: dict) -> str:
    return ",\n".join(f"    .{k}({v})" for k, v in pairs.items())


RES_TYPE_CODES = {"auto": 0, "lut": 1, "dsp": 2}  # axe_mvau's RES_TYPE

BLOCK_ROM_MIN_BITS = 9216  # half a RAMB18: smaller ROMs are left to the tool under "auto"


def rom_style(ram_style: str, depth: int, width: int) -> int:
    """The axe_rom STYLE code (0 tool's choice, 1 block, 2 distributed) of one ROM."""
    if ram_style == "auto":
        return 1 if depth * width >= BLOCK_ROM_MIN_BITS else 0
    return {"block": 1, "distributed": 2}[ram_style]


def _core_params(layer: Layer, module: str, folder: Path) -> tuple[str, dict]:
    if isinstance(layer, MVAULayer):
        NF, SF = layer.MH // layer.PE, layer.MW // layer.SIMD
        wfile, tfile = f"{module}_weights.hex", f"{module}_thresholds.hex"
        words = pack_words(weight_words(layer), layer.weight_bits)
        (folder / wfile).write_text("\n".join(words) + "\n")
        if layer.thresholds is not None:
            (folder / tfile).write_text(
                "\n".join(pack_words(threshold_words(layer), layer.result_bits + 1)) + "\n")
        return "axe_mvau", dict(
            MW=layer.MW, MH=layer.MH, SIMD=layer.SIMD, PE=layer.PE, IN_BITS=layer.input_bits,
            IN_SIGNED=int(layer.input_signed), W_BITS=layer.weight_bits, ACC_BITS=layer.acc_bits,
            ACC_SIGNED=int(layer.acc_signed), TILE=layer.tile_size,
            OUTER_BITS=layer.result_bits, N_THR=layer.n_thresholds,
            **({"ACT_VAL": layer.act_val, "OUT_BITS": layer.output_bits} if layer.act_val else {}),
            WEIGHT_FILE=f'"{wfile}"', THRESH_FILE=f'"{tfile}"',
            WEIGHT_ROM_STYLE=rom_style(layer.ram_style, NF * SF,
                                       layer.PE * layer.SIMD * layer.weight_bits),
            THRESH_ROM_STYLE=rom_style(layer.ram_style, NF,
                                       layer.PE * layer.n_thresholds * (layer.result_bits + 1)),
            PIPE=layer.built_pipeline_stages, RES_TYPE=RES_TYPE_CODES[layer.res_type])
    if isinstance(layer, ReorderLayer):
        ofile = f"{module}_order.hex"
        address_bits = max(1, (layer.N - 1).bit_length())
        (folder / ofile).write_text("\n".join(pack_words(layer.order[:, None], address_bits)) + "\n")
        return "axe_reorder", dict(N=layer.N, BITS=layer.bits, ORDER_FILE=f'"{ofile}"')
    if isinstance(layer, SlidingWindowLayer):
        return "axe_swg", dict(H=layer.H, W=layer.W, C=layer.C, K=layer.K, STRIDE=layer.stride,
                               PAD=layer.pad, SIMD=layer.SIMD, BITS=layer.bits)
    return "axe_maxpool", dict(H=layer.H, W=layer.W, C=layer.C, PE=layer.PE, BITS=layer.bits,
                               SIGNED=int(layer.signed))


_PORTS = """  input  wire clk,
  input  wire rst_n,
  input  wire [{iw}:0] in_data,
  input  wire in_valid,
  output wire in_ready,
  output wire [{ow}:0] out_data,
  output wire out_valid,
  input  wire out_ready"""

_CONNECT = """.clk(clk), .rst_n(rst_n),
    .in_data({i}_data), .in_valid({i}_valid), .in_ready({i}_ready),
    .out_data({o}_data), .out_valid({o}_valid), .out_ready({o}_ready)"""


def _wrapper(layer: Layer, module: str, folder: Path) -> str:
    core, params = _core_params(layer, module, folder)
    iw = layer.in_lanes * layer.input_bits - 1
    ow = layer.out_lanes * layer.output_bits - 1
    return (f"// Layer '{layer.name}': generated by axe_deploy.hw.verilog.\n"
            f"`default_nettype none\nmodule {module} (\n{_PORTS.format(iw=iw, ow=ow)}\n);\n"
            f"  {core} #(\n{_params(params)}\n  ) core (\n"
            f"    {_CONNECT.format(i='in', o='out')}\n  );\n"
            "endmodule\n`default_nettype wire\n")


def _fifo_depth(layer: Layer) -> int:
    return layer.MW // layer.SIMD if isinstance(layer, MVAULayer) else 0


def _top(top: str, layers: list[Layer], modules: list[str], instances: list[str],
         fifos: bool) -> str:
    first, last = layers[0], layers[-1]
    iw = first.in_lanes * first.input_bits - 1
    ow = last.out_lanes * last.output_bits - 1
    decl, body = [], []

    def stream(name: str, width: int) -> None:
        decl.append(f"  wire [{width - 1}:0] {name}_data;\n  wire {name}_valid, {name}_ready;")

    def glue(kind: str, params: dict, src: str, dst: str, inst: str) -> None:
        body.append(f"  {kind} #(\n{_params(params)}\n  ) {inst} (\n"
                    f"    {_CONNECT.format(i=src, o=dst)}\n  );")

    src = "in"
    for k, (layer, module, inst) in enumerate(zip(layers, modules, instances)):
        if k > 0:
            prev = layers[k - 1]
            bits = prev.output_bits
            if prev.out_lanes != layer.in_lanes:
                dst = f"{inst}_dwc"
                stream(dst, layer.in_lanes * bits)
                glue("axe_dwc", dict(IN_LANES=prev.out_lanes, OUT_LANES=layer.in_lanes, BITS=bits),
                     src, dst, f"{inst}_dwc_i")
                src = dst
            depth = _fifo_depth(layer) if fifos else 0
            if depth:
                dst = f"{inst}_fifo"
                stream(dst, layer.in_lanes * bits)
                glue("axe_fifo", dict(BITS=layer.in_lanes * bits, DEPTH=depth), src, dst,
                     f"{inst}_fifo_i")
                src = dst
        dst = "out" if k == len(layers) - 1 else inst
        if dst != "out":
            stream(dst, layer.out_lanes * layer.output_bits)
        body.append(f"  {module} {inst} (\n    {_CONNECT.format(i=src, o=dst)}\n  );")
        src = dst
    return (f"// Stitched dataflow top: generated by axe_deploy.hw.verilog.\n"
            f"`default_nettype none\nmodule {top} (\n{_PORTS.format(iw=iw, ow=ow)}\n);\n"
            + "\n".join(decl) + "\n\n" + "\n\n".join(body) + "\nendmodule\n`default_nettype wire\n")


def write_rtl(layers: list[Layer], folder, top: str = "axe_top", fifos: bool = True) -> RtlDesign:
    """Write the Verilog of ``layers`` (checked with ``check_chain``) into ``folder``.

    ``fifos=False`` connects layers directly (smaller, but an MVAU that replays a vector
    then stalls its producer and the chain runs slower than its slowest layer).
    """
    check_chain(layers)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    cores = ["axe_dwc.v", "axe_fifo.v"]
    for layer in layers:
        cores += [f for f in CORE_FILES[type(layer)] if f not in cores]
    for name in cores:
        shutil.copyfile(RTL_DIR / name, folder / name)
    modules, instances, used = [], [], set()
    for layer in layers:
        ident = verilog_name(layer.name)
        while ident in used:
            ident += "_"
        used.add(ident)
        module = f"{top}_{ident}"
        (folder / f"{module}.v").write_text(_wrapper(layer, module, folder))
        modules.append(module)
        instances.append(f"u_{ident}")
    (folder / f"{top}.v").write_text(_top(top, layers, modules, instances, fifos))
    files = cores + [f"{m}.v" for m in modules] + [f"{top}.v"]
    (folder / "files.f").write_text("\n".join(files) + "\n")
    return RtlDesign(folder=folder, top=top, files=files, layers=list(layers),
                     modules=modules, instances=instances)
