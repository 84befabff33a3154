"""FINN builder steps and helpers shipped with an axe-deploy handoff (copied next to build.py).

It imports only the standard library, numpy, qonnx and (inside functions) FINN, so it runs
in FINN's own environment. ``step_axe_check_accumulators`` runs after FINN's
``step_minimize_bit_width``, which sets each MVAU's ``accDataType`` from the weights it sees,
and compares it with the width axe-deploy proved for that layer (``accumulators.json``,
one entry per MVAU in graph order): a FINN accumulator that cannot hold the proven range
stops the build; a wider one is reported (FINN pads a last MVAU without activation to a
multiple of 8 bits). It also stops when a folding entry names no node of FINN's graph
(FINN itself only warns "Unused HW configurations" and leaves that layer at SIMD = PE = 1).
"""

import json
from pathlib import Path

from qonnx.core.datatype import DataType
from qonnx.util.basic import get_by_name

HERE = Path(__file__).resolve().parent
ACCUMULATORS = HERE / "accumulators.json"
FOLDING = HERE / "folding_config.json"
CHECK_FILE = "axe_accumulator_check.json"


def _attr(node, name, default=None):
    a = get_by_name(node.attribute, name)
    if a is None:
        return default
    return a.s.decode() if a.s else a.i


def compare_accumulators(model, expected):
    """One row per MVAU: FINN's accDataType next to the proven type; status equal | wider | narrower."""
    mvaus = [n for n in model.graph.node if n.op_type.startswith("MVAU")]
    if len(mvaus) != len(expected):
        raise RuntimeError(f"FINN graph has {len(mvaus)} MVAU nodes, the axe-deploy handoff "
                           f"annotates {len(expected)} layers: the graphs do not correspond")
    rows = []
    for node, layer in zip(mvaus, expected):
        finn_dt = DataType[_attr(node, "accDataType")]
        ours = DataType[layer["accumulator_datatype"]]
        lo, hi = layer["accumulator_range"]
        row = {"finn_node": node.name, "layer": layer["name"], "finn": finn_dt.name, "ours": ours.name,
               "proven_range": [lo, hi]}
        if finn_dt.min() > lo or finn_dt.max() < hi:
            row["status"] = "narrower"
        elif finn_dt.bitwidth() > ours.bitwidth():
            row["status"] = "wider"
            last = model.find_direct_successors(node) is None
            if _attr(node, "noActivation", 0) and last and finn_dt.bitwidth() % 8 == 0:
                row["reason"] = "FINN pads a last MVAU without activation to a multiple of 8 bits"
        else:
            row["status"] = "equal"
        rows.append(row)
    return rows


def check_accumulators(model, expected):
    """Raise if a FINN MVAU's accDataType cannot hold the range axe-deploy proved."""
    rows = compare_accumulators(model, expected)
    bad = [r for r in rows if r["status"] == "narrower"]
    if bad:
        r = bad[0]
        raise RuntimeError(f"{r['finn_node']} ({r['layer']}): FINN's accumulator {r['finn']} is narrower than "
                           f"the proven {r['ours']} (range {r['proven_range']}): the accelerator would overflow")
    return rows


def check_folding_names(model, folding):
    """Raise if a folding entry names no node of the graph (FINN would ignore it silently)."""
    names = {n.name for n in model.graph.node}
    unused = [k for k in folding if k != "Defaults" and k not in names]
    if unused:
        raise RuntimeError(f"folding_config.json: {unused} name no node of FINN's graph "
                           f"({sorted(names)}); FINN would leave those layers unfolded")


def step_axe_check_accumulators(model, cfg):
    rows = check_accumulators(model, json.loads(ACCUMULATORS.read_text())["layers"])
    if FOLDING.is_file():
        check_folding_names(model, json.loads(FOLDING.read_text()))
    out = Path(cfg.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / CHECK_FILE).write_text(json.dumps({"mvaus": rows}, indent=2) + "\n")
    return model


def execute_before_specialize(output_dir, x, minimize_cfg):
    """FINN's ``execute_onnx`` on the graph of ``step_convert_to_hw`` (HW layers, not yet
    specialized to _hls/_rtl, so they run in Python) on each row of ``x`` (batch 1).

    FINN's ``step_minimize_bit_width`` runs on it first: until then the bias of a layer
    without activation still carries its stale ``INT32`` label and ``execute_onnx`` refuses it.
    """
    import numpy as np
    from finn.builder.build_dataflow_steps import step_minimize_bit_width
    from finn.core.onnx_exec import execute_onnx
    from qonnx.core.modelwrapper import ModelWrapper

    model = ModelWrapper(str(Path(output_dir) / "intermediate_models" / "step_convert_to_hw.onnx"))
    model = step_minimize_bit_width(model, minimize_cfg)
    inp, out = model.graph.input[0].name, model.graph.output[0].name
    shape = model.get_tensor_shape(inp)
    rows = [execute_onnx(model, {inp: row.reshape(shape).astype(np.float32)})[out] for row in x]
    return np.concatenate(rows)
