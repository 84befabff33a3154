"""``axe-deploy annotate`` and ``axe-deploy check`` (the work is in :mod:`axe_deploy.graph.check`;
imported when a command runs, so that ``axe-deploy --help`` stays quick)."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("annotate")
@click.argument("in_path", metavar="IN.onnx", type=click.Path(dir_okay=False, path_type=Path))
@click.argument("out_path", metavar="OUT.onnx", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--accumulator-bits", "bits", type=click.IntRange(min=0), default=0, show_default=True,
              help="target P: exit 1 (and write nothing) when a layer needs more (0: no target)")
@click.option("--tile-size", "tile", type=click.IntRange(min=0), default=0, show_default=True,
              help="multi-stage accumulation tile T (0: one stage)")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="write the table as JSON")
def annotate_cmd(in_path: Path, out_path: Path, bits: int, tile: int, json_path: Path | None):
    """Annotate every quantized layer of IN.onnx (QONNX or QCDQ) with its exact accumulator
    width and write OUT.onnx; exit 1 when a layer needs more than --accumulator-bits."""
    from axe_deploy.graph.layers import GraphError
    from axe_deploy.graph.check import annotate_file, layer_table, write_json
    if out_path.exists():
        raise click.ClickException(f"{out_path}: exists; axe-deploy does not overwrite files it did not write "
                                   f"(choose another name or remove it)")
    try:
        ok, rows = annotate_file(in_path, out_path, bits, tile)
    except GraphError as e:
        raise click.ClickException(str(e)) from None
    click.echo(layer_table(rows, annotated_column=False))
    write_json(json_path, {"file": str(in_path), "out": str(out_path) if ok else None, "accumulator_bits": bits or None,
                            "tile_size": tile, "ok": ok, "layers": rows})
    if not ok:
        click.echo(f"not written: {sum(r['status'] != 'OK' for r in rows)} layer(s) need more than {bits} bits; "
                   f"quantize with AXE (axe-deploy run with quant.accumulator_bits) or raise --accumulator-bits", err=True)
        sys.exit(1)
    click.echo(f"wrote {out_path}")


@click.command("check")
@click.argument("in_path", metavar="IN.onnx", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), help="write the table as JSON")
def check_cmd(in_path: Path, json_path: Path | None):
    """Recompute every layer's exact accumulator range of IN.onnx (QONNX or QCDQ) from the
    graph alone and compare it with the annotation: OK / slack n bits / violation; exit 0
    when every layer is OK, 1 otherwise."""
    from axe_deploy.graph.foreign import load_graph
    from axe_deploy.graph.layers import GraphError
    from axe_deploy.graph.check import check_rows, layer_table, write_json
    from axe_deploy.graph.sums import unaligned_adds
    try:
        model = load_graph(in_path)
        rows = check_rows(model)
    except GraphError as e:
        raise click.ClickException(str(e)) from None
    ok = all(r["status"] == "OK" for r in rows)
    click.echo(layer_table(rows, annotated_column=True))
    for name, s_a, s_b in unaligned_adds(model):
        click.echo(f"note: Add '{name}' sums two quantized tensors on different scales ({s_a:.6g}, {s_b:.6g}): not "
                   f"one integer sum, it runs on the dequantized values and has no accumulator annotation")
    write_json(json_path, {"file": str(in_path), "ok": ok, "layers": rows})
    click.echo(f"{sum(r['status'] == 'OK' for r in rows)}/{len(rows)} layers OK")
    if not ok:
        sys.exit(1)
