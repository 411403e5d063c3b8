"""PSP-style context module at 1/32 resolution (ESANet 'ppm', bins (1, 5))."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from edgefuse.errors import ConfigError
from edgefuse.models.layers import ConvBNAct


def nearest_valid_size(bins: tuple[int, ...], height: int, width: int) -> tuple[int, int]:
    """The input size closest to (height, width) that the encoder (32x) and every bin allow:
    H/32 and W/32 multiples of lcm(bins)."""
    step = 32 * math.lcm(*bins) if bins else 32
    return (max(step, round(height / step) * step), max(step, round(width / step) * step))


def check_bins(bins: tuple[int, ...], height: int, width: int) -> None:
    """Each bin must divide the 1/32 feature map, or fixed-kernel pooling (and ONNX export of
    adaptive pooling) is wrong (docs/models-and-training.md "ESANet"). Raise a ConfigError naming the nearest size
    that works."""
    h, w = nearest_valid_size(bins, height, width)
    if height % 32 or width % 32:
        raise ConfigError(
            f"input size {height}x{width} is not a multiple of 32 (the encoder downsamples 32x); "
            f"try {h}x{w} (the nearest size context bins {tuple(bins)} also allow)")
    fh, fw = height // 32, width // 32
    bad = [b for b in bins if fh % b or fw % b]
    if bad:
        raise ConfigError(
            f"input size {height}x{width} gives a {fh}x{fw} feature map at 1/32, which context "
            f"bin(s) {bad} do not divide; try {h}x{w} (H/32 and W/32 multiples of "
            f"{math.lcm(*bins)}) or change context_bins")


class PyramidPooling(nn.Module):
    """Pool at each bin size, 1x1 conv, upsample, concatenate with the input, 1x1 conv.

    Pooling uses a fixed kernel (size // bin), equal to adaptive pooling when the bin
    divides the size; export is static-shape, so the kernel becomes a constant.
    """

    def __init__(self, c_in: int, c_out: int, bins: tuple[int, ...] = (1, 5), bn: bool = False) -> None:
        super().__init__()
        self.bins = tuple(bins)
        reduction = max(c_in // len(self.bins), 1)
        # Pooled branches use conv+bias+ReLU by default, not BN: DynMM training groups a batch
        # by path, and BN cannot train on a group of one sample pooled to 1x1. `bn=True` is
        # ESANet's own conv+BN+ReLU, for weights imported from it (docs/import.md).
        self.branches = nn.ModuleList(self._branch(c_in, reduction, bn) for _ in self.bins)
        self.final = ConvBNAct(c_in + reduction * len(self.bins), c_out, 1)

    @staticmethod
    def _branch(c_in: int, c_out: int, bn: bool) -> nn.Sequential:
        if bn:
            return nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))
        return nn.Sequential(nn.Conv2d(c_in, c_out, 1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])
        outs = [x]
        for b, conv in zip(self.bins, self.branches):
            if h % b or w % b:
                raise ConfigError(f"context bin {b} does not divide the {h}x{w} feature map")
            y = F.avg_pool2d(x, kernel_size=(h // b, w // b))
            y = conv(y)
            outs.append(F.interpolate(y, size=(h, w), mode="nearest"))
        return self.final(torch.cat(outs, dim=1))
