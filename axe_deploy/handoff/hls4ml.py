"""What hls4ml 1.3 consumes, written next to our own build.

``hls4ml/`` holds ``model.onnx`` (the QONNX graph with the weight scales folded out of the
layers and cleaned as hls4ml's QONNX docs say, :mod:`axe_deploy.handoff.hls4ml_graph`; it
takes the same float inputs as ``model.qcdq.onnx``), ``hls4ml_config.json`` (the
``hls_config`` dict: every annotated layer's ``accum_t`` set to exactly the proven width),
``worst_case_inputs.npy`` (inputs that drive every output channel of the first layer to
the ends of its proven range) and ``build.py`` (convert, compile the C model with g++,
predict; ``--synth`` runs the HLS synthesis where Vitis HLS is installed).

The accumulator type: a layer's inputs are integers times a scale s. When s is a power of
two, hls4ml keeps it in the fixed-point type (f = -log2 s fractional bits), otherwise it
moves it below the layer and the inputs are integers (f = 0). The integer dot product
therefore sits in ``fixed<P, P - f>`` with P the annotated width: exactly P bits, no slack.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from qonnx.core.datatype import DataType
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes

from axe_deploy.core import accumulator
from axe_deploy.graph.annotation import Annotation
from axe_deploy.graph.layers import COMPUTE_OPS, GraphError, input_quant_node, quant_layers
from axe_deploy.handoff.hls4ml_graph import hls4ml_graph

# The scales and biases after each layer are real numbers (weight scales near 1e-4): hls4ml's
# default fixed<16,6> is far too coarse for them, so everything not set per layer is wide.
DEFAULT_PRECISION = "fixed<64,24>"
BACKEND = "Vitis"

BUILD_PY = '''"""Convert this hls4ml handoff, compile its C model and run it (hls4ml 1.3, g++):

    python build.py                           # convert + compile into hls4ml_prj/
    python build.py --predict x.npy y.npy     # and the C simulation on float inputs x.npy
    python build.py --synth                   # and the HLS synthesis (needs Vitis HLS)
    python build.py --config other.json --output-dir prj2   # another hls_config
    python build.py --quick-compile ...       # g++ -O0: the same C model, compiled in half the time
"""
import argparse
import json
from pathlib import Path

import numpy as np
import hls4ml
from qonnx.core.modelwrapper import ModelWrapper
from qonnx.transformation.infer_shapes import InferShapes

here = Path(__file__).resolve().parent
parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--config", default=str(here / "hls4ml_config.json"))
parser.add_argument("--output-dir", default=str(here / "hls4ml_prj"))
parser.add_argument("--predict", nargs=2, metavar=("X.npy", "Y.npy"))
parser.add_argument("--synth", action="store_true")
parser.add_argument("--quick-compile", action="store_true")
args = parser.parse_args()

config = json.loads(Path(args.config).read_text())
model = hls4ml.converters.convert_from_onnx_model(
    ModelWrapper(str(here / "model.onnx")), output_dir=args.output_dir, backend="%(backend)s",
    part="%(part)s", clock_period=%(clock_ns)r, hls_config=config)
if args.quick_compile:  # hls4ml's build_lib.sh compiles with -O3; -O0 builds the same model faster
    model.write()
    script = Path(args.output_dir) / "build_lib.sh"
    script.write_text(script.read_text().replace("-O3", "-O0"))
    model._compile()
else:
    model.compile()
accum = {layer.name: str(layer.types["accum_t"].precision) for layer in model.get_layers() if "accum_t" in layer.types}
Path(args.output_dir, "accum_types.json").write_text(json.dumps(accum, indent=2) + "\\n")
if args.predict:
    x = np.load(args.predict[0]).astype(np.float32)
    np.save(args.predict[1], np.asarray(model.predict(np.ascontiguousarray(x))).reshape(len(x), -1))
if args.synth:
    model.build(csim=False, synth=True, export=False)
'''


def _fraction_bits(model: ModelWrapper, node) -> int:
    """Fractional bits hls4ml gives the layer's integer inputs (see the module docstring)."""
    quant = input_quant_node(model, node)
    scale = model.get_initializer(quant.input[1]) if quant is not None else None
    if scale is None or np.asarray(scale).size != 1:
        return 0
    s = float(np.asarray(scale).reshape(-1)[0])
    mantissa, exp = math.frexp(s)
    return 1 - exp if mantissa == 0.5 else 0


def _fixed(dt: DataType, frac: int = 0) -> str:
    bits = dt.bitwidth()
    return f"{'fixed' if dt.signed() else 'ufixed'}<{bits},{bits - frac}>"


def hls_config(model: ModelWrapper) -> tuple[dict, dict, list[str]]:
    """``hls_config`` for ``convert_from_onnx_model``: per annotated layer (by ONNX node name)
    accum = result = bias = the proven width, weight = the integer weight type; and per
    layer name the node name, annotated datatype and accum type (for the report), and notes.
    A multi-stage layer (T > 0) gets its outer width: hls4ml accumulates the whole row in one."""
    layers, record, notes = {}, {}, []
    for node in model.graph.node:
        annotation = Annotation.of(node) if node.op_type in COMPUTE_OPS else None
        if not annotation:
            continue
        dt, _, note = annotation.one_accumulator("hls4ml")
        notes += [note] if note else []
        acc = _fixed(DataType[dt], _fraction_bits(model, node))
        layers[node.name] = {"Precision": {"accum": acc, "result": acc, "bias": acc,
                                           "weight": _fixed(DataType[annotation.weight_datatype])}}
        record[annotation.layer_name] = {"node": node.name, "accumulator_datatype": dt, "accum_t": acc}
    if not layers:
        raise GraphError("no annotated layer in the graph: run the annotate step before the hls4ml handoff")
    return ({"Model": {"Precision": {"default": DEFAULT_PRECISION}, "ReuseFactor": 1, "Strategy": "Latency"},
             "LayerName": layers}, record, notes)


def narrower_config(config: dict, bits: int = 1) -> dict:
    """The same config with every layer's accumulator ``bits`` narrower (for the wrap test)."""
    import re

    out = json.loads(json.dumps(config))
    for layer in out["LayerName"].values():
        p = layer["Precision"]
        w, i = map(int, re.fullmatch(r"u?fixed<(\d+),(-?\d+)>", p["accum"]).groups())
        p["accum"] = p["result"] = p["accum"].split("<")[0] + f"<{w - bits},{i - bits}>"
    return out


def worst_case_inputs(model: ModelWrapper) -> np.ndarray:
    """Float inputs [2M, *input shape] that drive each of the first layer's M output channels
    to the top (first M) and the bottom (last M) of its exact integer range. (Deeper layers'
    worst cases are in general not reachable from the network input.)"""
    model = model.transform(InferShapes())
    layer = quant_layers(model)[0]
    node = model.graph.node[layer.node_index]
    graph_in = model.graph.input[0].name
    if input_quant_node(model, node).input[0] != graph_in:
        raise GraphError(f"first layer '{layer.layer_name}' does not read the quantized graph input directly")
    x_min, x_max = accumulator.input_bounds(layer.input.bits, layer.input.signed, layer.input.narrow)
    hi, lo = accumulator.worst_case_inputs(layer.q, x_min, x_max)
    rows = np.concatenate([hi, lo])
    shape = [d if d else 1 for d in model.get_tensor_shape(graph_in)][1:]
    if node.op_type == "Conv":
        rows = _conv_images(model, node, rows, shape, neutral=min(max(0, x_min), x_max))
    scale = float(layer.input.scale.reshape(-1)[0])
    return (rows.reshape(len(rows), *shape) * scale).astype(np.float32)


def _conv_images(model, node, windows, shape, neutral):
    """Images with one window (C, k, k) fully inside, at the first output pixel that has one."""
    from axe_deploy.dataflow.conv_geometry import conv_geometry

    g = conv_geometry(model, node)
    C, H, W = shape
    k, s, p = g.K, g.stride, g.pad
    o = -(-p // s)  # first output row/column whose window starts inside the image
    r0 = o * s - p
    if r0 + k > min(H, W):
        raise GraphError(f"Conv node '{node.name}': no {k}x{k} window lies inside the {H}x{W} input")
    images = np.full((len(windows), C, H, W), neutral, dtype=np.int64)
    images[:, :, r0:r0 + k, r0:r0 + k] = windows.reshape(len(windows), C, k, k)
    return images


def write_handoff(folder: Path, qonnx: ModelWrapper, worst: np.ndarray | None, why_no_worst: str | None = None,
                  *, part: str, clock_mhz: float) -> dict:
    """Write the hls4ml handoff of the annotated graph ``qonnx`` (not changed) into ``folder``,
    with the float inputs ``worst`` (:func:`worst_case_inputs`; None: ``why_no_worst``);
    returns what the report records of it.

    A graph this handoff cannot rewrite (an op or structure it does not know) writes nothing
    and is recorded as ``{"skipped": reason}``: the FINN handoff and our own build go on.
    """
    try:
        model = hls4ml_graph(qonnx)
        config, layers, notes = hls_config(model)
    except (GraphError, ValueError, KeyError) as e:
        return {"skipped": f"hls4ml handoff not written: {e}"}
    if worst is None:
        notes = [*notes, f"no worst_case_inputs.npy: {why_no_worst}"]
    folder.mkdir(parents=True, exist_ok=True)
    model.save(str(folder / "model.onnx"))
    (folder / "hls4ml_config.json").write_text(json.dumps(config, indent=2) + "\n")
    files = ["build.py", "hls4ml_config.json", "model.onnx"]
    if worst is not None:
        np.save(folder / "worst_case_inputs.npy", worst)
        files.append("worst_case_inputs.npy")
    (folder / "build.py").write_text(BUILD_PY % {"backend": BACKEND, "part": part, "clock_ns": 1000.0 / clock_mhz})
    return {"files": files, "layers": layers, "notes": notes}
