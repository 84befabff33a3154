"""The accumulator annotation of one compute node: the only reader and writer of the
``axe_deploy.*`` node metadata (the contract between stages, docs/reference.md).

An :class:`Annotation` is read from a node (:meth:`Annotation.of`), written to one
(:meth:`Annotation.write`), and turned into a report/table row (:meth:`Annotation.row`).
The key names are public: other tools read them from the ONNX file. Besides dot
products (Gemm/MatMul/Conv, ``accumulator_kind`` absent, read as ``dot``) an annotation can
describe an integer sum (:mod:`axe_deploy.graph.sums`): ``accumulator_kind`` ``add`` (a
residual Add; ``input_datatype`` lists both inputs, ``"UINT4,UINT4"``) or ``window_sum``
(an average pool's window), with ``terms`` the number of integers summed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from onnx import StringStringEntryProto

from axe_deploy.graph.layers import GraphError

PREFIX = "axe_deploy."
KEYS = ("accumulator_datatype", "tile_size", "accumulator_range", "input_datatype", "weight_datatype",
        "layer_name", "datatype_bound_bits", "outer_accumulator_datatype", "outer_accumulator_range",
        "target_accumulator_bits", "accumulator_kind", "terms")
KINDS = ("dot", "add", "window_sum")


def _kind(text: str) -> str:
    if text not in KINDS:
        raise ValueError(f"accumulator_kind {text!r} is not one of {', '.join(KINDS)}")
    return text


def _range(text: str) -> tuple[int, int]:
    lo, hi = json.loads(text)
    return int(lo), int(hi)


@dataclass(frozen=True)
class Annotation:
    """What a compute node's accumulator is: the DataType of the (inner, for T > 0)
    accumulator and its exact worst-case range, the tiling, the input and weight types, the
    data-type bound, and the outer accumulator of a tiled layer and the target P if any."""

    layer_name: str
    accumulator_datatype: str
    accumulator_range: tuple[int, int]
    tile_size: int
    input_datatype: str
    weight_datatype: str
    datatype_bound_bits: int
    outer_accumulator_datatype: str | None = None
    outer_accumulator_range: tuple[int, int] | None = None
    target_accumulator_bits: int | None = None
    accumulator_kind: str = "dot"
    terms: int | None = None  # add / window_sum: how many integers the sum adds

    @classmethod
    def of(cls, node) -> Annotation | None:
        """The node's annotation, None if it has none; a malformed one is a GraphError."""
        props = {p.key[len(PREFIX):]: p.value for p in node.metadata_props if p.key.startswith(PREFIX)}
        if not props:
            return None
        try:
            tiled = int(props.get("tile_size", "0")) > 0
            return cls(
                layer_name=props.get("layer_name", node.name),
                accumulator_datatype=props["accumulator_datatype"],
                accumulator_range=_range(props["accumulator_range"]),
                tile_size=int(props.get("tile_size", "0")),
                input_datatype=props.get("input_datatype", ""),
                weight_datatype=props.get("weight_datatype", ""),
                datatype_bound_bits=int(props.get("datatype_bound_bits", "0")),
                outer_accumulator_datatype=props["outer_accumulator_datatype"] if tiled else None,
                outer_accumulator_range=_range(props["outer_accumulator_range"]) if tiled else None,
                target_accumulator_bits=int(props["target_accumulator_bits"])
                if props.get("target_accumulator_bits") else None,
                accumulator_kind=_kind(props.get("accumulator_kind", "dot")),
                terms=int(props["terms"]) if props.get("terms") else None)
        except (KeyError, ValueError, TypeError) as e:
            raise GraphError(f"{node.op_type} node '{node.name}': malformed accumulator annotation {props} "
                             f"({type(e).__name__}: {e}); run the annotate step again") from None

    @classmethod
    def required(cls, node, layer_name: str) -> Annotation:
        """The node's annotation; a GraphError that names the node if it has none."""
        found = cls.of(node)
        if found is None:
            raise GraphError(f"{node.op_type} node '{node.name}' ({layer_name}) has no accumulator annotation; "
                             f"run the annotate step first")
        return found

    def props(self) -> dict[str, str]:
        """The metadata values by key (without the prefix), as written to a node."""
        props = {"accumulator_datatype": self.accumulator_datatype, "tile_size": str(self.tile_size),
                 "accumulator_range": json.dumps(list(self.accumulator_range)),
                 "input_datatype": self.input_datatype, "weight_datatype": self.weight_datatype,
                 "layer_name": self.layer_name, "datatype_bound_bits": str(self.datatype_bound_bits)}
        if self.tile_size:
            props["outer_accumulator_datatype"] = self.outer_accumulator_datatype
            props["outer_accumulator_range"] = json.dumps(list(self.outer_accumulator_range))
        if self.target_accumulator_bits:
            props["target_accumulator_bits"] = str(self.target_accumulator_bits)
        if self.accumulator_kind != "dot":
            props["accumulator_kind"] = self.accumulator_kind
            props["terms"] = str(self.terms)
        return props

    def write(self, node) -> None:
        """Replace the node's ``axe_deploy.*`` metadata with this annotation (other metadata stays)."""
        keep = [p for p in node.metadata_props if not p.key.startswith(PREFIX)]
        del node.metadata_props[:]
        node.metadata_props.extend(keep)
        for key, value in self.props().items():
            node.metadata_props.append(StringStringEntryProto(key=PREFIX + key, value=value))

    @property
    def whole_datatype(self) -> str:
        """The DataType that holds the whole dot product: the outer one of a tiled layer."""
        return self.outer_accumulator_datatype if self.tile_size else self.accumulator_datatype

    @property
    def whole_range(self) -> tuple[int, int]:
        return self.outer_accumulator_range if self.tile_size else self.accumulator_range

    def one_accumulator(self, compiler: str) -> tuple[str, tuple[int, int], str | None]:
        """What a compiler with one accumulator per layer (FINN, hls4ml) must hold: the
        DataType and range of the whole dot product, with a note for a tiled layer (else None)."""
        note = None
        if self.tile_size:
            note = (f"layer '{self.layer_name}' accumulates in tiles of T={self.tile_size} "
                    f"({self.accumulator_datatype} each); {compiler} has one accumulator per layer, so it gets "
                    f"the outer width {self.outer_accumulator_datatype} and the tiling is not used")
        return self.whole_datatype, self.whole_range, note

    def row(self) -> dict:
        """The annotation as a report/table row (the keys of ``report.json``'s layers)."""
        return {"tile_size": self.tile_size, "accumulator_datatype": self.accumulator_datatype,
                "accumulator_range": list(self.accumulator_range), "datatype_bound_bits": self.datatype_bound_bits,
                "outer_accumulator_datatype": self.outer_accumulator_datatype,
                "target_accumulator_bits": self.target_accumulator_bits,
                **({"accumulator_kind": self.accumulator_kind, "terms": self.terms}
                   if self.accumulator_kind != "dot" else {})}
