"""The zoo's float models ship as trained weights: the same model on every machine."""

import shutil

import pytest
import torch

from axe_deploy import zoo
from axe_deploy.zoo import shipped
from axe_deploy.zoo.digits import FloatMLP, cached_float_model, digits_split


def test_manifest_lists_small_files_with_their_hash_and_the_command_that_made_them():
    entries = shipped.manifest()
    assert {"digits-mlp-seed0.pt", "digits-cnn-seed0.pt"} <= set(entries)
    for name, e in entries.items():
        data = (shipped.WEIGHTS_DIR / name).read_bytes()
        assert shipped.sha256(data) == e["sha256"] and len(data) == e["bytes"] <= 6 * 2**20
        assert name == shipped.file_name(e["model"], e["seed"], e["tag"])
        assert f"python -m axe_deploy.zoo.train_weights {e['model']} --seed {e['seed']}" in e["command"]


def test_builder_loads_the_shipped_weights_and_they_score_as_recorded():
    bundle = zoo.build("digits-mlp", seed=0)
    state = torch.load(shipped.WEIGHTS_DIR / "digits-mlp-seed0.pt", weights_only=True)
    assert all(torch.equal(bundle.float_model.state_dict()[k], v) for k, v in state.items())
    recorded = shipped.manifest()["digits-mlp-seed0.pt"]["float_accuracy"]
    assert bundle.evaluate(bundle.float_model) == pytest.approx(recorded, abs=1e-6)
    assert not list(zoo.cache_dir().glob("digits-mlp-seed0.pt"))  # nothing trained, nothing cached


def test_retrain_and_other_seeds_train(tmp_path, monkeypatch):
    monkeypatch.setenv("AXE_DEPLOY_CACHE", str(tmp_path))
    x, _, y, _ = digits_split()
    shipped_model = FloatMLP()
    assert shipped.load("digits-mlp", 0, shipped_model)
    trained = cached_float_model("digits-mlp", FloatMLP, x[:64], y[:64], seed=0, retrain=True, epochs=1)
    assert not torch.equal(trained.fc1.weight, shipped_model.fc1.weight)
    assert (tmp_path / "digits-mlp-seed0.pt").is_file()
    assert not shipped.load("digits-mlp", 12345, FloatMLP())  # no shipped file: the caller trains


def test_an_altered_or_missing_file_is_refused(tmp_path, monkeypatch):
    folder = tmp_path / "weights"
    shutil.copytree(shipped.WEIGHTS_DIR, folder)
    monkeypatch.setattr(shipped, "WEIGHTS_DIR", folder)
    monkeypatch.setattr(shipped, "MANIFEST", folder / "MANIFEST.json")
    path = folder / "digits-mlp-seed0.pt"
    data = bytearray(path.read_bytes())
    data[-100] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(shipped.ShippedWeightsError, match="SHA-256.*train_weights digits-mlp"):
        shipped.load("digits-mlp", 0, FloatMLP())
    path.unlink()
    with pytest.raises(shipped.ShippedWeightsError, match="missing"):
        shipped.load("digits-mlp", 0, FloatMLP())
    with pytest.raises(shipped.ShippedWeightsError, match="do not fit"):
        shipped.load("digits-cnn", 0, FloatMLP())
