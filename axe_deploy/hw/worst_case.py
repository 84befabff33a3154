"""Worst-case RTL per MVAU: the annotated accumulator width shown sufficient, and one bit
fewer shown insufficient, in simulation.

Test images rarely reach the accumulator's range (the digits data needs 12/13/12 bits where
16/15/13 are annotated), so a bit-exact run on them says little about the width. Here every
MVAU runs on its own on vectors built from its integer weights that drive each row (each
tile of T inputs, for multi-stage accumulation) to its exact minimum and maximum
(``worst_case_vectors``). The layer is built with its thresholds off, so its output is the
accumulator register itself: the outputs must equal the exact dot products, their range the
annotated ``[lo, hi]`` endpoints, with 0 overflows; the same layer one bit narrower must
overflow (its shadow counter counts and its outputs wrap). A tiled layer's output is its
outer register (annotated outer range); its inner register is shown sufficient by 0 inner
overflows and insufficient one bit narrower, on the vectors that reach the extreme tiles. All layers and their narrower
twins share one testbench: one simulator build.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.accumulator import input_bounds, row_ranges, split_tiles, tile_ranges, worst_case_inputs
from .sim import simulate_many
from .spec import MVAULayer
from .verilog import write_rtl


@dataclass
class WorstCaseVectors:
    """Input vectors [n, K] and the exact extremes they reach: ``lo``/``hi`` [M, n_tiles]
    per row and tile (one tile, the whole row, for ``tile_size`` 0)."""

    vectors: np.ndarray
    tile_size: int
    lo: np.ndarray
    hi: np.ndarray


def partial_sums(q: np.ndarray, x: np.ndarray, tile_size: int = 0) -> np.ndarray:
    """Exact int64 dot products [n, M, n_tiles] of each vector of ``x`` [n, K] with each row
    of ``q`` [M, K], per consecutive tile of ``tile_size`` inputs (0: the whole row)."""
    q, x = np.asarray(q, dtype=np.int64), np.asarray(x, dtype=np.int64)
    K = q.shape[1]
    T = tile_size if 0 < tile_size < K else K
    return np.einsum("ntk,mtk->nmt", split_tiles(x, T), split_tiles(q, T))


def worst_case_vectors(q: np.ndarray, x_min: int, x_max: int, tile_size: int = 0) -> WorstCaseVectors:
    """Vectors that drive every row of ``q`` (and every tile of it) to its exact minimum and
    maximum. The worst case is chosen per input element (x_max where the weight is positive,
    else x_min, and the mirror), so one vector per row and direction reaches the extreme of
    every tile of that row at once; duplicates (rows of the same sign pattern) are dropped."""
    q = np.asarray(q, dtype=np.int64)
    x_hi, x_lo = worst_case_inputs(q, x_min, x_max)
    vectors = np.unique(np.concatenate([x_hi, x_lo]), axis=0)
    if 0 < tile_size < q.shape[1]:
        lo, hi = tile_ranges(q, x_min, x_max, tile_size)
    else:
        tile_size = 0
        lo, hi = (r[:, None] for r in row_ranges(q, x_min, x_max))
    return WorstCaseVectors(vectors, tile_size, lo, hi)


@dataclass
class LayerWorstCase:
    """One MVAU's worst-case run: what was annotated, what the register showed."""

    name: str
    accumulator_bits: int
    annotated_range: tuple[int, int]
    observed_range: tuple[int, int]
    vectors: int
    wrong_outputs: int            # outputs != exact dot product, at the annotated width
    overflows: int
    narrower_bits: int | None     # one bit fewer (None for a 1-bit accumulator)
    narrower_overflows: int | None
    narrower_wrong_outputs: int | None
    tile_size: int = 0
    outer_bits: int = 0

    @property
    def passed(self) -> bool:
        narrower_fails = self.narrower_bits is None or (self.narrower_overflows > 0
                                                        and self.narrower_wrong_outputs > 0)
        return (self.observed_range == self.annotated_range and self.wrong_outputs == 0
                and self.overflows == 0 and narrower_fails)

    @property
    def detail(self) -> str:
        lo, hi = self.observed_range
        tiles = (f" (tiles of {self.tile_size} in INT{self.accumulator_bits}, their sums in the outer "
                 f"register of INT{self.outer_bits})" if self.tile_size else "")
        text = (f"{self.name}{tiles}: register range [{lo}, {hi}] "
                f"{'=' if self.observed_range == self.annotated_range else '!='} annotated "
                f"{list(self.annotated_range)} at {self.accumulator_bits} bits, "
                f"{self.wrong_outputs}/{self.vectors} vectors wrong, {self.overflows} overflows")
        if self.narrower_bits is not None:
            text += (f"; at {self.narrower_bits} bits {self.narrower_overflows} overflows, "
                     f"{self.narrower_wrong_outputs} wrong")
        return text

    def as_dict(self) -> dict:
        return {**dataclasses.asdict(self), "annotated_range": list(self.annotated_range),
                "observed_range": list(self.observed_range), "passed": self.passed}


@dataclass
class WorstCaseRun:
    layers: list[LayerWorstCase]
    simulator: str
    build_s: float
    run_s: float
    cycles: int


def run_worst_case(layers: list, folder, annotated_ranges: dict[str, tuple[int, int]],
                   simulator: str = "auto") -> WorstCaseRun:
    """Simulate every MVAU of ``layers`` (as folded) on its worst-case vectors, and again
    one bit narrower, in one testbench written into ``folder``. ``annotated_ranges``:
    {layer name: (lo, hi)} from the graph annotation. The inputs span each layer's input
    range: its data type's, one short of -2^(N-1) for a narrow signed quantizer
    (``input_narrow``, from the graph's inputNarrow), as the annotation assumed."""
    folder = Path(folder)
    mvaus = [layer for layer in layers if isinstance(layer, MVAULayer)]
    designs, inputs, plan = [], [], []
    for i, layer in enumerate(mvaus):
        # thresholds off: the output is the accumulator register; one vector per image
        raw = dataclasses.replace(layer, thresholds=None, num_vectors=1)
        wc = worst_case_vectors(layer.weights, *input_bounds(layer.input_bits, layer.input_signed,
                                                             layer.input_narrow))
        exact = partial_sums(layer.weights, wc.vectors)[:, :, 0]
        tile_sums = partial_sums(layer.weights, wc.vectors, layer.tile_size)  # what the (inner) register holds
        designs.append(write_rtl([raw], folder, top=f"wc{i}"))
        inputs.append(wc.vectors)
        picks = None  # the vectors the one-bit-narrower design runs
        if layer.acc_bits > 1:
            # the vectors that reach the layer's lowest and highest (tile) sums
            picks = np.unique([tile_sums.min(axis=(1, 2)).argmin(), tile_sums.max(axis=(1, 2)).argmax()])
            designs.append(write_rtl([dataclasses.replace(raw, acc_bits=layer.acc_bits - 1)], folder,
                                     top=f"wc{i}_narrow"))
            inputs.append(wc.vectors[picks])
        plan.append((layer, exact, picks))
    runs = simulate_many(designs, inputs, simulator=simulator)
    results, out = iter(runs), []
    for layer, exact, picks in plan:
        res = next(results)
        entry = dict(name=layer.name, accumulator_bits=layer.acc_bits,
                     annotated_range=tuple(int(v) for v in annotated_ranges[layer.name]),
                     observed_range=(int(res.outputs.min(initial=0)), int(res.outputs.max(initial=0))),
                     vectors=len(exact), wrong_outputs=_wrong(res.outputs, exact),
                     overflows=res.overflows[layer.name] + res.outer_overflows[layer.name],
                     narrower_bits=None, narrower_overflows=None, narrower_wrong_outputs=None,
                     tile_size=layer.tile_size, outer_bits=layer.outer_bits)
        if picks is not None:
            res = next(results)
            entry.update(narrower_bits=layer.acc_bits - 1, narrower_overflows=res.overflows[layer.name],
                         narrower_wrong_outputs=_wrong(res.outputs, exact[picks]))
        out.append(LayerWorstCase(**entry))
    cycles = max(int(r.done_cycles.max(initial=0)) for r in runs)
    return WorstCaseRun(out, res.simulator, res.build_s, res.run_s, cycles)


def _wrong(outputs: np.ndarray, want: np.ndarray) -> int:
    """Vectors whose outputs differ from ``want`` (all of them when some are missing)."""
    if outputs.shape != want.shape:
        return len(want)
    return int((~(outputs == want).all(axis=1)).sum())
