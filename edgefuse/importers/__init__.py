"""`edgefuse import`: bring checkpoints published by research repositories into edgefuse,
with the preprocessing their official inference applies (docs/import.md).

A source names a repository and its state-dict layout; the architecture is recognised from
the names and shapes, the edgefuse model that computes exactly the same function is built
(with the config options that reproduce the official architecture), and the weights are
renamed into it. The written checkpoint carries the class list, palette, input size and
depth/RGB normalisation, so export, eval, run and the ROS node apply them from there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.models.config import DEPTH_MODES, ModelConfig

if TYPE_CHECKING:   # torch is imported when a checkpoint is, not with this module
    from edgefuse.models.base import SegModel


@dataclass(frozen=True)
class Source:
    name: str
    repository: str
    gated: bool        # its model has DynMM's fusion-level gate
    prefix: str        # of the model names edgefuse gives its imports


SOURCES: dict[str, Source] = {
    "esanet": Source("esanet", "https://github.com/TUI-NICR/ESANet", False, "esanet"),
    "dynmm": Source("dynmm", "https://github.com/zihuixue/DynMM", True, "dynmm"),
}
UNSUPPORTED = {
    "cen": "CEN's official segmentation model (yikaiw/CEN) is RefineNet-LightWeight on ResNet-101/152 with "
           "shared convolutions: edgefuse has no RefineNet decoder, so it cannot reproduce it yet",
}
SOURCE_NAMES = (*SOURCES, *UNSUPPORTED)


@dataclass
class Imported:
    model: SegModel
    config: ModelConfig
    found: str                               # the recognised architecture, in words
    meta: dict[str, Any] = field(default_factory=dict)


def _short(encoder: str, block: str) -> str:
    return {"resnet18": "r18", "resnet34": "r34", "resnet50": "r50"}[encoder] + ("-nbt1d" if block == "nbt1d" else "")


def import_checkpoint(source: str, path: str | Path, dataset: str | None = None,
                      input_size: tuple[int, int] | None = None, depth_mode: str = "raw",
                      commit: str | None = None) -> Imported:
    from edgefuse.importers import esanet_layout as layout
    from edgefuse.importers.datasets import dataset_preset, preset_for_classes
    from edgefuse.importers.reader import file_sha256, read_state_dict
    from edgefuse.models.registry import build_model

    if source in UNSUPPORTED:
        raise EdgefuseError(UNSUPPORTED[source])
    if source not in SOURCES:
        raise ConfigError(f"unknown source {source!r}; choose one of {', '.join(SOURCE_NAMES)}")
    if depth_mode not in DEPTH_MODES:
        raise ConfigError(f"--depth-mode must be one of {', '.join(DEPTH_MODES)}, got {depth_mode!r}")
    src = SOURCES[source]
    path = Path(path)
    state = read_state_dict(path)
    found = layout.recognise(state)
    if found.gate_paths and not src.gated:
        raise EdgefuseError(f"{path.name} has DynMM's gate (gate_layer.*): import it with `edgefuse import dynmm`")
    if src.gated and not found.gate_paths:
        raise EdgefuseError(f"{path.name} has no gate (gate_layer.* is missing): a static ESANet model is imported "
                            "with `edgefuse import esanet`; a DynMM checkpoint without its gate is truncated")
    preset = dataset_preset(dataset) if dataset else preset_for_classes(found.num_classes)
    if preset is None:
        raise EdgefuseError(f"{found.num_classes} classes match no known dataset; give --dataset")
    if len(preset.classes) != found.num_classes:
        raise EdgefuseError(f"the checkpoint predicts {found.num_classes} classes but {preset.name} has "
                            f"{len(preset.classes)}: wrong --dataset?")
    name = f"{src.prefix}-{_short(found.encoder, found.block)}-{preset.name}"
    config = ModelConfig.from_dict(dict(
        family="dynmm" if found.gate_paths else "esanet", name=name,
        encoder=found.encoder, block=found.block, num_classes=found.num_classes, class_names=preset.classes,
        input_size=tuple(input_size or preset.input_size), decoder_channels=found.decoder_channels,
        decoder_blocks=found.decoder_blocks, context_bins=found.context_bins, paths="progressive",
        gate_hidden=found.gate_hidden, rgb_mean=preset.rgb_mean, rgb_std=preset.rgb_std,
        depth_mean=preset.depth_mean, depth_std=preset.depth_std, context_bn=True, depth_mode=depth_mode,
        gate_style="dynmm", palette=preset.palette,
        description=f"{src.repository.removeprefix('https://github.com/')} {preset.name} model, imported"))
    model = build_model(config)
    target = model.state_dict()
    model.load_state_dict({**target, **layout.to_edgefuse_state(state, target)})
    model.eval()
    meta = {"imported": {
        "source": src.name, "repository": src.repository, "commit": commit, "file": path.name,
        "file_sha256": file_sha256(path), "dataset": preset.name, "architecture": found.describe(),
        "preprocessing": {
            "rgb": f"/255, mean {list(preset.rgb_mean)}, std {list(preset.rgb_std)}",
            "depth": f"millimetres, mean {preset.depth_mean}, std {preset.depth_std}; {preset.depth_note}",
            "depth_mode": depth_mode,
            "missing_depth": ("0 stays 0 after normalising (official --raw_depth)" if depth_mode == "raw"
                              else "normalised like any value (official eval.py on refined depth)"),
            "input_size": list(config.input_size),
        },
        "mask": "value v = class v of the list (official argmax + 1); 0 = void",
    }}
    return Imported(model, config, found.describe(), meta)
