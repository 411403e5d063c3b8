"""Fusion cells: ESANet's SE-add, squeeze-excite on each modality then element-wise sum."""

from __future__ import annotations

import torch
from torch import nn

from edgefuse.models.layers import SqueezeExcite


class SEAdd(nn.Module):
    """out = SE_rgb(rgb) + SE_depth(depth) (ESANet; DynMM's channel-attention operation O_2)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.se_rgb = SqueezeExcite(channels, reduction)
        self.se_depth = SqueezeExcite(channels, reduction)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.se_rgb(rgb) + self.se_depth(depth)
