"""PTQ on a GPU against the CPU, in one run: the same work with ``quant.device`` cpu and cuda.

1. one K×K layer (default 4096×4096, 2048 calibration rows, signed 8-bit inputs, 4-bit
   weights) quantized by AXE-GPFQ at P = 16: the CPU on ``--cpu-threads`` (default one)
   against CUDA (target: >= 10x faster);
2. SmolLM2-135M decoder by decoder (``flows/smollm2_135m.toml``: AXE-OPTQ, P_I = 16,
   T = 64), PTQ and perplexity, on the CPU and on CUDA (``--quick``: the random 2-layer
   ``llama-tiny``, no download).

Both devices must give the same results up to float tolerance: integer weights that differ
in at most a small fraction of entries (a rounding tie decided the other way, and its
effect on later columns), every accumulator within P, the same reconstruction error and
perplexity within 1 %. Exit status 1 when they do not.
Without a CUDA GPU it prints why it cannot run and exits 0.

    python benchmarks/ptq_gpu.py [--quick] [--K 4096] [--samples 2048] [--cpu-threads 1] [--skip-llm]
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

import torch

from axe_deploy.flow import config

from axe_deploy import zoo
from axe_deploy.ptq import quantize_layer
from axe_deploy.quant.blockwise import quantize_blockwise

FLOW = Path(__file__).resolve().parents[1] / "flows" / "smollm2_135m.toml"
GPU = "cuda"


def timed(fn, device: str):
    if device == GPU:
        torch.cuda.synchronize()
    start = time.perf_counter()
    out = fn()
    if device == GPU:
        torch.cuda.synchronize()
    return out, time.perf_counter() - start


def layer(K: int, samples: int, P: int, threads: int) -> bool:
    gen = torch.Generator().manual_seed(0)
    W = torch.randn(K, K, generator=gen) * K ** -0.5
    X = torch.randn(samples, K, generator=gen)
    x_scale = X.abs().max() / 127
    Xq = torch.clamp(torch.round(X / x_scale), -128, 127) * x_scale
    scale = W.abs().amax(1) / 7
    kw = dict(weight_bits=4, input_bits=8, input_signed=True, algorithm="gpfq", accumulator_bits=P)
    quantize_layer(W[:64, :256], scale[:64], X[:, :256], Xq[:, :256], device=GPU, **kw)  # CUDA context, cuBLAS
    torch.set_num_threads(threads)
    results = {d: timed(lambda d=d: quantize_layer(W, scale, X, Xq, device=d, **kw), d) for d in ("cpu", GPU)}
    (q_cpu, i_cpu), t_cpu = results["cpu"]
    (q_gpu, i_gpu), t_gpu = results[GPU]
    Xg, Xqg = X.to(GPU), Xq.to(GPU)

    def error(q, info):  # relative ||XWᵀ − X̃(s·q)ᵀ|| on the GPU
        Wq = (info.scale[:, None] * q.double()).float().to(GPU)
        ref = Xg @ W.to(GPU).T
        return float(torch.linalg.norm(ref - Xqg @ Wq.T) / torch.linalg.norm(ref))

    differ = float((q_cpu != q_gpu).double().mean())
    e_cpu, e_gpu = error(q_cpu, i_cpu), error(q_gpu, i_gpu)
    ok = differ < 0.01 and max(i_cpu.exact_bits, i_gpu.exact_bits) <= P and abs(e_cpu - e_gpu) <= 0.01 * e_cpu
    print(f"{K}x{K} AXE-GPFQ, P = {P}, {samples} calibration rows")
    print(f"  CPU ({threads} thread{'s' * (threads > 1)}): {t_cpu:8.2f} s   CUDA: {t_gpu:7.2f} s   "
          f"speed-up {t_cpu / t_gpu:.1f}x (target >= 10x)")
    print(f"  exact bits CPU {i_cpu.exact_bits} / CUDA {i_gpu.exact_bits}; integer weights differing {differ:.2e}; "
          f"relative error CPU {e_cpu:.5f} / CUDA {e_gpu:.5f}; same up to tolerance: {ok}")
    return ok


def llm(quick: bool, threads: int) -> bool:
    cfg = config.load(FLOW, ["model.name=llama-tiny", "quant.calibration_samples=1024"] if quick else [])
    q = cfg.quant.as_dict()
    torch.set_num_threads(threads)
    bundle = zoo.build(cfg.model.name, weight_bits=q["weight_bits"], act_bits=q["act_bits"],
                       input_bits=q["input_bits"], calibration_samples=q["calibration_samples"])
    pristine = copy.deepcopy(bundle.quant_model)
    rows = {}
    for device in ("cpu", GPU):
        model = copy.deepcopy(pristine)
        infos, seconds = timed(lambda: quantize_blockwise(bundle.float_model, model, bundle.calib_x,
                                                          dict(q, device=device), progress=False), device)
        bundle.device = device
        rows[device] = (seconds, bundle.evaluate(model), max(i.exact_bits for i in infos.values() if i), model)
    (t_cpu, ppl_cpu, bits_cpu, m_cpu), (t_gpu, ppl_gpu, bits_gpu, m_gpu) = rows["cpu"], rows[GPU]
    weights = [(a.weight, b.weight) for a, b in zip(m_cpu.modules(), m_gpu.modules()) if hasattr(a, "quant_weight")]
    differ = sum(float((a != b).double().sum()) for a, b in weights) / sum(a.numel() for a, _ in weights)
    P = q["accumulator_bits"]
    ok = max(bits_cpu, bits_gpu) <= P and abs(ppl_cpu - ppl_gpu) <= 0.01 * ppl_cpu and differ < 0.01
    print(f"{cfg.model.name} decoder by decoder, {q['algorithm']} + AXE P_I = {P}, T = {q['tile_size']}")
    print(f"  CPU ({threads} thread{'s' * (threads > 1)}): {t_cpu:8.1f} s   CUDA: {t_gpu:7.1f} s   "
          f"speed-up {t_cpu / t_gpu:.1f}x")
    print(f"  perplexity CPU {ppl_cpu:.3f} / CUDA {ppl_gpu:.3f}; widest tile CPU {bits_cpu} / CUDA {bits_gpu} bits; "
          f"weights differing {differ:.2e}; same up to tolerance: {ok}")
    return ok


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--K", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=2048)
    ap.add_argument("--P", type=int, default=16)
    ap.add_argument("--cpu-threads", type=int, default=1)
    ap.add_argument("--quick", action="store_true", help="llama-tiny instead of SmolLM2-135M")
    ap.add_argument("--skip-llm", action="store_true")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        print(f"ptq_gpu: skipped, torch {torch.__version__} ({build}) sees no CUDA GPU; run it on a machine "
              f"with one to compare quant.device = \"cpu\" and \"cuda\"")
        return 0
    print(f"GPU: {torch.cuda.get_device_name()}; torch {torch.__version__}")
    ok = layer(args.K, args.samples, args.P, args.cpu_threads)
    if not args.skip_llm:
        ok = llm(args.quick, args.cpu_threads) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
