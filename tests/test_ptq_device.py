"""``quant.device``: checked like every flow key, "cuda" without a GPU is a one-line error
before anything is written, "auto" picks what torch sees, and the core on a GPU matches
the CPU (run where a GPU is present)."""

import runpy
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from axe_deploy.flow import config
from axe_deploy.cli.main import DEFAULT_FLOW, main
from axe_deploy.ptq import quantize_layer, resolve_device

ROOT = Path(__file__).resolve().parents[1]
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA GPU")


def test_device_key_is_checked_like_every_key():
    assert config.load(DEFAULT_FLOW).quant.device == "auto"
    assert config.load(DEFAULT_FLOW, ["quant.device=cpu"]).quant.device == "cpu"
    with pytest.raises(config.FlowConfigError, match=r"'quant.device' = 'gpu' is not allowed; allowed values: auto, cpu, cuda"):
        config.load(DEFAULT_FLOW, ["quant.device=gpu"])
    with pytest.raises(config.FlowConfigError, match="'quant.device' expects string"):
        config.load(DEFAULT_FLOW, ["quant.device=0"])


@no_gpu
def test_auto_is_the_cpu_and_cuda_is_an_error_without_a_gpu():
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match=r'quant.device = "cuda" but torch .* sees no CUDA GPU; use quant.device = "auto" or "cpu"'):
        resolve_device("cuda")


@no_gpu
def test_cli_cuda_without_a_gpu_is_one_line_and_writes_nothing(tmp_path):
    out = tmp_path / "build"
    res = CliRunner().invoke(main, ["run", "--out", str(out), "--set", "quant.device=cuda"])
    assert res.exit_code != 0
    assert "quant.device = \"cuda\"" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1
    assert not out.exists() and list(tmp_path.iterdir()) == []
    res = CliRunner().invoke(main, ["sweep", "--out", str(out), "--set", "quant.device=cuda", "--methods", "rtn"])
    assert res.exit_code != 0 and "sees no CUDA GPU" in res.output and not out.exists()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("algorithm", ["rtn", "gpfq", "optq", "spfq"])
def test_gpu_matches_cpu(algorithm):
    g = torch.Generator().manual_seed(0)
    W, X = torch.randn(32, 96, generator=g), torch.rand(400, 96, generator=g) * 3
    kw = dict(weight_bits=4, input_bits=2, input_signed=False, algorithm=algorithm, accumulator_bits=12,
              tile_size=32, seed=1, dtype=torch.float64)
    q_cpu, info_cpu = quantize_layer(W, W.abs().amax(1) / 7, X, X.round(), device="cpu", **kw)
    q_gpu, info_gpu = quantize_layer(W, W.abs().amax(1) / 7, X, X.round(), device="cuda", **kw)
    assert q_gpu.device.type == "cpu" and info_gpu.exact_bits <= 12
    # float64 statistics: the walks agree up to a rare tie decided differently by rounding
    assert (q_cpu != q_gpu).float().mean() < 0.01


@no_gpu
def test_gpu_benchmark_says_why_it_skips(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["ptq_gpu.py", "--quick"])
    with pytest.raises(SystemExit) as done:
        runpy.run_path(str(ROOT / "benchmarks" / "ptq_gpu.py"), run_name="__main__")
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("ptq_gpu: skipped,") and "sees no CUDA GPU" in out


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_lm_blockwise_ptq_and_perplexity_on_gpu_match_cpu():
    pytest.importorskip("transformers")
    import copy

    from axe_deploy import zoo
    from axe_deploy.quant.blockwise import quantize_blockwise
    bundle = zoo.build("llama-tiny", calibration_samples=256)
    quant = {"algorithm": "optq", "weight_bits": 4, "accumulator_bits": 12, "tile_size": 16}
    seen = {}
    for device in ("cpu", "cuda"):
        model = copy.deepcopy(bundle.quant_model)
        infos = quantize_blockwise(bundle.float_model, model, bundle.calib_x, dict(quant, device=device),
                                   progress=False)
        bundle.device = device
        seen[device] = (bundle.evaluate(model), max(i.exact_bits for i in infos.values()))
        assert {p.device.type for p in model.parameters()} == {"cpu"}  # back where it was
    assert seen["cuda"][1] <= 12
    assert seen["cuda"][0] == pytest.approx(seen["cpu"][0], rel=0.01)
