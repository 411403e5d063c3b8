"""Checkpoints: safetensors weights with the model config stored beside them.

A checkpoint is `NAME.safetensors` whose metadata holds `edgefuse_config` (the model
config as JSON) and optional `edgefuse_meta` (JSON: training command, epoch, metrics).
Only JSON is parsed from metadata (never eval), and safetensors cannot carry code.

`load_model(spec)` accepts, wherever a model or checkpoint is asked for:
  - a path to a .safetensors checkpoint (or a .pt state written by `torch.save`, loaded
    with weights_only=True, holding {"config": dict, "state_dict": ...});
  - the name of shipped weights (`edgefuse info --weights`), e.g. `dynmm-tiny-synth`;
  - a registered model name (`edgefuse info`), randomly initialised.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from edgefuse.errors import EdgefuseError
from edgefuse.models.base import SegModel
from edgefuse.models.config import ModelConfig

WEIGHTS_DIR = Path(__file__).parent / "resources" / "weights"


@dataclass
class LoadedModel:
    model: SegModel
    config: ModelConfig
    source: str                        # what the user gave
    kind: str                          # "checkpoint" | "shipped" | "random"
    weights_sha256: str | None = None  # of the state dict tensors (None for random init)
    meta: dict[str, Any] = field(default_factory=dict)


def state_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hash of a state dict's names, dtypes, shapes and bytes (stable across file formats)."""
    h = hashlib.sha256()
    for name in sorted(state):
        t = state[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        # reshape(-1): a 0-dim tensor (BatchNorm num_batches_tracked) cannot be viewed as bytes
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def save_checkpoint(path: str | Path, model: SegModel, meta: dict[str, Any] | None = None) -> Path:
    """Write model weights + config (+ JSON meta) to a .safetensors file, atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    if path.suffix != ".safetensors":
        path = path.with_suffix(".safetensors")
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    meta = dict(meta or {})
    if model.operating_point is not None:   # the routing it was tuned for travels with it
        meta.setdefault("operating_point", model.operating_point.to_dict())
    metadata = {"edgefuse_config": json.dumps(model.config.to_dict()),
                "edgefuse_meta": json.dumps(meta)}
    tmp = path.with_name(path.name + ".tmp")
    save_file(state, str(tmp), metadata=metadata)
    tmp.replace(path)
    return path


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            state = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as exc:  # noqa: BLE001 - corrupt or foreign file: tell the user which
        raise EdgefuseError(f"cannot read checkpoint {path} as safetensors ({exc}); the file is truncated or "
                            "not a safetensors file: copy it again, or give a checkpoint written by "
                            "`edgefuse train`") from exc
    if "edgefuse_config" not in metadata:
        raise EdgefuseError(
            f"{path} has no edgefuse model config in its metadata; it was not written by "
            "edgefuse (for ImageNet backbone weights use --pretrained)")
    try:
        config = json.loads(metadata["edgefuse_config"])
        meta = json.loads(metadata.get("edgefuse_meta", "{}"))
    except json.JSONDecodeError as exc:
        raise EdgefuseError(f"{path}: model config in metadata is not valid JSON ({exc})") from exc
    return state, config, meta


def _read_torch(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any], dict[str, Any]]:
    try:
        with warnings.catch_warnings():
            # The weights-only unpickler warns about what it meets in the file (e.g. "Detected
            # pickle protocol 4") before refusing it; the user gets our one-line error instead
            # of torch's warning and its source line (issue 9).
            warnings.filterwarnings("ignore", module=r"torch\._weights_only_unpickler")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001
        # torch's own message suggests weights_only=False, i.e. running the file's code: never.
        raise EdgefuseError(
            f"cannot read {path} as a weights-only PyTorch checkpoint ({type(exc).__name__}); edgefuse "
            "never unpickles code from a checkpoint. Give a .safetensors / .pt file written by "
            "`edgefuse train`, or a shipped weights name (`edgefuse info --weights`)") from exc
    if not isinstance(obj, dict) or "config" not in obj or ("state_dict" not in obj and "model" not in obj):
        raise EdgefuseError(f"{path} is not an edgefuse checkpoint (expected keys 'config' and 'state_dict'); "
                            "an official ESANet / DynMM checkpoint is brought in with `edgefuse import`")
    return obj.get("state_dict") or obj["model"], obj["config"], obj.get("meta", {})


def read_header(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(model config dict, meta) of a checkpoint without building the model: for a
    .safetensors file only its JSON metadata is read (`edgefuse info CHECKPOINT`)."""
    path = Path(path)
    if not path.is_file():
        raise EdgefuseError(f"checkpoint not found: {path}")
    if path.suffix != ".safetensors":
        _, config, meta = _read_torch(path)
        return config, meta
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - corrupt or foreign file
        raise EdgefuseError(f"cannot read checkpoint {path} as safetensors ({exc}); the file is truncated or "
                            "not a safetensors file") from exc
    if "edgefuse_config" not in metadata:
        raise EdgefuseError(f"{path} has no edgefuse model config in its metadata; it was not written by edgefuse "
                            "(an official ESANet / DynMM .pth is brought in with `edgefuse import`)")
    try:
        return json.loads(metadata["edgefuse_config"]), json.loads(metadata.get("edgefuse_meta", "{}"))
    except json.JSONDecodeError as exc:
        raise EdgefuseError(f"{path}: metadata is not valid JSON ({exc})") from exc


def shipped_weights() -> dict[str, Path]:
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def load_model(spec: str | Path, input_size: tuple[int, int] | None = None,
               strict: bool = True) -> LoadedModel:
    """Build and load a model from a checkpoint path, shipped weights name or registry name."""
    from edgefuse.models.registry import build_model, list_configs

    text = str(spec)
    path = Path(text)
    shipped = shipped_weights()
    if path.suffix in (".safetensors", ".pt", ".pth") or path.exists():
        if not path.is_file():
            raise EdgefuseError(f"checkpoint not found: {path}")
        kind = "checkpoint"
    elif text in shipped:
        path, kind = shipped[text], "shipped"
    elif text in list_configs():
        overrides = {"input_size": input_size} if input_size else {}
        model = build_model(text, **overrides)
        return LoadedModel(model, model.config, text, "random")
    else:
        raise EdgefuseError(
            f"{text!r} is neither a checkpoint file, shipped weights ({', '.join(shipped) or 'none'}) "
            f"nor a registered model ({', '.join(list_configs())})")
    reader = _read_safetensors if path.suffix == ".safetensors" else _read_torch
    state, config_dict, meta = reader(path)
    config = ModelConfig.from_dict(config_dict)
    if input_size:
        config = config.with_(input_size=input_size)
    model = build_model(config)
    try:
        result = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:   # a tensor's shape differs from what the config builds
        first = next((line.strip() for line in str(exc).splitlines() if "size mismatch" in line), str(exc)[:200])
        raise EdgefuseError(
            f"{path}: its weights do not fit the model its config describes ({config.name or config.family.value}): "
            f"{first}. The file was edited or written by an incompatible edgefuse; re-export or retrain "
            "it with this version") from exc
    if strict and (result.missing_keys or result.unexpected_keys):
        raise EdgefuseError(
            f"{path} does not match model {config.name or config.family.value}: "
            f"missing {result.missing_keys[:3]}, unexpected {result.unexpected_keys[:3]}")
    if model.is_dynamic and meta.get("operating_point") is not None:
        from edgefuse.models.operating_point import OperatingPoint

        model.set_operating_point(OperatingPoint.from_dict(meta["operating_point"], model.num_paths, str(path)))
    model.eval()
    return LoadedModel(model, config, text, kind, state_sha256(state), meta)
