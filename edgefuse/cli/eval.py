"""`edgefuse eval CHECKPOINT --data DIR [--json FILE]`: score a model on a dataset split."""

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
) -> None:
    """Score a checkpoint on a dataset split: mIoU, accuracies, per-class IoU, path mix.

    For dynamic models also the path selection ratio and the mean MAdds per frame; on the
    synthetic benchmark the same figures split by easy and hard frames.
    """
    from edgefuse.eval.evaluate import evaluate_checkpoint
    from edgefuse.eval.report import report_table

    from edgefuse.cli.common import parse_size, progress_bar

    with progress_bar() as bar:
        task = bar.add_task("eval", total=None)
        report = evaluate_checkpoint(checkpoint, str(data), split, batch_size, input_size=parse_size(input_size),
                                     progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(report_table(report, title=f"{checkpoint} on {data}/{split}"))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report, indent=2) + "\n")
        console.print(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
