"""`edgefuse info [NAME] [--input-size HxW] [--json]`: the model registry and cost tables."""

from __future__ import annotations

import json
from typing import Optional

import typer

from edgefuse.cli.common import console, gmac, parse_size
from edgefuse.errors import EdgefuseError


def info(
    name: Optional[str] = typer.Argument(None, help="A registered model (see the list without NAME)."),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="HxW, e.g. 480x640."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for other tools)."),
    weights: bool = typer.Option(False, "--weights", help="List the shipped pretrained weights."),
) -> None:
    """List registered models, or show one model's per-path MAdds (measured, not typed in)."""
    from rich.table import Table

    from edgefuse.models.registry import get_config, list_configs

    if weights:
        from edgefuse.weights import list_weights

        rows = list_weights()
        if as_json:
            print(json.dumps(rows, indent=2))
            return
        table = Table(title="Shipped weights (use the name wherever a checkpoint path goes)")
        table.add_column("name", no_wrap=True)
        table.add_column("model", no_wrap=True)
        table.add_column("mIoU", justify="right")
        table.add_column("trained on")
        for r in rows:
            miou = r.get("miou")
            table.add_row(r["name"], r.get("model", ""), f"{100 * miou:.1f}" if isinstance(miou, float) else "-",
                          r.get("data", ""))
        console.print(table if rows else "No shipped weights in this install.")
        return
    if name is None and input_size is not None:
        raise EdgefuseError(f"--input-size {input_size} needs a model: edgefuse info NAME --input-size "
                            f"{input_size} (the list of models has no sizes to change)")
    if name is None:
        names = list_configs()
        if as_json:
            print(json.dumps([get_config(n).to_dict() for n in names], indent=2))
            return
        rows = []
        for n in names:
            c = get_config(n)
            rows.append((n, f"{c.encoder}/{c.block} x{c.width:g}", str(c.num_classes),
                         f"{c.input_size[0]}x{c.input_size[1]}", c.description))
        # Names and shapes never wrap (users copy them; the family is the name's prefix).
        # The description is shown where it gets room to be read: always off a terminal
        # (pipes get whole lines), in a terminal when it is wide enough.
        described = not console.is_terminal or (
            console.natural_width(_models_table(rows, False)) + MIN_DESCRIPTION <= console.width)
        console.print(_models_table(rows, described))
        if not described:
            console.print("Descriptions: [bold]edgefuse info NAME[/], a wider terminal, or --json")
        console.print("Per-path costs: [bold]edgefuse info NAME[/] (add --json for tools)")
        return

    from edgefuse.models.costs import measure_costs
    from edgefuse.models.registry import build_model

    size = parse_size(input_size)
    overrides = {"input_size": size} if size else {}
    model = build_model(name, **overrides)
    costs = measure_costs(model)
    if as_json:
        payload = {
            "model": name,
            "input_size": list(costs.input_size),
            "stem_madds": costs.stem_madds,
            "gate_madds": costs.gate_madds,
            "paths": [{"index": p.index, "decision": list(p.decision), "madds": p.madds,
                       "depth_encoder_madds": p.depth_encoder_madds, "path_madds": p.path_madds}
                      for p in costs.paths],
        }
        print(json.dumps(payload, indent=2))
        return
    h, w = costs.input_size
    if model.config.description:
        console.print(f"{name}: {model.config.description}", highlight=False)
    table = Table(title=f"{name} at {h}x{w}: MAdds per frame (GMAC)")
    for col in ("path", "fuses in cells", "total", "depth encoder", "path graph"):
        table.add_column(col, justify="right")
    for p in costs.paths:
        cells = ",".join(str(i + 1) for i, f in enumerate(p.decision) if f) or "-"
        table.add_row(str(p.index), cells, gmac(p.madds), gmac(p.depth_encoder_madds), gmac(p.path_madds))
    console.print(table)
    console.print(f"stem {gmac(costs.stem_madds)} GMAC, gate {gmac(costs.gate_madds)} GMAC "
                  "(counted with torch.utils.flop_counter; 1 MAdd = 2 FLOPs)")


MIN_DESCRIPTION = 30   # columns the description needs to be worth showing in a terminal


def _models_table(rows: list[tuple[str, ...]], with_description: bool):
    from rich.table import Table

    table = Table(title="edgefuse models")
    table.add_column("name", no_wrap=True)
    table.add_column("encoder", no_wrap=True)
    table.add_column("classes", no_wrap=True, justify="right")
    table.add_column("input", no_wrap=True)
    if with_description:
        table.add_column("description")
    for row in rows:
        table.add_row(*(row if with_description else row[:-1]))
    return table


def register(app: typer.Typer) -> None:
    app.command("info")(info)
