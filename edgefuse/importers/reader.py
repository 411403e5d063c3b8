"""Read a checkpoint written by a research repository's training script, without running code.

ESANet's and DynMM's training scripts save `{'epoch', 'state_dict', 'optimizer'}` (some
also `best_miou`, a numpy scalar) with `torch.save`. Loading uses `weights_only=True`: the
unpickler builds tensors, containers and numbers only. Numpy scalars and dtypes are allowed
in addition (pure data); anything else, a class or function the file would import, is
refused with one line saying so.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import torch

from edgefuse.errors import EdgefuseError


def _numpy_data_types() -> list:
    """numpy's scalar reconstructor and dtype classes: what a pickled numpy float needs."""
    import numpy as np

    try:
        from numpy.core.multiarray import scalar   # numpy < 2 name, still importable in 2.x
    except ImportError:  # pragma: no cover - numpy without the old alias
        from numpy._core.multiarray import scalar  # type: ignore[no-redef]
    kinds = [scalar, np.dtype]
    kinds += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    return kinds


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The model state dict inside an official checkpoint (a dict with 'state_dict', or a
    bare state dict), names without DataParallel's 'module.' prefix."""
    path = Path(path)
    if not path.is_file():
        raise EdgefuseError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings(), torch.serialization.safe_globals(_numpy_data_types()):
            warnings.filterwarnings("ignore", module=r"torch\._weights_only_unpickler")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - every failure here is about the user's file
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Unsupported global" in str(exc) or "WeightsUnpickler" in str(exc):
            reason = ("it needs code to load (edgefuse never unpickles classes or functions from a "
                      "checkpoint: save the state dict alone with torch.save(model.state_dict(), path))")
        elif "zip" in str(exc).lower() or "EOF" in str(exc) or "pickle" in str(exc).lower():
            reason = f"the file is truncated or not a PyTorch checkpoint ({reason}); download it again"
        raise EdgefuseError(f"cannot read {path} as a weights-only PyTorch checkpoint: {reason}") from exc
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if isinstance(obj, dict) and "model" in obj and "state_dict" not in obj and isinstance(obj["model"], dict):
        state = obj["model"]
    if not isinstance(state, dict) or not state:
        raise EdgefuseError(f"{path} holds no state dict (expected a dict with 'state_dict', as the official "
                            "training scripts save, or a state dict itself)")
    tensors = {str(k).removeprefix("module."): v for k, v in state.items() if isinstance(v, torch.Tensor)}
    if not tensors:
        raise EdgefuseError(f"{path}: its state dict holds no tensors")
    return tensors
