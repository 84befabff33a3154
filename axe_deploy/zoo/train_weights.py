"""Make the float weights that ship under ``axe_deploy/zoo/weights/`` (see ``shipped``).

    OMP_NUM_THREADS=1 python -m axe_deploy.zoo.train_weights [MODEL ...] [--seed 0]

Each model is trained by its own zoo builder with ``retrain=True`` (the very code a flow
with ``[model] retrain = true`` runs), its state dict is written to
``weights/<model>[-<tag>]-seed<seed>.pt`` and ``MANIFEST.json`` records the file's SHA-256,
the command, the settings and the float metric. Trained weights depend on the CPU's kernels:
running this on another machine gives other files, which is why they ship.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform

import torch

from axe_deploy import zoo
from axe_deploy.zoo import shipped
from axe_deploy.zoo.shakespeare import CharConfig

# Model name → the tag (shipped.file_name) of its default architecture, from its bundle.
MODELS = {"digits-mlp": lambda bundle: "", "digits-cnn": lambda bundle: "",
          "shakespeare-char": lambda bundle: f"{CharConfig().tag()}-v{bundle.info['vocab']}"}


def train(model: str, seed: int) -> tuple[str, dict]:
    """Train ``model`` for ``seed``, write its weights file; (file name, manifest entry)."""
    torch.set_num_threads(1)
    bundle = zoo.build(model, seed=seed, retrain=True)
    buf = io.BytesIO()
    torch.save({k: v.detach().contiguous() for k, v in bundle.float_model.state_dict().items()}, buf)
    data = buf.getvalue()
    tag = MODELS[model](bundle)
    name = shipped.file_name(model, seed, tag)
    (shipped.WEIGHTS_DIR / name).write_bytes(data)
    return name, {
        "model": model, "seed": seed, "tag": tag, "sha256": shipped.sha256(data), "bytes": len(data),
        "command": f"OMP_NUM_THREADS=1 python -m axe_deploy.zoo.train_weights {model} --seed {seed}",
        "settings": {k: os.environ.get(k, "") for k in ("OMP_NUM_THREADS", "MKL_CBWR", "ATEN_CPU_CAPABILITY")},
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        f"float_{bundle.metric_name}": round(float(bundle.evaluate(bundle.float_model)), 6),
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="*", metavar="MODEL", help=f"default: all of {', '.join(MODELS)}")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    unknown = [m for m in args.models if m not in MODELS]
    if unknown:
        ap.error(f"no shipped weights for {', '.join(unknown)}; models: {', '.join(MODELS)}")
    shipped.WEIGHTS_DIR.mkdir(exist_ok=True)
    for model in args.models or MODELS:
        name, entry = train(model, args.seed)
        entries = shipped.manifest()
        entries[name] = entry
        shipped.MANIFEST.write_text(json.dumps(dict(sorted(entries.items())), indent=2) + "\n")
        metric = {k: v for k, v in entry.items() if k.startswith("float_")}
        print(f"{name}: {entry['bytes']} bytes, sha256 {entry['sha256'][:16]}..., {metric}")


if __name__ == "__main__":
    main()
