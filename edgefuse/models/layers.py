"""Small building blocks shared by every model: conv-BN-act, squeeze-excite, learned upsampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNAct(nn.Sequential):
    """Conv -> BatchNorm -> ReLU (ESANet's ConvBNAct)."""

    def __init__(self, c_in: int, c_out: int, kernel_size: int = 1, stride: int = 1,
                 act: bool = True) -> None:
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, c_out, kernel_size, stride, padding=kernel_size // 2, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        if act:
            layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


def channel_scale(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x * scale for a per-channel scale (N x C x 1 x 1).

    Exported to ONNX, the scale is first brought to x's shape (a 1x1 identity depthwise conv,
    then a nearest Resize): ONNX Runtime's blocked (NCHWc) CPU layout keeps a Mul only when
    both operands have one shape (its nchwc_transformer.cc leaves broadcast Muls out), so a
    broadcast scale costs two layout conversions of the full-size x. In the stem, at the
    largest resolution of the network, that was a large share of the graph's time (issue 10,
    `benchmarks/stem_profile.py`). The
    result is the same number for number; eager PyTorch multiplies directly."""
    if not torch.onnx.is_in_onnx_export():
        return x * scale
    c = scale.shape[1]
    scale = F.conv2d(scale, torch.ones(c, 1, 1, 1, dtype=scale.dtype, device=scale.device), groups=c)
    h, w = int(x.shape[-2]), int(x.shape[-1])
    return x * F.interpolate(scale, scale_factor=(float(h), float(w)), mode="nearest")


class SqueezeExcite(nn.Module):
    """Channel attention (Hu et al.): avgpool -> 1x1 -> ReLU -> 1x1 -> sigmoid, reweights x."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        hidden = max(channels // reduction, 1)
        self.fc = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Conv2d(channels, hidden, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(x)


class LearnedUpsample(nn.Module):
    """x2 nearest upsampling followed by a depthwise 3x3 conv initialised to a bilinear kernel.

    ESANet's "learned-3x3-zeropad": bilinear resize caused TensorRT conversion problems
    (docs/models-and-training.md "ESANet"), nearest + depthwise conv exports cleanly and can still learn.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)
        kernel = torch.tensor([[0.0625, 0.125, 0.0625], [0.125, 0.25, 0.125], [0.0625, 0.125, 0.0625]])
        with torch.no_grad():
            self.conv.weight.copy_(kernel.expand(channels, 1, 3, 3))
            self.conv.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))
