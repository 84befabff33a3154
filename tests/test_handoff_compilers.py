"""FINN and hls4ml run our handoffs: the opt-in ``finn`` and ``hls4ml`` steps on the digits
MLP and CNN builds (slow: finn-plus's venv is built once into the user's axe-deploy cache,
~2-3 min; then ~25 s of FINN and ~30-60 s of g++ per model and hls4ml config). FINN is
finn-plus from PyPI; a FINN source checkout is tested too where $FINN_ROOT names one."""

import importlib.util
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest

from axe_deploy.flow import config
from axe_deploy.flow.compilers import run_hls4ml_build
from axe_deploy.flow.runner import run_flow
from axe_deploy.handoff import finn_run
from axe_deploy.handoff.finn import FINN_STEPS, LAST_VIVADO_FREE_STEP
from axe_deploy.handoff.hls4ml import narrower_config
from axe_deploy.graph.validate import run_onnxruntime

pytestmark = pytest.mark.slow

FLOWS = Path(__file__).parents[1] / "flows"
# Read at import, before conftest points AXE_DEPLOY_CACHE at a folder of this test session:
# FINN's venvs (~2.3 GB, minutes to build) are kept between runs in the user's cache.
USER_CACHE = Path(os.environ.get("AXE_DEPLOY_CACHE") or Path.home() / ".cache" / "axe-deploy")
FINN_ROOT = os.environ.get("FINN_ROOT")
HAVE_HLS4ML = importlib.util.find_spec("hls4ml") is not None
MODELS = {"mlp": "digits_mlp.toml", "cnn": "digits_cnn.toml"}
STEPS = ["build_models", "quantize", "export", "annotate", "validate", "lower", "fold", "handoff", "finn"]


@pytest.fixture(scope="module")
def finn_venv():
    """finn-plus's venv, and no $FINN_ROOT: these tests run FINN as users install it."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("FINN_ROOT", raising=False)
        mp.delenv("AXE_DEPLOY_FINN_VENV", raising=False)
        yield finn_run.build_finn_plus_venv(USER_CACHE / "finn-plus-1.6.1")


@pytest.fixture(scope="module", params=list(MODELS))
def build(request, tmp_path_factory, finn_venv):
    steps = [*STEPS, *(["hls4ml"] if HAVE_HLS4ML else []), "report"]
    out = tmp_path_factory.mktemp("compilers") / request.param
    cfg = config.load(FLOWS / MODELS[request.param], [f"flow.steps={json.dumps(steps)}",
                                                      f'finn.venv="{finn_venv}"'])
    return out, run_flow(cfg, out, progress=lambda s: None)


def _bits(type_name: str) -> int:
    return int(re.search(r"\d+", type_name).group())


def test_finn_runs_the_unmodified_handoff(build):
    out, report = build
    finn = report["finn"]
    assert (finn["finn_route"], finn["finn_version"], finn["finn_commit"]) == ("finn-plus", "1.6.1", None)
    vivado_free = FINN_STEPS[: FINN_STEPS.index(LAST_VIVADO_FREE_STEP) + 1]
    assert finn["steps_completed"] == [s.split(".")[-1] for s in vivado_free] == list(finn["step_seconds"])
    # FINN's accDataType equals the annotation, or is wider only by its padding of a last
    # MVAU without activation to a multiple of 8 bits
    annotated = [l["accumulator_datatype"] for l in report["layers"]]
    assert [m["ours"] for m in finn["mvaus"]] == annotated
    for m in finn["mvaus"]:
        assert m["status"] == "equal" and m["finn"] == m["ours"] or \
            m["status"] == "wider" and "multiple of 8" in m.get("reason", ""), m
    e = finn["execution"]
    assert e["vectors"] == report["metrics"]["test_samples"]
    assert e["argmax_equal_onnxruntime"] == 1.0 and e["max_abs_diff_vs_onnxruntime"] <= 1e-4
    assert report["checks"]["finn_accumulators"]["passed"] and report["checks"]["finn_execution"]["passed"]
    # our folding reached FINN under its node names: FINN's bottleneck is our estimate
    est = finn["estimates"]
    assert est["finn"]["max_cycles"] == report["hardware"]["cycles_per_inference_estimated"]
    assert est["finn"]["luts"] > 0 and est["finn"]["fps"] == pytest.approx(est["axe_deploy"]["fps"])


@pytest.mark.skipif(not HAVE_HLS4ML, reason="hls4ml not installed: pip install -e '.[hls4ml]'")
def test_hls4ml_is_exact_with_the_proven_accum_and_wraps_one_bit_narrower(build, tmp_path):
    out, report = build
    h = report["hls4ml"]
    assert h["test"]["argmax_equal_onnxruntime"] == 1.0 and h["test"]["max_abs_diff_vs_onnxruntime"] <= 1e-4
    assert h["worst_case"]["argmax_equal_onnxruntime"] == 1.0 and h["worst_case"]["max_abs_diff_vs_onnxruntime"] <= 1e-4
    assert report["checks"]["hls4ml_csim"]["passed"]
    # every layer's accum_t in the compiled model is exactly the annotated width
    for entry in report["layers"]:
        layer = h["layers"][entry["name"]]
        compiled = [t for name, t in h["hls4ml_accum_types"].items() if name.endswith(layer["node"])]
        assert len(compiled) == 1 and _bits(compiled[0]) == _bits(entry["accumulator_datatype"]), (entry, compiled)
    # one bit narrower everywhere: the worst-case inputs of the first layer wrap its accumulator
    folder = out / "hls4ml"
    narrow = tmp_path / "narrow.json"
    narrow.write_text(json.dumps(narrower_config(json.loads((folder / "hls4ml_config.json").read_text()))))
    worst = np.load(folder / "worst_case_inputs.npy")
    y, accum = run_hls4ml_build(folder, worst, config=narrow, output_dir=tmp_path / "prj")
    for entry in report["layers"]:
        [narrowed] = [t for name, t in accum.items() if name.endswith(h["layers"][entry["name"]]["node"])]
        assert _bits(narrowed) == _bits(entry["accumulator_datatype"]) - 1
    ort = run_onnxruntime(out / "model.qcdq.onnx", worst)
    wrong = int((np.abs(y.reshape(ort.shape) - ort).max(axis=1) > 1e-3).sum())
    print(f"{out.name}: one bit narrower, {wrong}/{len(worst)} worst-case inputs give wrong outputs")
    assert wrong > 0


def _foreign_qonnx(path: Path, annotate: bool = True) -> Path:
    """A QONNX file not made by axe-deploy or Brevitas: MatMul layers, per-channel INT3 weights,
    a UINT4 input quantizer with a power-of-two scale, foreign node names; annotated by us."""
    from onnx import TensorProto, helper
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.util.basic import qonnx_make_model

    from axe_deploy.graph.annotate import AnnotateAccumulators

    rng = np.random.default_rng(7)
    inits, nodes = {}, []

    def quant(name, src, scale, bits, signed, narrow=0):
        for k, v in {"s": scale, "z": 0.0, "b": float(bits)}.items():
            inits[f"{name}_{k}"] = np.asarray(v, dtype=np.float32)
        nodes.append(helper.make_node("Quant", [src, f"{name}_s", f"{name}_z", f"{name}_b"], [name],
                                      name=f"node_{name}", domain="qonnx.custom_op.general", signed=signed,
                                      narrow=narrow, rounding_mode="ROUND"))

    quant("xq", "inp", 0.125, 4, 0)
    for i, (k, m) in enumerate([(16, 8), (8, 4)]):
        scale = rng.uniform(0.05, 0.2, size=(1, m)).astype(np.float32)
        inits[f"w{i}"] = (rng.integers(-3, 4, size=(k, m)) * scale).astype(np.float32)
        quant(f"wq{i}", f"w{i}", scale, 3, 1, narrow=1)
        src = "xq" if i == 0 else "aq0"
        out = "out" if i == 1 else f"h{i}"
        nodes.append(helper.make_node("MatMul", [src, f"wq{i}"], [out], name=f"node_linear_{i}"))
        if i == 0:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"], name=f"node_relu_{i}"))
            quant(f"aq{i}", f"r{i}", 0.3, 4, 0)
    graph = helper.make_graph(nodes, "foreign", [helper.make_tensor_value_info("inp", TensorProto.FLOAT, [1, 16])],
                              [helper.make_tensor_value_info("out", TensorProto.FLOAT, [1, 4])],
                              initializer=[helper.make_tensor(n, TensorProto.FLOAT, v.shape, v.flatten())
                                           for n, v in inits.items()])
    model = ModelWrapper(qonnx_make_model(graph))
    if annotate:
        model = model.transform(AnnotateAccumulators())
    model.save(str(path))
    return path


def test_foreign_qonnx_through_finn_and_hls4ml(tmp_path, finn_venv):
    """A foreign QONNX file through the flow's onnx route ([model] onnx, [data] inputs) and both
    compilers: FINN and hls4ml equal onnxruntime on the foreign graph's QCDQ twin."""
    _foreign_qonnx(tmp_path / "foreign.onnx", annotate=False)
    np.save(tmp_path / "inputs.npy", np.random.default_rng(1).uniform(0, 2, size=(48, 16)).astype(np.float32))
    steps = ["import_onnx", "annotate", "validate", "lower", "fold", "handoff", "finn",
             *(["hls4ml"] if HAVE_HLS4ML else []), "report"]
    (tmp_path / "flow.toml").write_text(f'[flow]\nname = "foreign"\nsteps = {json.dumps(steps)}\n'
                                        f'[model]\nonnx = "foreign.onnx"\n[data]\ninputs = "inputs.npy"\n'
                                        f'[finn]\nvenv = "{finn_venv}"\n')
    cfg = config.load(tmp_path / "flow.toml")
    report = run_flow(cfg, tmp_path / "build", where=str(tmp_path / "flow.toml"), progress=lambda s: None)
    finn = report["finn"]
    assert len(finn["steps_completed"]) == FINN_STEPS.index(LAST_VIVADO_FREE_STEP) + 1
    assert [m["ours"] for m in finn["mvaus"]] == [l["accumulator_datatype"] for l in report["layers"]]
    assert all(m["status"] == "equal" or "multiple of 8" in m.get("reason", "") for m in finn["mvaus"])
    assert finn["execution"]["reference"] == "onnxruntime" and finn["execution"]["passed"]
    assert finn["execution"]["max_abs_diff_vs_onnxruntime"] <= 1e-4
    if HAVE_HLS4ML:
        assert report["hls4ml"]["test"]["passed"] and report["hls4ml"]["worst_case"]["passed"]
    assert all(c["passed"] for c in report["checks"].values()), report["checks"]


@pytest.mark.skipif(not FINN_ROOT, reason="the checkout route runs where $FINN_ROOT names a FINN checkout")
def test_finn_checkout_route(tmp_path):
    """[finn] root: the checkout's src in the venv its make_venv.sh builds; the report names its commit."""
    venv = os.environ.get("AXE_DEPLOY_FINN_VENV") or finn_run.build_checkout_venv(USER_CACHE / "finn-venv",
                                                                                   Path(FINN_ROOT))
    cfg = config.load(FLOWS / MODELS["mlp"], [f"flow.steps={json.dumps([*STEPS, 'report'])}",
                                             f'finn.root="{FINN_ROOT}"', f'finn.venv="{venv}"'])
    finn = run_flow(cfg, tmp_path / "mlp", progress=lambda s: None)["finn"]
    assert finn["finn_route"] == "checkout" and finn["finn_commit"] and finn["finn_version"] is None
    assert len(finn["steps_completed"]) == FINN_STEPS.index(LAST_VIVADO_FREE_STEP) + 1
    assert all(m["status"] == "equal" or "multiple of 8" in m.get("reason", "") for m in finn["mvaus"])
    assert finn["execution"]["passed"]
