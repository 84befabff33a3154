"""Custom FINN builder step shipped with an axe-deploy handoff (copied next to build.py).

It imports only qonnx, so it runs inside FINN's own environment. FINN's
``step_minimize_bit_width`` sets each MVAU's ``accDataType`` from the weights it sees;
this step checks that none of them is wider than the width axe-deploy annotated and
proved for that layer (``accumulators.json``, one entry per MVAU in graph order).
"""

import json
from pathlib import Path

from qonnx.core.datatype import DataType
from qonnx.util.basic import get_by_name

ACCUMULATORS = Path(__file__).with_name("accumulators.json")


def check_accumulators(model, expected):
    """Raise if a FINN MVAU's accDataType is wider than axe-deploy's annotation."""
    mvaus = [n for n in model.graph.node if n.op_type.startswith("MVAU")]
    if len(mvaus) != len(expected):
        raise RuntimeError(f"FINN graph has {len(mvaus)} MVAU nodes, the axe-deploy handoff "
                           f"annotates {len(expected)} layers: the graphs do not correspond")
    for node, layer in zip(mvaus, expected):
        finn_dt = DataType[get_by_name(node.attribute, "accDataType").s.decode()]
        ours = DataType[layer["accumulator_datatype"]]
        if finn_dt.bitwidth() > ours.bitwidth():
            raise RuntimeError(f"{node.name} ({layer['name']}): FINN's accumulator {finn_dt.name} is "
                               f"wider than the proven {ours.name}; run step_minimize_bit_width first")
    return model


def step_axe_check_accumulators(model, cfg):
    return check_accumulators(model, json.loads(ACCUMULATORS.read_text())["layers"])
