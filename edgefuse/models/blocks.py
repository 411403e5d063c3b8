"""Residual blocks: BasicBlock and Bottleneck (torchvision parameter names) and ESANet's
NonBottleneck1D (factorised 3x1/1x3 convs, BN eps 1e-3)."""

from __future__ import annotations

import torch
from torch import nn


def _downsample(c_in: int, c_out: int, stride: int) -> nn.Module | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _downsample(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck (stride on the 3x3 conv), as torchvision."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, c_out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, c_out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class NonBottleneck1D(nn.Module):
    """ERFNet/ESANet block: 3x1 -> ReLU -> 1x3 -> BN -> ReLU -> 3x1 -> ReLU -> 1x3 -> BN, residual."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        eps = 1e-3  # ESANet's NonBottleneck1D uses BN eps 1e-3 (docs/models-and-training.md "ESANet")
        self.conv3x1_1 = nn.Conv2d(c_in, planes, (3, 1), (stride, 1), (1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(planes, planes, (1, 3), (1, stride), (0, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(planes, eps=eps)
        self.conv3x1_2 = nn.Conv2d(planes, planes, (3, 1), 1, (dilation, 0), (dilation, 1), bias=True)
        self.conv1x3_2 = nn.Conv2d(planes, planes, (1, 3), 1, (0, dilation), (1, dilation), bias=True)
        self.bn2 = nn.BatchNorm2d(planes, eps=eps)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _downsample(c_in, planes, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.conv3x1_1(x))
        out = self.relu(self.bn1(self.conv1x3_1(out)))
        out = self.relu(self.conv3x1_2(out))
        out = self.bn2(self.conv1x3_2(out))
        return self.relu(out + identity)


BLOCKS: dict[str, type[nn.Module]] = {
    "basic": BasicBlock,
    "bottleneck": Bottleneck,
    "nbt1d": NonBottleneck1D,
}
