"""What the upstream FINN compiler consumes, written next to our own build.

``finn/`` holds the annotated QONNX model (FINN's ``step_qonnx_to_finn`` takes QONNX
Quant nodes), ``folding_config.json`` with our PE/SIMD, ``dataflow_build_config.json``
with FINN's standard step list plus a custom step that checks FINN's minimised
accumulators against ours, the step's module and ``accumulators.json``, and
``build.py`` that runs it all inside FINN's docker (``./run-docker.sh build_custom``).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from axe_deploy.hw.spec import MVAULayer

STEP_MODULE = Path(__file__).with_name("axe_finn_steps.py")

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
    "axe_finn_steps.step_axe_check_accumulators",
    "step_generate_estimate_reports",
    "step_hw_codegen",
    "step_hw_ipgen",
    "step_set_fifo_depths",
    "step_create_stitched_ip",
    "step_measure_rtlsim_performance",
    "step_out_of_context_synthesis",
]

BUILD_PY = '''"""Run the FINN build of this handoff: ./run-docker.sh build_custom <this folder>."""
import json
import sys
from pathlib import Path

from finn.builder.build_dataflow import build_dataflow_cfg
from finn.builder.build_dataflow_config import DataflowBuildConfig

here = Path(__file__).resolve().parent
sys.path.insert(0, str(here))
import axe_finn_steps  # noqa: E402

cfg = json.loads((here / "dataflow_build_config.json").read_text())
cfg["steps"] = [getattr(axe_finn_steps, s.split(".")[1]) if s.startswith("axe_finn_steps.") else s
                for s in cfg["steps"]]
cfg["folding_config_file"] = str(here / cfg["folding_config_file"])
cfg["output_dir"] = str(here / cfg["output_dir"])
build_dataflow_cfg(str(here / "model.onnx"), DataflowBuildConfig(**cfg))
'''


def folding_config(layers: list[MVAULayer]) -> dict:
    """FINN's folding file: node names as FINN gives them after specialize_layers."""
    cfg = {"Defaults": {}}
    for i, layer in enumerate(layers):
        cfg[f"MVAU_hls_{i}"] = {"PE": layer.PE, "SIMD": layer.SIMD, "ram_style": "auto",
                                "resType": "lut", "mem_mode": "internal_decoupled"}
    return cfg


def build_config(part: str, clock_ns: float) -> dict:
    return {
        "output_dir": "output",
        "synth_clk_period_ns": clock_ns,
        "fpga_part": part,
        "folding_config_file": "folding_config.json",
        "auto_fifo_depths": True,
        "generate_outputs": ["estimate_reports", "stitched_ip", "rtlsim_performance", "out_of_context_synth"],
        "steps": FINN_STEPS,
    }


def write_handoff(folder: Path, qonnx_path: Path, layers: list[MVAULayer], report_layers: list[dict],
                  *, part: str, clock_ns: float) -> list[str]:
    """Write the FINN handoff into ``folder``; returns the file names written."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(qonnx_path, folder / "model.onnx")
    shutil.copyfile(STEP_MODULE, folder / STEP_MODULE.name)
    files = {
        "folding_config.json": folding_config(layers),
        "dataflow_build_config.json": build_config(part, clock_ns),
        # FINN's MVAU has one accumulator: a tiled layer's one-stage equivalent is its outer width
        "accumulators.json": {"layers": [{"name": l["name"], "accumulator_datatype":
                                          l.get("outer_accumulator_datatype") or l["accumulator_datatype"]}
                                         for l in report_layers]},
    }
    for name, content in files.items():
        (folder / name).write_text(json.dumps(content, indent=2) + "\n")
    (folder / "build.py").write_text(BUILD_PY)
    return ["model.onnx", STEP_MODULE.name, "build.py", *files]
