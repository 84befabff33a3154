"""What the upstream FINN compiler consumes, written next to our own build.

``finn/`` holds ``model.onnx`` (the annotated QONNX graph as FINN's builder takes it
unmodified: integer graph input + ``Mul`` by the input scale, batch 1, see
:mod:`axe_deploy.handoff.finn_graph`), ``input_quantization.json`` (how a float input
becomes that integer input), ``folding_config.json`` with our PE/SIMD under the names FINN
gives its layers after ``step_specialize_layers`` (fixed by ``specialize_layers_config.json``),
``dataflow_build_config.json`` with FINN's standard step list plus a custom step that checks
FINN's minimised accumulators against ours, the step's module, ``accumulators.json`` and
``build.py`` (``python build.py`` in FINN's environment; ``--vivado-free`` stops after the
estimates).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.handoff.finn_graph import finn_graph, input_quantization
from axe_deploy.hw.spec import MaxPoolLayer, MVAULayer, SlidingWindowLayer

STEP_MODULE = Path(__file__).with_name("axe_finn_steps.py")
CHECK_STEP = "axe_finn_steps.step_axe_check_accumulators"

FINN_STEPS = [
    "step_qonnx_to_finn",
    "step_tidy_up",
    "step_streamline",
    "step_convert_to_hw",
    "step_create_dataflow_partition",
    "step_specialize_layers",
    "step_target_fps_parallelization",
    "step_apply_folding_config",
    "step_minimize_bit_width",
    CHECK_STEP,
    "step_transpose_decomposition",
    "step_generate_estimate_reports",
    # from here on FINN needs Vitis HLS / Vivado
    "step_hw_codegen",
    "step_hw_ipgen",
    "step_set_fifo_depths",
    "step_create_stitched_ip",
    "step_measure_rtlsim_performance",
    "step_out_of_context_synthesis",
]
LAST_VIVADO_FREE_STEP = "step_generate_estimate_reports"

# FINN's implementation style per HW op, so the names after specialize_layers are known:
# MVAU as HLS (FINN picks RTL for a layer without activation and narrow weights on a DSP48E1
# part, which renames it MVAU_rtl_N), the sliding window and padding as RTL (FINN dev has no
# HLS variant of them), the pooling as HLS (its only variant).
IMPL_STYLE = {"MVAU": "hls", "Pool": "hls", "ConvolutionInputGenerator": "rtl", "FMPadding": "rtl"}

BUILD_PY = '''"""Run FINN on this handoff, in FINN's environment: a venv with finn-plus (`pip install
finn-plus`), or a FINN checkout (its docker, `./run-docker.sh build_custom <this folder>`, or its
src on PYTHONPATH with FINN_ROOT set). FINN_BUILD_DIR must name an existing folder.

    python build.py                                # every step of dataflow_build_config.json (Vivado)
    python build.py --vivado-free                  # the steps that need no Vitis HLS/Vivado
    python build.py --vivado-free --execute x.npy  # and FINN's execute_onnx on the HW graph
                                                   # before step_specialize_layers -> output/axe_execution.npy

x.npy holds integer inputs (input_quantization.json says how a float input becomes one).
"""
import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
LAST_VIVADO_FREE_STEP = "%(last)s"

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--vivado-free", action="store_true", help="stop after " + LAST_VIVADO_FREE_STEP)
parser.add_argument("--execute", metavar="X.npy", help="integer inputs for FINN's execute_onnx")
args = parser.parse_args()

if not os.environ.get("XILINX_VIVADO"):
    if not args.vivado_free:
        sys.exit("FINN's full build needs Vivado: set XILINX_VIVADO (source Vivado's settings64.sh) "
                 "or pass --vivado-free")
    # finn-plus loads its Vivado simulator when its build steps are imported and reads
    # XILINX_VIVADO once the last step is done; the Vivado-free steps need neither
    import finn.xsi
    finn.xsi.SimEngine = None
    import finn.builder.build_dataflow
    finn.builder.build_dataflow.get_vivado_root = lambda: "no Vivado"
from finn.builder.build_dataflow import build_dataflow_cfg  # noqa: E402
from finn.builder.build_dataflow_config import DataflowBuildConfig  # noqa: E402

import axe_finn_steps  # noqa: E402

cfg = json.loads((here / "dataflow_build_config.json").read_text())
if args.vivado_free:
    cfg["steps"] = cfg["steps"][: cfg["steps"].index(LAST_VIVADO_FREE_STEP) + 1]
    cfg["generate_outputs"] = ["estimate_reports"]
cfg["steps"] = [getattr(axe_finn_steps, s.split(".")[1]) if s.startswith("axe_finn_steps.") else s
                for s in cfg["steps"]]
for key in ("folding_config_file", "specialize_layers_config_file", "output_dir"):
    if cfg.get(key):
        cfg[key] = str(here / cfg[key])
build_cfg = DataflowBuildConfig(**cfg)
if build_dataflow_cfg(str(here / "model.onnx"), build_cfg) != 0:
    sys.exit("FINN build failed: see " + cfg["output_dir"] + "/build_dataflow.log")
if args.execute:
    y = axe_finn_steps.execute_before_specialize(cfg["output_dir"], np.load(args.execute), build_cfg)
    np.save(Path(cfg["output_dir"]) / "axe_execution.npy", y)
'''


def folding_config(layers: list) -> dict:
    """FINN's folding file: our PE/SIMD under FINN's names after ``step_specialize_layers``.

    FINN lowers a padded convolution to FMPadding + ConvolutionInputGenerator + MVAU and a
    max-pool to ConvolutionInputGenerator + Pool; each kind is numbered in graph order.
    """
    count = {op: 0 for op in IMPL_STYLE}
    cfg = {"Defaults": {}}

    def add(op, **attrs):
        cfg[f"{op}_{IMPL_STYLE[op]}_{count[op]}"] = attrs
        count[op] += 1

    for layer in layers:
        if isinstance(layer, MVAULayer):
            add("MVAU", PE=layer.PE, SIMD=layer.SIMD, ram_style="auto", resType="lut",
                mem_mode="internal_decoupled")
        elif isinstance(layer, SlidingWindowLayer):
            if layer.pad:
                add("FMPadding", SIMD=layer.SIMD)
            add("ConvolutionInputGenerator", SIMD=layer.SIMD, parallel_window=0)
        elif isinstance(layer, MaxPoolLayer):
            add("ConvolutionInputGenerator", SIMD=layer.PE, parallel_window=0)
            add("Pool", PE=layer.PE)
        else:
            raise TypeError(f"layer '{layer.name}': no FINN folding entry for {type(layer).__name__}")
    return cfg


def specialize_config() -> dict:
    """``specialize_layers_config_file``: the implementation style of each HW op kind."""
    pairs = []
    for style in ("hls", "rtl"):
        pairs += [style, [op for op, s in IMPL_STYLE.items() if s == style]]
    return {"Defaults": {"preferred_impl_style": pairs}}


def build_config(part: str, clock_ns: float, folding: bool) -> dict:
    return {
        "output_dir": "output",
        "synth_clk_period_ns": clock_ns,
        "fpga_part": part,
        "folding_config_file": "folding_config.json" if folding else None,
        "specialize_layers_config_file": "specialize_layers_config.json",
        "auto_fifo_depths": True,
        "enable_build_pdb_debug": False,
        "save_intermediate_models": True,
        "generate_outputs": ["estimate_reports", "stitched_ip", "rtlsim_performance", "out_of_context_synth"],
        "steps": FINN_STEPS,
    }


def accumulator_entries(model: ModelWrapper) -> tuple[list[dict], list[str]]:
    """Per annotated layer (graph order = FINN's MVAU order) the width FINN must not undercut.

    FINN has one accumulator per MVAU: a multi-stage layer (T > 0) is handed over with its
    outer accumulator (which holds the whole dot product); the notes say so.
    """
    from axe_deploy.graph.annotation import Annotation
    from axe_deploy.graph.layers import COMPUTE_OPS

    entries, notes = [], []
    for node in model.graph.node:
        annotation = Annotation.of(node) if node.op_type in COMPUTE_OPS else None
        if not annotation:
            continue
        datatype, (lo, hi), note = annotation.one_accumulator("FINN")
        entry = {"name": annotation.layer_name, "accumulator_datatype": datatype, "accumulator_range": [lo, hi],
                 "tile_size": annotation.tile_size}
        if note:
            entry["inner_accumulator_datatype"] = annotation.accumulator_datatype
            notes.append(note)
        entries.append(entry)
    return entries, notes


def write_handoff(folder: Path, qonnx: ModelWrapper, layers: list | None = None, *, part: str,
                  clock_ns: float) -> dict:
    """Write the FINN handoff of the annotated graph ``qonnx`` (not changed) into ``folder``;
    returns what the report records of it.

    ``layers`` are the folded hardware layers (None: no folding file, FINN's defaults).
    """
    entries, notes = accumulator_entries(qonnx)
    iq = input_quantization(qonnx)
    model = finn_graph(qonnx)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(str(folder / "model.onnx"))
    shutil.copyfile(STEP_MODULE, folder / STEP_MODULE.name)
    files = {
        "dataflow_build_config.json": build_config(part, clock_ns, folding=layers is not None),
        "specialize_layers_config.json": specialize_config(),
        "accumulators.json": {"layers": entries, "notes": notes},
        "input_quantization.json": iq.as_dict() if iq else
        {"datatype": None, "note": "the graph input is not read by one per-tensor Quant: FINN takes it as it is"},
    }
    if layers is not None:
        files["folding_config.json"] = folding_config(layers)
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2) + "\n")
    (folder / "build.py").write_text(BUILD_PY % {"last": LAST_VIVADO_FREE_STEP})
    return {"files": sorted(["model.onnx", STEP_MODULE.name, "build.py", *files]), "notes": notes,
            "input_quantization": files["input_quantization.json"]}
