"""Static single-encoder baselines: RGB-only, depth-only, and early fusion (RGB-D stacked
into a 4-channel input). Same context module and decoder as the fusion network."""

from __future__ import annotations

import enum

import torch
from torch import nn

from edgefuse.models.base import Features, InputNorm, SegModel
from edgefuse.models.context import PyramidPooling
from edgefuse.models.decoder import Decoder
from edgefuse.models.paths import PathSet
from edgefuse.models.resnet import EncoderSpec, ResNetEncoder


class InputMode(str, enum.Enum):
    RGB = "rgb"
    DEPTH = "depth"
    EARLY = "rgbd"


_IN_CHANNELS = {InputMode.RGB: 3, InputMode.DEPTH: 1, InputMode.EARLY: 4}


class SingleEncoderSegNet(SegModel):
    feature_names = ("feat",)

    def __init__(self, mode: InputMode, encoder: EncoderSpec, num_classes: int,
                 decoder_channels: tuple[int, int, int], decoder_blocks: int,
                 context_bins: tuple[int, ...], norm: InputNorm, context_bn: bool = False) -> None:
        super().__init__()
        self.mode = InputMode(mode)
        self.paths = PathSet.none(4)
        self.norm = norm
        self.encoder = ResNetEncoder(encoder, _IN_CHANNELS[self.mode])
        stages = self.encoder.stage_channels
        self.context = PyramidPooling(stages[3], decoder_channels[0], context_bins, context_bn)
        self.decoder = Decoder(decoder_channels[0], (stages[2], stages[1], stages[0]),
                               decoder_channels, decoder_blocks, num_classes)

    def _input(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        if self.mode is InputMode.RGB:
            return self.norm.rgb(rgb)
        if self.mode is InputMode.DEPTH:
            return self.norm.depth(depth)
        return torch.cat([self.norm.rgb(rgb), self.norm.depth(depth)], dim=1)

    def stem(self, rgb: torch.Tensor, depth: torch.Tensor) -> Features:
        return {"feat": ResNetEncoder.pool(self.encoder.stem(self._input(rgb, depth)))}

    def path_parts(self, k: int) -> dict[str, nn.Module]:
        # Part names say which encoder a part belongs to: costs count parts named "depth*"
        # as depth encoder work (models/costs.py).
        prefix = self.mode.value
        parts: dict[str, nn.Module] = {f"{prefix}{i}": getattr(self.encoder, f"layer{i}") for i in range(1, 5)}
        parts["context"] = self.context
        parts["decoder"] = self.decoder
        return parts

    def run_path(self, k: int, feats: Features):
        return self.run_path_with(self.path_parts(k), k, feats)

    def depth_stem(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor | None:
        if self.mode is InputMode.DEPTH:
            return self.encoder.stem(self.norm.depth(depth))
        return None

    def run_path_with(self, parts, k: int, feats: Features):
        x = feats["feat"]
        skips = []
        for i in range(1, 5):
            x = parts[f"{self.mode.value}{i}"](x)
            skips.append(x)
        return parts["decoder"](parts["context"](x), skips[2], skips[1], skips[0])
