"""`edgefuse tune MODEL --data DIR --target TARGET --out CKPT`: choose a dynamic model's
operating point (the cost bias on its gate) on your data (edgefuse/eval/tune.py)."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import List, Optional

import typer

from edgefuse.cli.common import console


def tune_command(
    model: str = typer.Argument(..., help="Dynamic checkpoint (.safetensors) or shipped weights name."),
    data: List[Path] = typer.Option(..., "--data", help="Tuning dataset folder; repeat to pool several. "
                                                        "Never the split you will report results on."),
    target: str = typer.Option(..., "--target", help="What to aim for: match:SPEC[+POINTS] (>= SPEC's mIoU on "
                                                     "the same frames at the fewest MAdds), miou:X, full:D, "
                                                     "madds:F, madds:F@P (the MAdds bound held on P% of "
                                                     "200-frame splits resampled from the tuning frames)."),
    out: Path = typer.Option(..., "--out", help="The new checkpoint (.safetensors): the same weights with the "
                                                "chosen operating point."),
    split: str = typer.Option("test", "--split", help="Split of each --data folder to tune on."),
    batch_size: int = typer.Option(4, "--batch-size", help="Frames per forward."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write the choice and the bias curve as JSON."),
) -> None:
    """Choose the cost bias a dynamic model routes with, for a stated target, on your data.

    Runs every path on every frame once, then scores the gate under every cost bias (the
    runtime budget's bias, fixed) and keeps the one the target picks. The new checkpoint is
    used by eval, export and the runtime as is; `edgefuse eval --oracle` marks its point.
    """
    from edgefuse.checkpoint import load_model
    from edgefuse.data.dataset import SegmentationDataset
    from edgefuse.errors import EdgefuseError
    from edgefuse.eval.tune import Target, tune, write_checkpoint

    goal = Target.parse(target)
    if out.suffix != ".safetensors":
        raise EdgefuseError(f"--out {out}: give a .safetensors file name")
    for d in data:
        if not d.is_dir():
            raise EdgefuseError(f"--data {d}: no such folder (make one with `edgefuse data synth` or give a dataset)")
    loaded = load_model(model)
    if not loaded.model.is_dynamic:
        raise EdgefuseError(f"{model} is static (one path): only a dynamic model has a gate to tune")
    loaded.model.set_operating_point(None)      # tune the raw gate
    reference = load_model(goal.spec).model if goal.kind == "match" else None
    datasets = [SegmentationDataset(d, split) for d in data]
    label = " + ".join(f"{d}/{split}" for d in data)
    with console.status("scoring every path on every frame"):
        op, report = tune(loaded.model, datasets, goal, label, batch_size, reference)
    command = " ".join(shlex.quote(a) for a in ["edgefuse", "tune", model, *sum((["--data", str(d)] for d in data), []),
                                                "--split", split, "--target", target, "--out", str(out)])
    path = write_checkpoint(model, out, op, command)
    full = report["full_path"]
    ref = report["reference"]
    console.print(f"tuned on {report['frames']} frames of {label}: cost bias strength {op.strength:.4f} "
                  f"({report['bias']:+.2f} logit ranges)")
    console.print(f"  gate: mIoU {100 * report['miou']:.2f}, {report['mean_madds'] / 1e9:.4f} GMAC "
                  f"({100 * report['mean_madds'] / full['mean_madds']:.1f}% of the full path's, which scores "
                  f"{100 * full['miou']:.2f})")
    if "madds_bound" in report:
        b = report["madds_bound"]
        console.print(f"  at most {b['madds'] / 1e9:.4f} GMAC ({100 * b['madds'] / full['mean_madds']:.1f}%) on "
                      f"{100 * b['confidence']:g}% of {b['split_frames']}-frame splits resampled from these frames")
    if ref is not None:
        console.print(f"  {ref['spec']}: mIoU {100 * ref['miou']:.2f}, {ref['mean_madds'] / 1e9:.4f} GMAC "
                      f"(gate at {100 * report['mean_madds'] / ref['mean_madds']:.1f}% of its MAdds)")
    if not report["met"]:
        console.print(f"[yellow]target {goal} not reached on this data: kept the point with the best "
                      f"mIoU[/]" if goal.kind != "madds" else
                      f"[yellow]target {goal} not reached on this data: kept the cheapest point[/]")
    console.print(f"wrote {path}")
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps({"model": model, "data": label, "command": command, **report,
                                        "operating_point": op.to_dict()}, indent=2) + "\n")
        console.print(f"wrote {json_out}")


def register(app: typer.Typer) -> None:
    app.command("tune")(tune_command)
