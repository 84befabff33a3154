"""Flow files: a TOML schema with defaults, checked before anything runs, read into a
typed :class:`FlowConfig`.

A flow file has one table per stage (``[flow]``, ``[model]``, ``[quant]``, ...). Every key
is declared here once (:data:`SCHEMA`), with its type, default and allowed values; an
unknown key, a wrong type or a value outside the allowed set stops with the file, the key
and what is allowed. ``--set section.key=value`` overrides are parsed as TOML values and
checked the same way. The checked file is a :class:`FlowConfig`: one dataclass per table,
with a typed field per key (``cfg.quant.weight_bits``), made from the same declarations.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from axe_deploy.core.layer_glob import layer_values
from axe_deploy.ptq import ALGORITHMS


class FlowConfigError(ValueError):
    """A flow file or override that cannot be run; the message names the file and key."""


@dataclass(frozen=True)
class Key:
    type: type | tuple[type, ...]
    default: Any
    choices: tuple | None = None
    help: str = ""
    minimum: int | None = None
    maximum: int | None = None


# Bit widths the Brevitas quantizers and the PTQ core take; Brevitas's QCDQ export (the
# `export` step) takes only 2..8 (it refuses 9 and more, and 1-bit "binary" quantizers):
# flow.check_flow narrows to EXPORT_BITS when the flow exports.
MAX_BITS = 16
EXPORT_BITS = (2, 8)
BIT_KEYS = ("weight_bits", "act_bits", "input_bits")

# Per-layer settings (``[quant.layers."<glob>"]``): a subset of [quant] plus ``skip``.
LAYER_KEYS = {
    "weight_bits": Key(int, None, help="weight bits for matching layers", minimum=2, maximum=MAX_BITS),
    "accumulator_bits": Key(int, None, help="target accumulator bits P for matching layers", minimum=2),
    "tile_size": Key(int, None, help="tile size T for matching layers (0: one stage)", minimum=0),
    "algorithm": Key(str, None, ALGORITHMS, "PTQ algorithm for matching layers"),
    "skip": Key(bool, False, help="leave matching layers at round-to-nearest, unconstrained"),
}

SCHEMA: dict[str, dict[str, Key]] = {
    "flow": {
        "name": Key(str, "flow", help="name of the flow, copied into report.json"),
        "steps": Key(list, None, help="step names to run, in order (default: the standard flow)"),
        "seed": Key(int, 0, help="seed for training, calibration sampling and stochastic rounding", minimum=0),
    },
    "model": {
        "name": Key(str, "digits-mlp", help="model name in the zoo"),
        "retrain": Key(bool, False, help="ignore the cached float model and train again"),
        "module": Key(str, "", help='your own model: "package.module:function" (importable from the flow '
                                    "file's folder or sys.path) returning an axe_deploy.ModelBundle"),
        "onnx": Key(str, "", help="a QONNX file (path relative to the flow file) to annotate, validate "
                                  "and build into hardware; needs data.inputs"),
    },
    "data": {
        "inputs": Key(str, "", help="test inputs of a [model] onnx flow: a .npy file (relative to the flow file)"),
        "targets": Key(str, "", help="optional class labels for data.inputs: a .npy file"),
    },
    "quant": {
        "algorithm": Key(str, "rtn", ALGORITHMS, "layer-wise PTQ algorithm"),
        "weight_bits": Key(int, 4, help="signed per-channel weight bits", minimum=2, maximum=MAX_BITS),
        "act_bits": Key(int, 4, help="unsigned activation bits after ReLU", minimum=2, maximum=MAX_BITS),
        "input_bits": Key(int, 8, help="unsigned bits of the input quantizer", minimum=2, maximum=MAX_BITS),
        "accumulator_bits": Key(int, 0, help="target accumulator bits P (0: unconstrained)", minimum=0),
        "tile_size": Key(int, 0, help="multi-stage tile size T (0: one stage)", minimum=0),
        "bias_correction": Key(bool, False, help="shift biases by the mean output error"),
        "calibration_samples": Key(int, 1024, help="calibration samples from the training split", minimum=1),
        "calibration_patches": Key(int, 0, help="conv layers: im2col patches sampled for the PTQ statistics "
                                                "(0: every patch of every calibration sample)", minimum=0),
        "options": Key(dict, {}, help="options for the PTQ core (axe_deploy.ptq.OPTIONS), e.g. "
                                      "{rescale = false, centre = false} for AXE as published"),
        "layers": Key(dict, {}, help='per-layer settings: [quant.layers."<glob>"]'),
        "device": Key(str, "auto", ("auto", "cpu", "cuda"),
                      "where the PTQ core, its calibration statistics and LM evaluation run "
                      "(auto: CUDA when torch sees a GPU, else the CPU)"),
    },
    "validate": {
        "atol": Key(float, 1e-4, help="max abs difference allowed between Brevitas and ONNX outputs", minimum=0),
    },
    "hardware": {
        "target_cycles": Key(int, 0, help="cycles per inference to meet (0: use target_fps, or no folding)", minimum=0),
        "target_fps": Key(float, 0.0, help="inferences per second to meet at clock_mhz (0: use target_cycles)"),
        "clock_mhz": Key(float, 100.0, help="clock for target_fps and the Vivado constraint"),
        "folding": Key(dict, {}, help='per-layer folding: [hardware.folding."<layer>"] PE = .., SIMD = ..'),
        "simulator": Key(str, "auto", ("auto", "verilator", "icarus"), "RTL simulator"),
        "sim_vectors": Key(int, 0, help="test vectors to simulate (0: the whole test split)", minimum=0),
        "compare_widths": Key(bool, True, help="also synthesize with 32-bit and unconstrained accumulators"),
        "part": Key(str, "xc7z020clg400-1", help="FPGA part for the Vivado and FINN handoffs"),
    },
    "fpga": {
        "device": Key(str, "LFE5U-85F", help="ECP5 part for the place_route step (nextpnr-ecp5), e.g. LFE5U-25F"),
        "package": Key(str, "CABGA381", help="the part's package"),
        "clock_mhz": Key(float, 100.0, help="clock the place_route step constrains and checks (timing_met)"),
        "seed": Key(int, 1, help="nextpnr's placer seed (the same seed gives the same bitstream)", minimum=0),
        "require_timing": Key(bool, True, help="a build that misses fpga.clock_mhz fails (check timing_met, "
                                               "exit 3); false: say so and go on"),
        "compare_widths": Key(bool, True, help="also place and route the 32-bit and unconstrained-width builds "
                                               "(needs hardware.compare_widths)"),
    },
    "finn": {
        "venv": Key(str, "", help="FINN's own venv for the 'finn' step (default: $AXE_DEPLOY_FINN_VENV, else one "
                                  "built in the axe-deploy cache: finn-plus from PyPI, or with root's make_venv.sh)"),
        "root": Key(str, "", help="a FINN source checkout to run instead of finn-plus (default: $FINN_ROOT)"),
    },
}



def _field_type(spec: Key):
    kinds = spec.type if isinstance(spec.type, tuple) else (spec.type,)
    kind = kinds[0] if len(kinds) == 1 else Any
    return Optional[kind] if spec.default is None else kind


def _section_class(section: str, keys: dict[str, Key]) -> type:
    """A dataclass for one table of the flow file: a typed field per key, with its default."""
    fields = [(name, _field_type(spec), dataclasses.field(default_factory=lambda d=spec.default: copy.deepcopy(d),
                                                          metadata={"key": spec}))
              for name, spec in keys.items()]
    return dataclasses.make_dataclass(f"{section.capitalize()}Section", fields, namespace={
        "__doc__": f"The [{section}] table of a flow file (keys: SCHEMA[{section!r}]).",
        "as_dict": lambda self: dataclasses.asdict(self)})


SECTIONS: dict[str, type] = {section: _section_class(section, keys) for section, keys in SCHEMA.items()}
for _cls in SECTIONS.values():  # importable by name: pickle sends configs to Ray workers
    _cls.__module__ = __name__
FlowSection, ModelSection, DataSection = SECTIONS["flow"], SECTIONS["model"], SECTIONS["data"]
QuantSection, ValidateSection = SECTIONS["quant"], SECTIONS["validate"]
HardwareSection, FpgaSection, FinnSection = SECTIONS["hardware"], SECTIONS["fpga"], SECTIONS["finn"]


@dataclass
class FlowConfig:
    """A checked flow file: one typed section per table, e.g. ``cfg.quant.weight_bits``."""

    flow: FlowSection
    model: ModelSection
    data: DataSection
    quant: QuantSection
    validate: ValidateSection
    hardware: HardwareSection
    fpga: FpgaSection
    finn: FinnSection

    def as_dict(self) -> dict:
        """{table: {key: value}}, as report.json records it."""
        return {section: getattr(self, section).as_dict() for section in SCHEMA}

    @classmethod
    def from_dict(cls, tables: dict) -> FlowConfig:
        """From checked tables (:func:`validate` checks them)."""
        return cls(**{section: SECTIONS[section](**tables[section]) for section in SCHEMA})


def _type_name(t) -> str:
    ts = t if isinstance(t, tuple) else (t,)
    return " or ".join({int: "integer", float: "number", str: "string", bool: "true/false",
                        list: "list", dict: "table"}[x] for x in ts)


def _check_value(where: str, key: str, spec: Key, value: Any) -> Any:
    expected = spec.type
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    # bool is an int in Python; a flow file that writes `weight_bits = true` is a mistake.
    if isinstance(value, bool) and expected is not bool:
        ok = False
    else:
        ok = isinstance(value, expected)
    if not ok:
        raise FlowConfigError(f"{where}: key '{key}' expects {_type_name(expected)}, "
                              f"got {value!r}" + (f" ({spec.help})" if spec.help else ""))
    if spec.choices is not None and value not in spec.choices:
        raise FlowConfigError(f"{where}: key '{key}' = {value!r} is not allowed; "
                              f"allowed values: {', '.join(map(str, spec.choices))}")
    if spec.minimum is not None and value < spec.minimum:
        raise FlowConfigError(f"{where}: key '{key}' = {value!r} must be >= {spec.minimum}")
    if spec.maximum is not None and value > spec.maximum:
        raise FlowConfigError(f"{where}: key '{key}' = {value!r} must be <= {spec.maximum}")
    return value


def _unknown(where: str, key: str, allowed) -> FlowConfigError:
    hint = difflib.get_close_matches(key.split(".")[-1], list(allowed), n=1)
    did = f" (did you mean '{hint[0]}'?)" if hint else ""
    return FlowConfigError(f"{where}: unknown key '{key}'{did}; allowed: {', '.join(sorted(allowed))}")


def defaults() -> dict:
    return {sec: {k: copy.deepcopy(s.default) for k, s in keys.items()} for sec, keys in SCHEMA.items()}


def _check_layers(where: str, layers: dict) -> dict:
    for pattern, settings in layers.items():
        if not isinstance(settings, dict):
            raise FlowConfigError(f"{where}: 'quant.layers.\"{pattern}\"' must be a table of "
                                  f"per-layer settings; allowed keys: {', '.join(LAYER_KEYS)}")
        for k, v in settings.items():
            full = f'quant.layers."{pattern}".{k}'
            if k not in LAYER_KEYS:
                raise _unknown(where, full, LAYER_KEYS)
            _check_value(where, full, LAYER_KEYS[k], v)
    return layers


def validate(raw: dict, where: str) -> FlowConfig:
    """Merge ``raw`` over the defaults, checking every key; returns the typed config."""
    cfg = defaults()
    for section, table in raw.items():
        if section not in SCHEMA:
            raise _unknown(where, section, SCHEMA)
        if not isinstance(table, dict):
            raise FlowConfigError(f"{where}: '{section}' must be a table ([{section}])")
        for key, value in table.items():
            if key not in SCHEMA[section]:
                raise _unknown(where, f"{section}.{key}", SCHEMA[section])
            cfg[section][key] = _check_value(where, f"{section}.{key}", SCHEMA[section][key], value)
    _check_layers(where, cfg["quant"]["layers"])
    for layer, fold in cfg["hardware"]["folding"].items():
        if not isinstance(fold, dict) or set(fold) != {"PE", "SIMD"} or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in fold.values()):
            raise FlowConfigError(f'{where}: \'hardware.folding."{layer}"\' must be a table with '
                                  f"integer PE and SIMD >= 1, got {fold!r}")
    _check_model_source(where, raw.get("model", {}), cfg)
    steps = cfg["flow"]["steps"]
    if steps is not None and not all(isinstance(s, str) for s in steps):
        raise FlowConfigError(f"{where}: 'flow.steps' must be a list of step names")
    return FlowConfig.from_dict(cfg)


def check_export_bits(cfg: FlowConfig, where: str) -> None:
    """The bit widths Brevitas's QCDQ export takes (EXPORT_BITS), for flows with an export step."""
    lo, hi = EXPORT_BITS
    q = cfg.quant.as_dict()
    found = [(f"quant.{k}", q[k]) for k in BIT_KEYS]
    found += [(f'quant.layers."{p}".weight_bits', v) for p, v in layer_values(q, "weight_bits").items()]
    for key, value in found:
        if not lo <= value <= hi:
            raise FlowConfigError(f"{where}: key '{key}' = {value} is not supported by the export step "
                                  f"(Brevitas's QCDQ export takes {lo}..{hi} bits); use {lo}..{hi}, or "
                                  f"leave 'export' out of flow.steps")


def _check_model_source(where: str, raw_model: dict, cfg: dict) -> None:
    """One model source: a zoo ``name``, your ``module``, or an ``onnx`` file with its data."""
    m, data = cfg["model"], cfg["data"]
    given = [k for k in ("name", "module", "onnx") if raw_model.get(k)]
    if len(given) > 1:
        raise FlowConfigError(f"{where}: 'model.{given[0]}' and 'model.{given[1]}' both given; a flow takes one "
                              f"model: a zoo name, a module \"package.module:function\" or an onnx file")
    if m["module"] and (m["module"].count(":") != 1 or not all(m["module"].split(":"))):
        raise FlowConfigError(f"{where}: 'model.module' = {m['module']!r} must read \"package.module:function\"")
    if m["onnx"] and not data["inputs"]:
        raise FlowConfigError(f"{where}: 'model.onnx' needs 'data.inputs' (a .npy file of test inputs)")
    if (data["inputs"] or data["targets"]) and not m["onnx"]:
        raise FlowConfigError(f"{where}: '[data]' is for a 'model.onnx' flow; a zoo or module model brings "
                              f"its own data")


def model_label(cfg: FlowConfig) -> str:
    """What the report calls the model: the zoo name, the module or the onnx file."""
    return cfg.model.module or cfg.model.onnx or cfg.model.name


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` with a TOML value (bare words are taken as strings)."""
    if "=" not in text:
        raise FlowConfigError(f"--set {text!r}: expected section.key=value, e.g. quant.weight_bits=3")
    path, value = text.split("=", 1)
    keys = [k.strip().strip('"') for k in _split_dotted(path.strip())]
    try:
        parsed = tomllib.loads(f"v = {value.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        parsed = value.strip()
    return keys, parsed


def _split_dotted(path: str) -> list[str]:
    parts, cur, quoted = [], "", False
    for ch in path:
        if ch == '"':
            quoted = not quoted
        elif ch == "." and not quoted:
            parts.append(cur)
            cur = ""
            continue
        cur += ch
    parts.append(cur)
    return parts


def load(path: str | Path, overrides: list[str] = ()) -> FlowConfig:
    """Read and check a flow file, then apply ``--set`` overrides (checked the same way)."""
    path = Path(path)
    if not path.is_file():
        raise FlowConfigError(f"{path}: flow file not found")
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise FlowConfigError(f"{path}: not valid TOML: {e}") from None
    for text in overrides:
        keys, value = parse_override(text)
        if len(keys) < 2:
            raise FlowConfigError(f"--set {text!r}: name a section and a key, e.g. quant.weight_bits=3")
        node = raw
        for k in keys[:-1]:
            node = node.setdefault(k, {})
            if not isinstance(node, dict):
                raise FlowConfigError(f"--set {text!r}: '{k}' is not a table")
        node[keys[-1]] = value
    return validate(raw, str(path))
