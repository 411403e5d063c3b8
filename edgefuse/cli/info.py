"""`edgefuse info [NAME] [--input-size HxW] [--json]`: the model registry and cost tables."""

from __future__ import annotations

import json
from typing import Optional

import typer

from edgefuse.cli.common import console, gmac, parse_size
from edgefuse.errors import EdgefuseError


def info(
    name: Optional[str] = typer.Argument(None, help="A registered model (see the list without NAME), or a "
                                                    "checkpoint file: where it came from, classes, preprocessing."),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="HxW, e.g. 480x640."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object (for other tools)."),
    weights: bool = typer.Option(False, "--weights", help="List the shipped pretrained weights."),
) -> None:
    """List registered models, or show one model's per-path MAdds (measured, not typed in)."""
    from rich.table import Table

    from edgefuse.models.registry import get_config, list_configs

    if name is not None and _is_checkpoint(name):
        _checkpoint_info(name, as_json)
        return
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


def _is_checkpoint(name: str) -> bool:
    from pathlib import Path

    return Path(name).suffix in (".safetensors", ".pt", ".pth") or Path(name).is_file()


def checkpoint_summary(config: dict, meta: dict) -> dict:
    """What `info CHECKPOINT` shows: the model, its classes and the preprocessing its config
    applies (in the exported graph), and the provenance recorded in its metadata."""
    from edgefuse.models.config import ModelConfig

    cfg = ModelConfig.from_dict(config)
    return {
        "model": cfg.name or cfg.family.value, "family": cfg.family.value, "description": cfg.description,
        "encoder": f"{cfg.encoder}/{cfg.block}", "input_size": list(cfg.input_size),
        "num_classes": cfg.num_classes, "classes": list(cfg.class_names),
        "preprocessing": {"rgb_mean": list(cfg.rgb_mean), "rgb_std": list(cfg.rgb_std), "depth_unit": "mm",
                          "depth_mean": cfg.depth_mean, "depth_std": cfg.depth_std, "depth_mode": cfg.depth_mode},
        "imported": meta.get("imported"),
        "meta": {k: v for k, v in meta.items() if k != "imported"},
    }


def _checkpoint_info(path: str, as_json: bool) -> None:
    from edgefuse.checkpoint import read_header

    summary = checkpoint_summary(*read_header(path))
    if as_json:
        print(json.dumps(summary, indent=2))
        return
    pre = summary["preprocessing"]
    h, w = summary["input_size"]
    lines = [f"{path}: model {summary['model']} ({summary['encoder']}, {summary['family']}), input {h}x{w}",
             f"classes: {summary['num_classes']} (mask value v = class v, 0 = void): "
             + (", ".join(summary["classes"]) or "unnamed"),
             f"RGB: /255, mean {pre['rgb_mean']}, std {pre['rgb_std']}",
             f"depth: {pre['depth_unit']}, mean {pre['depth_mean']}, std {pre['depth_std']}, mode {pre['depth_mode']} "
             + ("(missing depth 0 stays 0)" if pre["depth_mode"] == "raw" else "(every value normalised)")]
    imp = summary["imported"]
    if imp:
        lines.append(f"imported from {imp['repository']} (commit {imp.get('commit') or 'unknown'}), "
                     f"file {imp['file']} sha256 {imp['file_sha256']}, dataset {imp['dataset']}")
        lines.append(f"architecture: {imp['architecture']}")
    elif summary["meta"]:
        lines.append("meta: " + json.dumps(summary["meta"])[:400])
    for line in lines:
        console.print(line, highlight=False, markup=False)


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
