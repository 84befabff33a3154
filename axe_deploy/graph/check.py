"""Accumulator widths of any QONNX/QCDQ file: what ``axe-deploy annotate`` / ``check`` do.

``annotate IN OUT`` writes IN with the exact accumulator annotation of every quantized
layer (docs/reference.md) and prints the per-layer table; with ``--accumulator-bits P`` a layer
that needs more than P bits makes it exit 1 and write nothing. ``check IN`` recomputes
every layer's exact range from the graph's integer weights alone and compares it with the
annotation: OK (the annotated width is the exact one), slack n bits (wider than needed),
or violation (narrower, missing, or above the annotated target); exit 0 only when every
layer is OK. Widths come from :mod:`axe_deploy.core.accumulator`, through the annotator.
Residual Adds and average pools (:mod:`axe_deploy.graph.sums`) get rows too (op Add /
AveragePool, M ``-``, K = the number of terms summed), recomputed from their input types.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.graph.annotate import AnnotateAccumulators, copy_annotations
from axe_deploy.graph.annotation import Annotation
from axe_deploy.graph.foreign import read_graph, tidy_graph
from axe_deploy.graph.layers import quant_layers
from axe_deploy.graph.sums import sum_nodes


def _annotated_rows(model: ModelWrapper) -> list[dict]:
    rows = []
    for layer in quant_layers(model):
        node = model.graph.node[layer.node_index]
        annotation = Annotation.of(node)
        row = {"name": layer.layer_name, "node": node.name, "op": layer.op, "M": layer.M, "K": layer.K,
               "weight_datatype": layer.weight.datatype, "input_datatype": layer.input.datatype}
        if annotation:
            row.update(annotation.row())
        rows.append(row)
    for found in sum_nodes(model):
        node = model.graph.node[found.node_index]
        annotation = Annotation.of(node)
        row = {"name": found.name, "node": node.name, "op": found.op, "M": "-", "K": found.terms,
               "weight_datatype": "-", "input_datatype": found.input_datatype}
        if annotation:
            row.update(annotation.row())
        rows.append(row)
    return rows


def _exact_sums(model: ModelWrapper) -> dict[str, tuple[str, list[int]]]:
    """Exact (DataType, range) of every integer sum node, by node index."""
    return {f.node_index: (f.exact_datatype(), list(f.exact_range()))
            for f in sum_nodes(model)}


def annotate_rows(model: ModelWrapper, accumulator_bits: int = 0, tile_size: int = 0) -> tuple[ModelWrapper, list[dict]]:
    """(annotated copy of ``model``, per-layer rows with ``exact_bits`` and ``status``)."""
    exact = ModelWrapper(model.model.__deepcopy__()).transform(AnnotateAccumulators({"*": tile_size}))
    rows = _annotated_rows(exact)
    for row in rows:
        row["exact_bits"] = DataType[row["accumulator_datatype"]].bitwidth()
        if "accumulator_kind" in row:  # a sum: no weights for AXE to hold to a target
            row["status"] = "OK"
            continue
        row["target_accumulator_bits"] = accumulator_bits or None
        over = accumulator_bits and row["exact_bits"] > accumulator_bits
        row["status"] = f"needs {row['exact_bits']} > {accumulator_bits} bits" if over else "OK"
    if accumulator_bits and all(r["status"] == "OK" for r in rows):
        exact = exact.transform(AnnotateAccumulators({"*": tile_size}, {"*": accumulator_bits}))
    return exact, rows


def check_rows(model: ModelWrapper) -> list[dict]:
    """Each layer's annotation against the exact range recomputed from the weights."""
    annotated = {r["node"]: r for r in _annotated_rows(model)}
    exact_by_tile: dict[int, ModelWrapper] = {}  # the graph annotated afresh, per tile size in use
    rows = []
    exact_sums = _exact_sums(model)
    indices = sorted([layer.node_index for layer in quant_layers(model)] + list(exact_sums))
    for index in indices:
        node = model.graph.node[index]
        row = annotated[node.name]
        if index in exact_sums:
            need, lo_hi = DataType[exact_sums[index][0]], exact_sums[index][1]
        else:
            tile = row.get("tile_size", 0)
            if tile not in exact_by_tile:
                exact_by_tile[tile] = ModelWrapper(model.model.__deepcopy__()).transform(
                    AnnotateAccumulators({"*": tile}))
            exact = Annotation.of(exact_by_tile[tile].graph.node[index])
            need, lo_hi = DataType[exact.accumulator_datatype], list(exact.accumulator_range)
        row.update(exact_datatype=need.name, exact_bits=need.bitwidth(), exact_range=lo_hi)
        if "accumulator_datatype" not in row:
            row.update(status="violation: not annotated", slack_bits=None)
        else:
            have = DataType[row["accumulator_datatype"]]
            holds = have.min() <= lo_hi[0] and lo_hi[1] <= have.max()
            target = row.get("target_accumulator_bits")
            if not holds:
                status = f"violation: annotated {have.name}, the exact range {lo_hi} needs {need.name}"
            elif target and need.bitwidth() > target:
                status = f"violation: needs {need.bitwidth()} bits, above the target {target}"
            elif have.bitwidth() > need.bitwidth():
                status = f"slack {have.bitwidth() - need.bitwidth()} bits"
            else:
                status = "OK"
            row.update(status=status, slack_bits=have.bitwidth() - need.bitwidth() if holds else None)
        rows.append(row)
    return rows


def layer_table(rows: list[dict], annotated_column: bool) -> str:
    w = max([16] + [len(r["name"]) + 2 for r in rows])  # long node names (/pool/GlobalAveragePool) widen it
    o = max([8] + [len(r["op"]) + 1 for r in rows])
    i = max([8] + [len(r["input_datatype"]) + 1 for r in rows])
    head = (f"{'layer':<{w}}{'op':<{o}}{'M':>6}{'K':>7}  {'weights':<8}{'inputs':<{i}}"
            + (f"{'annotated':<11}" if annotated_column else "") + f"{'exact':<9}{'range':<24}status")
    lines = [head, "-" * len(head)]
    for r in rows:
        rng = r.get("exact_range") or r.get("accumulator_range")
        exact = r.get("exact_datatype") or r.get("accumulator_datatype")
        lines.append(f"{r['name']:<{w}}{r['op']:<{o}}{r['M']:>6}{r['K']:>7}  {r['weight_datatype']:<8}{r['input_datatype']:<{i}}"
                     + (f"{r.get('accumulator_datatype') or '-':<11}" if annotated_column else "")
                     + f"{exact:<9}{str(rng):<24}{r['status']}")
    return "\n".join(lines)


def write_json(path: Path | None, payload: dict) -> None:
    if path is not None:
        path.write_text(json.dumps(payload, indent=2) + "\n")


def annotate_file(in_path: Path, out_path: Path, accumulator_bits: int = 0, tile_size: int = 0) -> tuple[bool, list[dict]]:
    """Annotate ``in_path`` into ``out_path`` (QONNX or QCDQ, as given) unless a layer needs
    more than ``accumulator_bits``; returns (written, rows)."""
    original = read_graph(in_path)  # carries the annotations into the file's own format
    tidied = tidy_graph(ModelWrapper(copy.deepcopy(original.model)), Path(in_path))
    annotated, rows = annotate_rows(tidied, accumulator_bits, tile_size)
    ok = all(r["status"] == "OK" for r in rows)
    if ok:
        copy_annotations(annotated, original)
        original.save(str(out_path))
    return ok, rows
