"""Flow files: every mistake stops with the file, the key and what is allowed, before any output."""

from pathlib import Path

import pytest
from click.testing import CliRunner

from axe_deploy.flow import config
from axe_deploy.cli.main import main

DEFAULT = Path(__file__).parents[1] / "flows" / "digits_mlp.toml"


def write(tmp_path, text):
    p = tmp_path / "flow.toml"
    p.write_text(text)
    return p


def test_default_flow_loads_with_documented_values():
    cfg = config.load(DEFAULT)
    assert cfg.model.name == "digits-mlp"
    assert (cfg.quant.weight_bits, cfg.quant.act_bits, cfg.quant.input_bits) == (4, 4, 8)


@pytest.mark.parametrize("text, expected", [
    ("[quant]\nweigth_bits = 4\n", ["flow.toml", "quant.weigth_bits", "did you mean 'weight_bits'", "act_bits"]),
    ("[quantize]\nweight_bits = 4\n", ["unknown key 'quantize'", "quant"]),
    ("[quant]\nweight_bits = \"four\"\n", ["quant.weight_bits", "expects integer"]),
    ("[quant]\nweight_bits = true\n", ["quant.weight_bits", "expects integer"]),
    ("[quant]\nalgorithm = \"gptq\"\n", ["quant.algorithm", "allowed values: rtn, gpfq, optq, spfq"]),
    ("[quant]\nweight_bits = 1\n", ["quant.weight_bits", ">= 2"]),
    ("[quant.layers.\"fc*\"]\nbits = 3\n", ['quant.layers."fc*".bits', "weight_bits"]),
    ("[quant]\nlayers = {fc1 = 3}\n", ['quant.layers."fc1"', "table of per-layer settings"]),
    ("[quant\n", ["not valid TOML"]),
])
def test_bad_flow_files_name_file_and_key(tmp_path, text, expected):
    with pytest.raises(config.FlowConfigError) as e:
        config.load(write(tmp_path, text))
    for fragment in expected:
        assert fragment in str(e.value)


def test_overrides_are_typed_and_checked():
    cfg = config.load(DEFAULT, ["quant.weight_bits=3", "quant.algorithm=gpfq", 'quant.layers."fc3".weight_bits=8'])
    assert cfg.quant.weight_bits == 3 and cfg.quant.algorithm == "gpfq"
    assert cfg.quant.layers["fc3"] == {"accumulator_bits": 10, "weight_bits": 8}  # merged into the file's
    with pytest.raises(config.FlowConfigError, match="quant.weight_bits"):
        config.load(DEFAULT, ["quant.weight_bits=abc"])
    with pytest.raises(config.FlowConfigError, match="section.key=value"):
        config.load(DEFAULT, ["quant.weight_bits"])


def test_missing_file():
    with pytest.raises(config.FlowConfigError, match="flow file not found"):
        config.load("no/such/flow.toml")


@pytest.mark.parametrize("args, expected", [
    (["--set", "model.name=resnet-9000"], ["unknown model 'resnet-9000'", "digits-mlp"]),
    (["--set", 'flow.steps=["build_models", "synthesise"]'], ["unknown step", "synthesise", "build_models"]),
    (["--set", "quant.act_bits=zero"], ["quant.act_bits"]),
])
def test_cli_errors_write_nothing(tmp_path, args, expected):
    out = tmp_path / "build"
    result = CliRunner().invoke(main, ["run", str(DEFAULT), "--out", str(out), *args])
    assert result.exit_code != 0
    for fragment in expected:
        assert fragment in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
