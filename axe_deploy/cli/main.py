"""``axe-deploy``: run a flow file into a build folder."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import warnings

import click

from axe_deploy.flow.config import FlowConfigError

# Brevitas says on every import that an optional CUDA kernel package is missing; it is not
# used here, and a notice on every command buries the lines that matter.
warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found", category=UserWarning)

DEFAULT_FLOW = Path(__file__).parent.parent / "flows" / "digits_mlp.toml"


def _threads() -> None:
    # Small layers run ~50x slower on 2 torch threads than on 1 here (docs/reference.md).
    import torch
    torch.set_num_threads(int(os.environ.get("AXE_DEPLOY_THREADS", "1")))


def summary_table(report: dict) -> str:
    m = report.get("metrics", {})
    lines = [f"flow {report['flow']} · model {report['model']}"]
    if m:  # a [model] onnx flow has no float/brevitas model, maybe no targets or QCDQ twin: '-'
        def f(key, spec=".4f"):
            return "-" if m.get(key) is None else format(m[key], spec)
        lines.append(f"accuracy: float {f('float_accuracy')}  brevitas {f('quant_accuracy')}  "
                     f"qonnx {f('qonnx_accuracy')}  onnxruntime {f('onnxruntime_accuracy')}  "
                     f"(max |diff| qonnx {f('qonnx_max_abs_diff', '.2e')}, ort {f('onnxruntime_max_abs_diff', '.2e')})")
    ev = report.get("evaluation")
    if ev:
        lines.append(f"{ev['metric']}: float {ev['float']:.4f}  quantized {ev['quantized']:.4f}")
    if report.get("ptq") and not report.get("layers"):  # no exported graph: the PTQ record
        w = _column(28, (l["name"] for l in report["ptq"]))
        head = f"{'layer':<{w}}{'algorithm':<10}{'W':>3}{'in':>5}{'T':>5}{'target P':>9}{'exact':>6}"
        lines += [head, "-" * len(head)]
        for l in report["ptq"]:
            inp = f"{'s' if l['input_signed'] else 'u'}{l['input_bits']}"
            lines.append(f"{l['name']:<{w}}{l['algorithm']:<10}{l['weight_bits']:>3}{inp:>5}{l['tile_size']:>5}"
                         f"{l['target_accumulator_bits'] or '-':>9}{l['exact_bits']:>6}")
    layers = report.get("layers", [])
    w = _column(10, (l["name"] for l in layers))  # long module or node names widen the column
    o = max([6] + [len(l["op"]) + 1 for l in layers])
    i = max([8] + [len(l["input_datatype"]) + 1 for l in layers])
    head = f"{'layer':<{w}}{'op':<{o}}{'M':>5}{'K':>6}  {'weights':<8}{'inputs':<{i}}{'T':>4}  {'accumulator':<12}{'range':<22}{'bound':>6}{'exact':>6}  overflow-free"
    if layers:
        lines += [head, "-" * len(head)]
    for l in layers:
        rng = f"[{l['accumulator_range'][0]}, {l['accumulator_range'][1]}]"
        lines.append(f"{l['name']:<{w}}{l['op']:<{o}}{l['M'] if l['M'] is not None else '-':>5}{l['K']:>6}  {l['weight_datatype'] or '-':<8}"
                     f"{l['input_datatype']:<{i}}{l['tile_size']:>4}  {l['accumulator_datatype']:<12}{rng:<22}"
                     f"{l['datatype_bound_bits']:>6}{l['exact_bits']:>6}  {'yes' if l['overflow_free'] else 'NO'}")
    hw = report.get("hardware")
    if hw and "layers" in hw:
        w = _column(10, (l["name"] for l in hw["layers"]))
        lines.append(f"{'hw layer':<{w}}{'MW':>5}{'MH':>5}{'PE':>4}{'SIMD':>5}  {'accumulator':<18}{'cycles':>7}"
                     f"{'LUT':>7}{'FF':>6}{'BRAM18':>7}")
        for l in hw["layers"]:  # sliding-window, reorder and pool layers have no MW/MH/accumulator
            c = {k: "-" if l.get(k) is None else l[k] for k in
                 ("MW", "MH", "PE", "SIMD", "luts", "ffs", "brams")}
            acc = _width(l, " T{}")
            lines.append(f"{l['name']:<{w}}{c['MW']:>5}{c['MH']:>5}{c['PE']:>4}{c['SIMD']:>5}  {acc:<18}"
                         f"{l['cycles_estimated']:>7}{c['luts']:>7}{c['ffs']:>6}{c['brams']:>7}")
        sim = hw.get("rtl_sim")
        if sim:
            outer = f" ({sim['inner_overflows']} inner, {sim['outer_overflows']} outer)" \
                if any(l.get("tile_size") for l in hw["layers"]) else ""
            lines.append(f"rtl sim ({sim['simulator']}): {sim['bit_exact_vectors']}/{sim['vectors']} vectors bit-exact, "
                         f"{sim['overflows']} overflows{outer}, interval {sim['cycles_measured']['interval']:.0f} cycles "
                         f"(estimated {sim['cycles_estimated']})")
    lines += [f"WARNING: {w}" for w in report.get("warnings", [])]
    t = report.get("timings_s", {})
    lines.append("steps: " + ", ".join(f"{k} {v:.2f}s" for k, v in t.items()))
    from axe_deploy.flow.checks import summary_line
    verdict = summary_line(report)
    if verdict:
        lines.append(verdict)
    return "\n".join(lines + headline(report))


def _column(least: int, names) -> int:
    """A name column at least ``least`` wide and one wider than its longest name."""
    return max([least, *(len(n) + 1 for n in names)])


def _width(entry: dict, tile_format: str = " (T={})") -> str:
    """A layer's accumulator: 'INT12', or inner+outer and the tile size for a tiled one."""
    acc = entry.get("accumulator_datatype") or "-"
    if entry.get("tile_size"):
        acc += f"+{entry['outer_accumulator_datatype']}" + tile_format.format(entry["tile_size"])
    return acc


def headline(report: dict) -> list[str]:
    """The comparison the flow is for, last in the summary: accuracy float / unconstrained /
    this flow, accumulator widths per layer unconstrained vs this flow, MVAU LUTs of this
    build vs 32-bit and unconstrained accumulators; and the steps skipped for missing tools."""
    from axe_deploy.hw.tools import skip_notice
    lines = []
    m, u, hw = report.get("metrics"), report.get("unconstrained"), report.get("hardware", {})
    aware = any(l.get("target_accumulator_bits") for l in report.get("layers", []))
    label = "AXE" if aware else "this flow"
    if m and u:
        lines.append(f"accuracy: float {m['float_accuracy']:.4f} / unconstrained {u['accuracy']:.4f} / "
                     f"{label} {m['quant_accuracy']:.4f}")
        widths = ", ".join(f"{l['name']} INT{u['accumulator_bits'][l['name']]} -> {_width(l)}"
                           for l in report.get("layers", []) if l["name"] in u["accumulator_bits"])
        lines.append(f"accumulators, unconstrained -> {label}: {widths}")
    if "lut_ratio_vs_acc32" in hw:
        one = (f", one-stage {hw['synth_one_stage']['mvau_luts']} ({hw['lut_ratio_vs_one_stage']:.2f}x)"
               if "synth_one_stage" in hw else "")
        lines.append(f"MVAU LUTs: {label} {hw['synth']['mvau_luts']} vs 32-bit {hw['synth_acc32']['mvau_luts']} "
                     f"({hw['lut_ratio_vs_acc32']:.2f}x) vs unconstrained {hw['synth_unconstrained']['mvau_luts']} "
                     f"({hw['lut_ratio_vs_unconstrained']:.2f}x){one}")
    if "place_route" in hw:
        lines += ecp5_lines(hw["place_route"], hw.get("place_route_variants", {}), label)
    if report.get("skipped_steps"):
        lines.append(skip_notice(report["skipped_steps"]))
    return lines


def ecp5_lines(ours: dict, variants: dict, label: str) -> list[str]:
    """The placed-and-routed build in one line, and against the other widths on the same device."""
    def used(build, resource):
        return build["utilisation"].get(resource, {}).get("used", 0)

    def fmax(build):
        return min(build["fmax_mhz"].values())

    from axe_deploy.hw.place_route import path_ends
    path = path_ends(ours["critical_path"])
    verdict = "met" if ours["timing_met"] else f"MISSED by {ours['missed_by_mhz']:.1f} MHz on {path[0]} -> {path[1]}"
    ips = f", {ours['inferences_per_second']:,} inferences/s" if ours.get("inferences_per_second") else ""
    lines = [f"ECP5 {ours['device']}: {used(ours, 'LUT4')} LUT4, {used(ours, 'FF')} FF, {used(ours, 'DP16KD')} DP16KD, "
             f"{used(ours, 'MULT18X18D')} MULT18, Fmax {fmax(ours):.1f} MHz (target {ours['target_mhz']:g}: {verdict})"
             f"{ips}"]
    names = {"acc32": "32-bit", "unconstrained": "unconstrained", "one_stage": "one-stage"}
    builds = [(label, ours)] + [(names.get(k, k), v) for k, v in variants.items()]
    if len(builds) > 1:
        cols = " / ".join(name for name, _ in builds)
        lines.append(f"ECP5 {cols}: LUT4 " + " / ".join(str(used(b, "LUT4")) for _, b in builds)
                     + ", FF " + " / ".join(str(used(b, "FF")) for _, b in builds)
                     + ", DP16KD " + " / ".join(str(used(b, "DP16KD")) for _, b in builds)
                     + ", MULT18 " + " / ".join(str(used(b, "MULT18X18D")) for _, b in builds)
                     + ", Fmax " + " / ".join(f"{fmax(b):.1f}" for _, b in builds) + " MHz")
    return lines


@click.group()
def main():
    """axe-deploy: accumulator-aware PTQ to proven-width dataflow accelerators.

    \b
    Your own model (README "Your own model"; examples/):
      plain PyTorch  axe-deploy run examples/my_mlp.toml --out build/my_mlp
                     ([model] module = "my_models:digits_mlp" returns a ModelBundle)
      Brevitas       axe-deploy run examples/my_brevitas_mlp.toml --out build/my_brevitas_mlp
      QONNX file     axe-deploy run FLOW.toml --out DIR  with [model] onnx = "model.onnx"
                     and [data] inputs = "x.npy"; or, for the widths alone:
                     axe-deploy annotate IN.onnx OUT.onnx / axe-deploy check IN.onnx
    """


@main.command()
@click.argument("flow", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=str,
              help="build folder to write (replaced only when the flow succeeds); it must be absent, "
                   "empty or an earlier axe-deploy build")
@click.option("--force", is_flag=True, help="replace --out even if it holds other files (never a "
                                            "project, home or root folder)")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="override a flow key, e.g. --set quant.weight_bits=3 (repeatable)")
@click.option("--from", "first", metavar="STEP", default=None,
              help="start at STEP, resuming the earlier build in --out (from 'lower' on; a [model] onnx flow "
                   "from 'annotate' on)")
@click.option("--to", "last", metavar="STEP", default=None, help="stop after STEP")
def run(flow: Path | None, out: str, force: bool, overrides: tuple[str, ...], first: str | None,
        last: str | None):
    """Run FLOW (a flow .toml file; default: the built-in digits-mlp flow) into --out.

    \b
    The model comes from the flow's [model] table, one of three ways:
      name = "digits-mlp"          a model of the zoo (axe-deploy models)
      module = "my_models:build"   your function returning an axe_deploy.ModelBundle
      onnx = "model.onnx"          a QONNX file, with [data] inputs = "x.npy"
    \b
    Steps (flow.steps picks them; default: build_models quantize export annotate
    validate lower fold rtl simulate synthesize handoff report):
      software   build_models, quantize, export, import_onnx, annotate, validate, evaluate
      hardware   lower, fold, rtl, simulate, synthesize, handoff
      compilers  finn, hls4ml (opt-in)
      report     report.json
    """
    from axe_deploy.flow import config
    from axe_deploy.flow.outdir import OutDirError, Terminated, check_out
    flow = flow or DEFAULT_FLOW
    try:
        cfg = config.load(flow, list(overrides))
        check_out(out, force)  # before the imports and the model: a refused folder fails fast
        _threads()
        from axe_deploy.flow.runner import run_flow
        report = run_flow(cfg, out, where=str(flow), progress=lambda s: click.echo(s, err=True), force=force,
                          first=first, last=last)
    except (FlowConfigError, OutDirError) as e:
        raise click.ClickException(str(e)) from None
    except Terminated:
        click.echo(f"terminated: nothing written to {out}", err=True)
        sys.exit(143)
    except (KeyError, ValueError) as e:
        raise click.ClickException(f"{flow}: {e.args[0] if e.args else e}") from None
    click.echo(summary_table(report))
    click.echo(f"wrote {out}/")
    from axe_deploy.flow.checks import FAILED_CHECKS_EXIT_CODE, failures
    if failures(report):  # the build folder is complete, for debugging; the run is not a success
        sys.exit(FAILED_CHECKS_EXIT_CODE)


@main.command("sweep")
@click.argument("flow", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="folder for sweep.json and sweep.png (an existing sweep.json is resumed)")
@click.option("--accumulator-bits", "bits", default="10:20", show_default=True, help="P values: LO:HI or a list")
@click.option("--tile-size", "tiles", default="0", show_default=True, help="T values for AXE methods (0: one stage)")
@click.option("--methods", default="rtn,gpfq,optq,axe-rtn,axe-gpfq,axe-optq,naive", show_default=True,
              help="comma-separated methods")
@click.option("--seeds", default="0", show_default=True, help="seeds: a list or LO:HI")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE", help="override a flow key")
@click.option("--markdown", is_flag=True, help="print the table as Markdown")
@click.option("--ray", "ray_address", is_flag=False, flag_value="", default=None, metavar="[ADDRESS]",
              help="run every point as a Ray task: on a local Ray runtime, or on the cluster at ADDRESS "
                   "(needs the extra axe-deploy[ray])")
@click.option("--workers", type=int, default=None, help="CPUs of the local Ray runtime (default: all)")
def sweep_cmd(flow, out, bits, tiles, methods, seeds, overrides, markdown, ray_address, workers):
    """Accuracy vs accumulator width P for several PTQ methods on FLOW's model."""
    from axe_deploy.flow import config
    from axe_deploy.flow.sweep import parse_range, select, sweep
    flow = flow or DEFAULT_FLOW
    try:
        if workers is not None and ray_address is None:
            raise ValueError("--workers sets the CPUs of a local Ray runtime; add --ray")
        if ray_address and ray_address.endswith(".toml"):
            raise ValueError(f"--ray took '{ray_address}' as the cluster address; put FLOW before --ray")
        cfg = config.load(flow, list(overrides))
        _threads()
        asked = dict(bits=parse_range(bits, "--accumulator-bits"), tiles=parse_range(tiles, "--tile-size"),
                     methods=[m.strip() for m in methods.split(",") if m.strip()],
                     seeds=parse_range(seeds, "--seeds"))
        if ray_address is None:
            result = sweep(cfg, out, **asked)
        else:
            from axe_deploy.flow.sweep_ray import sweep_on_ray
            result = sweep_on_ray(cfg, out, address=ray_address or None, workers=workers, **asked)
    except (FlowConfigError, ValueError, KeyError) as e:
        raise click.ClickException(str(e.args[0] if e.args else e)) from None
    click.echo(sweep_table(select(result, **asked), markdown))
    click.echo(f"wrote {out}/sweep.json and {out}/sweep.png")
    failed = [p for p in result["points"] if "error" in p]
    for p in failed:
        click.echo(f"failed: {p['method']} P={p['P_requested']} T={p['T']} seed={p['seed']}: {p['error']}", err=True)
    if failed:
        raise click.ClickException(f"{len(failed)} point(s) failed (recorded in {out}/sweep.json with their "
                                   f"error); run the same command again to retry them")


def sweep_table(result: dict, markdown: bool = False) -> str:
    """Methods as rows, P as columns, mean metric over seeds (± standard deviation when
    several), then the smallest P within 1% of the unconstrained metric per AXE method
    (over the points of ``result``: the sweep prints those it was asked for);
    ``markdown`` gives the table as Markdown (as in docs/results.md)."""
    import numpy as np

    from axe_deploy.flow.sweep import METHODS, UNCONSTRAINED

    def cell(vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return "–"
        d = 4 if abs(np.mean(vals)) < 1 else 3
        return f"{np.mean(vals):.{d}f}" + (f" ± {np.std(vals):.{d}f}" if len(vals) > 1 else "")

    rows: dict[tuple, dict] = {}
    for p in result["points"]:
        rows.setdefault((p["method"], p["T"]), {}).setdefault(p["P"], []).append(p["metric"])
    ps = sorted({P for (m, _), r in rows.items() if m not in UNCONSTRAINED for P in r})
    seeds = sorted({p["seed"] for p in result["points"]})
    title = (f"{result['model']}: {result['metric_name']}, mean"
             + (f" ± std over seeds {seeds[0]}–{seeds[-1]}" if len(seeds) > 1 else f" of seed {seeds[0]}")
             + f" (float {result['float_metric']:.4g})")
    table = [["method", "unconstrained (P needed)"] + [f"P = {P}" for P in ps]]
    for (method, T), by_p in sorted(rows.items(), key=lambda kv: (kv[0][1], METHODS.index(kv[0][0]))):
        label = method + (f" T={T}" if T else "")
        if method in UNCONSTRAINED:
            needed = f"{min(by_p)}" + (f"–{max(by_p)}" if len(by_p) > 1 else "")
            table.append([label, f"{cell(sum(by_p.values(), []))} ({needed})"] + [""] * len(ps))
        else:
            table.append([label, ""] + [cell(by_p[P]) if P in by_p else "" for P in ps])
    notes = []
    for row in result.get("summary", []):
        naive = (row["naive_P_within"] if row["naive_P_within"] is not None
                 else f"> {row['naive_needs_more_than']} (its best: {row['naive_best']:.4g})"
                 if row.get("naive_best") is not None else "not run")
        tile = f" T={row['T']}" if row["T"] else ""
        axe = f"from P = {row['P_within']}" if row["P_within"] is not None else "at no swept P"
        notes.append(f"{row['method']}{tile}: within 1% of unconstrained ({row['unconstrained']:.4g}) "
                     f"{axe}; naive needs {naive}")
    if markdown:
        lines = [f"| {' | '.join(r)} |" for r in table]
        lines.insert(1, "|" + " --- |" * len(table[0]))
        return "\n".join([title, ""] + lines + [""] + [f"- {n}" for n in notes])
    widths = [max(len(r[i]) for r in table) + 2 for i in range(len(table[0]))]
    lines = ["".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
             for r in table]
    return "\n".join([title] + lines + notes)


@main.command()
def models():
    """List the built-in models."""
    from axe_deploy import zoo
    for name in zoo.names():
        click.echo(name)


from axe_deploy.cli.graph_commands import annotate_cmd, check_cmd  # noqa: E402

main.add_command(annotate_cmd)
main.add_command(check_cmd)


if __name__ == "__main__":
    sys.exit(main())
