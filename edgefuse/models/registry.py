"""Named model configurations and `build_model`, dispatching on the model family."""

from __future__ import annotations

import importlib
from typing import Any, Callable

from edgefuse.errors import ConfigError
from edgefuse.models.base import InputNorm, SegModel
from edgefuse.models.config import Family, ModalityOptions, ModelConfig
from edgefuse.models.context import check_bins
from edgefuse.models.paths import PathSet
from edgefuse.models.resnet import EncoderSpec

# NYUv2 13-class names (also the synthetic benchmark's classes).
NYU13 = ("bed", "books", "ceiling", "chair", "floor", "furniture", "objects",
         "picture", "sofa", "table", "tv", "wall", "window")

_R34 = dict(encoder="resnet34", block="nbt1d")
_R50 = dict(encoder="resnet50", block="bottleneck", decoder_channels=(128, 128, 128))
_R18 = dict(encoder="resnet18", block="basic")
# Tiny CPU configurations: quarter-width ResNet-18 at 192x256 (6x8 at 1/32, so bins (1, 2)).
_TINY = dict(encoder="resnet18", block="basic", width=0.25, num_classes=13, class_names=NYU13,
             input_size=(192, 256), decoder_channels=(64, 32, 32), decoder_blocks=1,
             context_bins=(1, 2))

_CONFIGS: dict[str, dict[str, Any]] = {
    "esanet-r34-nbt1d": dict(family="esanet", **_R34,
                             description="ESANet's flagship: R34 NonBottleneck1D, NYUv2 40 classes"),
    "esanet-r50": dict(family="esanet", **_R50,
                       description="ESANet-R50 with the decoder the DynMM paper's cost table counts"),
    "dynmm-r50": dict(family="dynmm", **_R50,
                      description="DynMM paper's NYUv2 model: ESANet-R50, progressive 5-path gate"),
    "dynmm-r34-nbt1d": dict(family="dynmm", **_R34,
                            description="Fusion-level DynMM on ESANet's flagship encoder"),
    "rgb-r34-nbt1d": dict(family="rgb", **_R34, description="RGB-only baseline"),
    "depth-r34-nbt1d": dict(family="depth", **_R34, description="Depth-only baseline"),
    "early-r34-nbt1d": dict(family="early", **_R34, description="Early fusion (4-channel) baseline"),
    "cen-r18": dict(family="cen", **_R18, description="CEN: shared ResNet-18 convs, private BN, channel exchange"),
    "dynmm-modality-r18": dict(family="dynmm-modality", **_R18,
                               description="Modality-level DynMM: RGB-only vs ESANet-R18 experts"),
    # Tiny, trainable on 2 CPU cores (the shipped synthetic-benchmark models).
    "dynmm-tiny": dict(family="dynmm", **_TINY, description="Tiny fusion-level DynMM"),
    "esanet-tiny": dict(family="esanet", **_TINY, description="Tiny static fusion (ESANet-style)"),
    "rgb-tiny": dict(family="rgb", **_TINY, description="Tiny RGB-only"),
    "depth-tiny": dict(family="depth", **_TINY, description="Tiny depth-only"),
    "early-tiny": dict(family="early", **_TINY, description="Tiny early fusion"),
    "cen-tiny": dict(family="cen", **_TINY, description="Tiny CEN"),
    "dynmm-modality-tiny": dict(family="dynmm-modality", **_TINY,
                                modality=ModalityOptions(gate_stride=4),
                                description="Tiny modality-level DynMM (RGB-only vs RGB-D experts)"),
}


def list_configs() -> list[str]:
    return sorted(_CONFIGS)


def get_config(name: str, **overrides: Any) -> ModelConfig:
    """The named configuration, with overrides (unknown keys raise ConfigError)."""
    if name not in _CONFIGS:
        import difflib

        close = difflib.get_close_matches(name, _CONFIGS, n=3)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise ConfigError(f"unknown model {name!r}.{hint} Registered: {', '.join(list_configs())} "
                          "(see `edgefuse info`)")
    return ModelConfig.from_dict({**_CONFIGS[name], "name": name, **overrides})


def _norm(cfg: ModelConfig) -> InputNorm:
    return InputNorm(cfg.rgb_mean, cfg.rgb_std, cfg.depth_mean, cfg.depth_std, cfg.depth_mode)


def _encoder(cfg: ModelConfig) -> EncoderSpec:
    return EncoderSpec(cfg.encoder, cfg.block, cfg.width)


def _build_fusion(cfg: ModelConfig) -> SegModel:
    from edgefuse.models.fusion_net import FusionSegNet

    paths = PathSet.full(4) if cfg.family is Family.ESANET else PathSet.parse(cfg.paths, 4)
    return FusionSegNet(_encoder(cfg), cfg.num_classes, paths, cfg.decoder_channels,
                        cfg.decoder_blocks, cfg.context_bins, _norm(cfg), cfg.gate_hidden,
                        cfg.context_bn, cfg.gate_style, cfg.per_path_bn)


def _build_single(cfg: ModelConfig) -> SegModel:
    from edgefuse.models.single_net import InputMode, SingleEncoderSegNet

    mode = {Family.RGB: InputMode.RGB, Family.DEPTH: InputMode.DEPTH, Family.EARLY: InputMode.EARLY}
    return SingleEncoderSegNet(mode[cfg.family], _encoder(cfg), cfg.num_classes, cfg.decoder_channels,
                               cfg.decoder_blocks, cfg.context_bins, _norm(cfg), cfg.context_bn)


def _lazy(path: str) -> Callable[[ModelConfig], SegModel]:
    def build(cfg: ModelConfig) -> SegModel:
        module, fn = path.split(":")
        return getattr(importlib.import_module(module), fn)(cfg)
    return build


BUILDERS: dict[Family, Callable[[ModelConfig], SegModel]] = {
    Family.ESANET: _build_fusion,
    Family.DYNMM: _build_fusion,
    Family.RGB: _build_single,
    Family.DEPTH: _build_single,
    Family.EARLY: _build_single,
    Family.CEN: _lazy("edgefuse.models.cen:build_cen"),
    Family.MODALITY: _lazy("edgefuse.models.modality:build_modality"),
}


def build_model(config: ModelConfig | str, **overrides: Any) -> SegModel:
    """Build a model from a config or a registered name. Checks that the input size suits
    the context module's bins before building (a clear error, not a shape mismatch)."""
    cfg = get_config(config, **overrides) if isinstance(config, str) else (
        config.with_(**overrides) if overrides else config)
    check_bins(cfg.context_bins, *cfg.input_size)
    model = BUILDERS[cfg.family](cfg)
    model.config = cfg  # type: ignore[assignment]
    return model
