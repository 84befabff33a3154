"""The build state: everything one build knows, in memory, passed from step to step.

Steps read what earlier steps made from here, never from the build folder: the QONNX
graph and its onnxruntime twin, the dataflow graph and its hardware layers, the outputs
every implementation is held to (computed once, on the test inputs), the report being
built. Files are outputs: the graphs are written by :meth:`BuildState.write_models` when
the build ends, the RTL and handoff folders by the steps that make them (the simulators
and compilers read those as tools, not as state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.graph.validate import run_onnxruntime, run_qonnx

QONNX_FILE = "model.qonnx.onnx"
QCDQ_FILE = "model.qcdq.onnx"
DATAFLOW_FILE = "model.dataflow.onnx"


@dataclass
class Reference:
    """The outputs every implementation is held to on the test inputs, and their source:
    onnxruntime on the QCDQ twin, or qonnx's execution of the QONNX graph where no twin
    could be made (a foreign graph)."""

    outputs: np.ndarray
    source: str


@dataclass
class BuildState:
    """What the steps pass along. ``out`` is the (temporary) build folder."""

    out: Path
    flow_dir: Path = Path(".")  # relative paths in the flow file are relative to it
    report: dict = field(default_factory=dict)
    artifacts: dict = field(default_factory=dict)
    # software
    bundle: object | None = None  # axe_deploy.quant.bundle.ModelBundle (a [model] name or module flow)
    ptq: dict = field(default_factory=dict)  # layer name -> ptq.QuantInfo
    unconstrained_bits: dict = field(default_factory=dict)  # layer name -> one-stage width without a target P
    inputs: np.ndarray | None = None  # test data of a [model] onnx flow ([data] inputs, targets)
    targets: np.ndarray | None = None
    qonnx: ModelWrapper | None = None  # the (annotated) QONNX graph
    qcdq: ModelWrapper | None = None  # its onnxruntime twin, None where qonnx cannot make one
    ort_optimize: bool = True  # off for a foreign graph's QCDQ twin (see validate.run_onnxruntime)
    qonnx_context: dict | None = None  # qonnx's execution of the test inputs (every tensor)
    reference: Reference | None = None
    # hardware
    dataflow: ModelWrapper | None = None
    layers: list | None = None  # hw.spec layers, folded after the fold step
    executor: dict | None = None  # integer executor on the test inputs: {"x_int", "expected", "outputs"}
    design: object | None = None  # hw.verilog.RtlDesign
    variants: dict | None = None  # the same network with other accumulator widths: name -> RtlDesign
    worst_case_inputs: np.ndarray | None = None  # float inputs for the compilers' worst-case runs

    def test_data(self) -> tuple[np.ndarray, np.ndarray | None]:
        """(test inputs, targets or None): the bundle's, or a [model] onnx flow's [data]."""
        if self.bundle is not None:
            return self.bundle.test_x.numpy(), self.bundle.test_y.numpy()
        return self.inputs, self.targets

    def qonnx_outputs(self) -> np.ndarray:
        """qonnx's execution of the QONNX graph on the test inputs (once per build)."""
        if self.qonnx_context is None:
            self.qonnx_context = run_qonnx(self.qonnx, self.test_data()[0])
        return self.qonnx_context[self.qonnx.graph.output[0].name]

    def reference_outputs(self) -> Reference:
        """:class:`Reference` on the test inputs, computed on first use and then kept:
        onnxruntime runs once per build on them."""
        if self.reference is None:
            if self.qcdq is not None:
                self.reference = Reference(run_onnxruntime(self.qcdq, self.test_data()[0], self.ort_optimize),
                                           "onnxruntime")
            else:
                self.reference = Reference(self.qonnx_outputs(), "qonnx")
        return self.reference

    def reference_on(self, x: np.ndarray) -> np.ndarray:
        """The reference implementation on other inputs (e.g. worst-case ones)."""
        if self.qcdq is not None:
            return run_onnxruntime(self.qcdq, x, self.ort_optimize)
        return run_qonnx(self.qonnx, x)[self.qonnx.graph.output[0].name]

    def models(self) -> dict[str, ModelWrapper]:
        """The graphs this build made, by file name."""
        found = {QONNX_FILE: self.qonnx, QCDQ_FILE: self.qcdq, DATAFLOW_FILE: self.dataflow}
        return {name: model for name, model in found.items() if model is not None}

    def write_models(self) -> None:
        """Write the graphs into the build folder (once, when the build ends)."""
        for name, model in self.models().items():
            model.save(str(self.out / name))
