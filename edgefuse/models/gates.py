"""Gating networks: they map cheap features to logits over the path (or expert) set."""

from __future__ import annotations

import torch
from torch import nn


class ConvGate(nn.Module):
    """DynMM's global convolutional gate on the stem features (REFERENCE.md):
    Conv5x5 s2 -> BN -> Tanh, Conv5x5 s2 -> BN -> Tanh, global average pool, 1x1 conv."""

    def __init__(self, c_in: int, num_paths: int, hidden: int = 8) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(c_in, hidden, 5, 2, 2, bias=False), nn.BatchNorm2d(hidden), nn.Tanh(),
            nn.Conv2d(hidden, hidden, 5, 2, 2, bias=False), nn.BatchNorm2d(hidden), nn.Tanh(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Conv2d(hidden, num_paths, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten(1)
