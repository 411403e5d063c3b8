"""`edgefuse eval CHECKPOINT --data DIR [--path K | --oracle [--report DIR]] [--json FILE]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from edgefuse.cli.common import console


def eval_command(
    checkpoint: str = typer.Argument(..., help="Checkpoint (.safetensors), shipped weights name, or model name."),
    data: Path = typer.Option(..., "--data", help="Dataset folder (edgefuse / ESANet / nicr layout)."),
    split: str = typer.Option("test", "--split", help="Split to evaluate."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the report as JSON here."),
    batch_size: int = typer.Option(4, "--batch-size", help="Frames per forward."),
    input_size: Optional[str] = typer.Option(
        None, "--input-size", help="HxW the model sees (frames resized, labels scored at their own size; "
                                   "needed for datasets of mixed frame sizes such as SUN RGB-D). "
                                   "Default: each frame's own size."),
    path: Optional[int] = typer.Option(
        None, "--path", help="Force every frame through path K (a modality-level model's expert K) "
                             "instead of the gate's choice; same report."),
    oracle: bool = typer.Option(
        False, "--oracle", help="Run every path on every frame: forced-path points, the gate, the per-frame "
                                "oracle, its curve, and the gate's agreement with it (dynamic models)."),
    tolerance: float = typer.Option(
        2.0, "--tolerance", help="--oracle: per frame the cheapest path within this many points of pixel "
                                 "accuracy of the frame's best path."),
    report_dir: Optional[Path] = typer.Option(
        None, "--report", help="With --oracle (implied): write oracle.png (the oracle curve), oracle.md and "
                               "oracle.json into this folder."),
) -> None:
    """Score a checkpoint on a dataset split: mIoU, accuracies, per-class IoU, path mix.

    For dynamic models also the path selection ratio and the mean MAdds per frame; on the
    synthetic benchmark the same figures split by easy and hard frames. --oracle shows where
    the gate loses accuracy against a per-frame oracle at the same cost.
    """
    from edgefuse.cli.common import parse_size, progress_bar
    from edgefuse.errors import EdgefuseError

    oracle = oracle or report_dir is not None
    if oracle and path is not None:
        raise EdgefuseError("--path forces one path; --oracle/--report run them all: give one of them")
    size = parse_size(input_size)
    with progress_bar() as bar:
        task = bar.add_task("eval (every path)" if oracle else "eval", total=None)
        progress = lambda done, total: bar.update(task, completed=done, total=total)  # noqa: E731
        if oracle:
            from edgefuse.eval.oracle import oracle_checkpoint

            report = oracle_checkpoint(checkpoint, str(data), split, batch_size, progress, size, tolerance)
        else:
            from edgefuse.eval.evaluate import evaluate_checkpoint

            report = evaluate_checkpoint(checkpoint, str(data), split, batch_size, progress, size, path)
    title = f"{checkpoint} on {data}/{split}" + (f", forced path {path}" if path is not None else "")
    if oracle:
        from edgefuse.eval.report import oracle_table

        console.print(oracle_table(report, title=title))
        if report_dir is not None:
            from edgefuse.eval.oracle_report import write_report

            for p in write_report(report, report_dir, title=f"{checkpoint}: gate vs per-frame oracle ({data}/{split})"):
                console.print(f"wrote {p}")
    else:
        from edgefuse.eval.report import report_table

        console.print(report_table(report, title=title))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
