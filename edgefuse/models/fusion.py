"""Fusion cells: ESANet's SE-add, squeeze-excite on each modality then element-wise sum."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from edgefuse.models.layers import SqueezeExcite, channel_scale


class SEAdd(nn.Module):
    """out = SE_rgb(rgb) + SE_depth(depth) (ESANet; DynMM's channel-attention operation O_2)."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.se_rgb = SqueezeExcite(channels, reduction)
        self.se_depth = SqueezeExcite(channels, reduction)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
        return self.se_rgb(rgb) + self.se_depth(depth)

    def pooled(self, rgb: torch.Tensor, depth: torch.Tensor,
               pool: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """pool(forward(rgb, depth)) for a max pool, with one full-resolution pass fewer.

        rgb * s_r + depth * s_d = s_r * (rgb + depth * (s_d / s_r)), and a max pool commutes
        with a positive per-channel scale, so s_r is applied after pooling, on 1/4 of the
        pixels. The stem fusion runs at the largest resolution of the network, where these
        element-wise passes cost more than their convolutions suggest (issue 10). s_r is a
        sigmoid, > 0; the clamp keeps an underflowed one from dividing by zero."""
        s_r = self.se_rgb.fc(rgb).clamp_min(1e-30)
        s_d = self.se_depth.fc(depth)
        return channel_scale(pool(rgb + channel_scale(depth, s_d / s_r)), s_r)
