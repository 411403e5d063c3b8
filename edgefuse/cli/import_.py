"""`edgefuse import {esanet,dynmm,cen} CHECKPOINT --out OUT.safetensors`: a published
checkpoint as an edgefuse checkpoint (docs/import.md). Thin: flags -> edgefuse.importers."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Optional

import typer

from edgefuse.cli.common import console, parse_size


class SourceChoice(str, enum.Enum):
    ESANET = "esanet"
    DYNMM = "dynmm"
    CEN = "cen"


class DatasetChoice(str, enum.Enum):
    NYUV2 = "nyuv2"
    SUNRGBD = "sunrgbd"
    CITYSCAPES = "cityscapes"


class DepthModeChoice(str, enum.Enum):
    RAW = "raw"
    REFINED = "refined"


def import_(
    source: SourceChoice = typer.Argument(..., help="Repository the checkpoint comes from."),
    checkpoint: Path = typer.Argument(..., help="The .pth file its training script wrote (weights-only load)."),
    out: Path = typer.Option(..., "--out", "-o", help="edgefuse checkpoint to write (.safetensors)."),
    dataset: Optional[DatasetChoice] = typer.Option(None, "--dataset",
                                                    help="Dataset it was trained on (default: from the class "
                                                         "count: 40 nyuv2, 37 sunrgbd)."),
    input_size: Optional[str] = typer.Option(None, "--input-size", help="HxW (default: the dataset's, 480x640)."),
    depth_mode: DepthModeChoice = typer.Option(DepthModeChoice.RAW, "--depth-mode",
                                               help="raw: missing depth (0) stays 0 after normalising (official "
                                                    "inference_samples.py --raw_depth; live sensors). refined: "
                                                    "every value normalised (official eval.py on hole-filled "
                                                    "depth)."),
    commit: Optional[str] = typer.Option(None, "--commit", help="Commit of the repository that trained it "
                                                                "(recorded as provenance)."),
    force: bool = typer.Option(False, "--force", help="Replace an existing OUT."),
) -> None:
    """Import an official ESANet / DynMM checkpoint, with its preprocessing and classes."""
    from edgefuse.checkpoint import save_checkpoint
    from edgefuse.errors import EdgefuseError
    from edgefuse.importers import import_checkpoint

    if out.suffix != ".safetensors":
        raise EdgefuseError(f"--out {out}: edgefuse checkpoints are .safetensors files")
    if out.exists() and not force:
        raise EdgefuseError(f"{out} exists; pass --force to replace it")
    if dataset is DatasetChoice.CITYSCAPES:
        raise EdgefuseError("ESANet's Cityscapes models use adaptive pyramid pooling (appm) at 512x1024 and "
                            "disparity-derived depth: not supported yet; nyuv2 and sunrgbd are")
    result = import_checkpoint(source.value, checkpoint, dataset.value if dataset else None,
                               parse_size(input_size), depth_mode.value, commit)
    path = save_checkpoint(out, result.model, result.meta)
    info = result.meta["imported"]
    pre = info["preprocessing"]
    console.print(f"found: {result.found}", highlight=False)
    console.print(f"dataset: {info['dataset']} ({result.config.num_classes} classes; mask value v = class v, "
                  "0 = void)", highlight=False)
    console.print(f"preprocessing: RGB {pre['rgb']}; depth {pre['depth']}; missing depth: {pre['missing_depth']}; "
                  f"input {result.config.input_size[0]}x{result.config.input_size[1]}", highlight=False)
    console.print(f"wrote {path} (model {result.config.name}); next: edgefuse export {path} --out BUNDLE",
                  highlight=False)


def register(app: typer.Typer) -> None:
    app.command("import")(import_)
