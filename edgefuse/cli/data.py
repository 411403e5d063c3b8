"""`edgefuse data synth|prepare-nyuv2`: generate the synthetic benchmark, convert real datasets."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from edgefuse.cli.common import console, parse_size

data_app = typer.Typer(help="Datasets: generate the synthetic RGB-D benchmark, convert NYUv2.", no_args_is_help=True)


def _progress(description: str):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(), console=console)


@data_app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", help="Output folder (new or empty)."),
    frames: int = typer.Option(1000, "--frames", help="Number of frames (train + test)."),
    seed: int = typer.Option(0, "--seed", help="Seed: the same seed gives the same bytes."),
    size: str = typer.Option("192x256", "--size", help="HxW of the images."),
    test_fraction: float = typer.Option(0.2, "--test-fraction", help="Share of frames in the test split."),
    workers: int = typer.Option(min(2, os.cpu_count() or 1), "--workers", help="Parallel render processes."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a dataset already in OUT."),
) -> None:
    """Render the synthetic RGB-D benchmark (procedural rooms, D435-like camera) into OUT."""
    import time

    from edgefuse.data.synth import write_dataset

    hw = parse_size(size, "--size")
    start = time.perf_counter()
    with _progress("rendering") as bar:
        task = bar.add_task("rendering", total=frames, rate="")

        def update(done: int, total: int) -> None:
            rate = done / max(time.perf_counter() - start, 1e-9) * 60
            bar.update(task, completed=done, rate=f"{rate:.0f} frames/min")

        info = write_dataset(out, frames, seed, hw, test_fraction, workers=workers, progress=update,
                             overwrite=overwrite)
    elapsed = time.perf_counter() - start
    hard = ", ".join(f"{split} {'-' if share is None else format(share, '.0%')}"
                     for split, share in info["hard_fraction"].items())
    console.print(f"wrote {info['splits']['train']} train + {info['splits']['test']} test frames to {out} "
                  f"in {elapsed:.1f} s ({frames / elapsed * 60:.0f} frames/min); hard frames {hard}; "
                  f"depth mean {info['depth_mean']:.0f} mm, std {info['depth_std']:.0f} mm")


@data_app.command("prepare-nyuv2")
def prepare_nyuv2(
    mat: Path = typer.Argument(..., help="nyu_depth_v2_labeled.mat (MATLAB v7.3 / HDF5)."),
    out: Path = typer.Option(..., "--out", help="Output folder."),
    splits: Optional[Path] = typer.Option(None, "--splits", help="splits.mat (default: the shipped 795/654 split)."),
) -> None:
    """Convert the official NYUv2 labeled .mat into the ESANet folder layout (rgb, depth, labels_40/13)."""
    from edgefuse.data.nyuv2 import prepare_nyuv2 as convert

    with _progress("converting") as bar:
        task = bar.add_task("converting", total=None, rate="")
        info = convert(mat, out, splits, progress=lambda done, total: bar.update(task, completed=done, total=total))
    console.print(f"wrote {info['splits']['train']} train + {info['splits']['test']} test frames to {out}")


@data_app.command("preview")
def preview(
    root: Path = typer.Argument(..., help="A dataset folder."),
    out: Path = typer.Option(Path("preview.png"), "--out", help="PNG to write."),
    split: str = typer.Option("test", "--split"),
    count: int = typer.Option(8, "--count", help="Frames (rows) in the montage."),
) -> None:
    """Write a montage (RGB | depth, holes in magenta | labels) of a few frames."""
    from edgefuse.data.preview import preview as make_preview

    console.print(f"wrote {make_preview(root, out, split, count)}")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
