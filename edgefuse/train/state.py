"""Training state beside the weights: optimiser, scheduler, position and RNG.

Weights go to `last.safetensors` (edgefuse.checkpoint); everything else to
`train_state.pt`, which holds only tensors, numbers, strings, lists and dicts, so it loads
with `torch.load(weights_only=True)` (no pickled code).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from edgefuse.errors import EdgefuseError

STATE_FILE = "train_state.pt"
LAST_WEIGHTS = "last.safetensors"
FORMAT_VERSION = 1


@dataclass
class Position:
    """Where a run is: `stage` index, epochs completed in it, optimiser steps in it."""

    stage: int = 0
    epoch: int = 0
    step: int = 0


def save_state(out_dir: Path, position: Position, optimizer: torch.optim.Optimizer,
               scheduler: Any, rng: list[torch.Tensor], config: dict[str, Any],
               history: list[dict[str, Any]]) -> Path:
    state = {
        "format_version": FORMAT_VERSION,
        "stage": position.stage, "epoch": position.epoch, "step": position.step,
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "rng": rng,             # torch CPU generator state per rank
        "config": config,
        "history": history,
    }
    path = out_dir / STATE_FILE
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    tmp.replace(path)
    return path


def load_state(out_dir: Path) -> dict[str, Any]:
    path = out_dir / STATE_FILE
    if not path.is_file() or not (out_dir / LAST_WEIGHTS).is_file():
        raise EdgefuseError(f"cannot resume: {path} or {out_dir / LAST_WEIGHTS} is missing "
                            "(start without --resume, or point out_dir at an interrupted run)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - corrupt file: say which
        raise EdgefuseError(f"cannot read training state {path}: {exc}") from exc
    if state.get("format_version") != FORMAT_VERSION:
        raise EdgefuseError(f"{path} has format {state.get('format_version')}, expected {FORMAT_VERSION}")
    return state
