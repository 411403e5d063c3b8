"""ESANet decoder: three modules (3x3 ConvBNAct + NonBottleneck1D blocks + learned x2
upsample, encoder skip added), a 3x3 conv to classes at 1/4, two learned x2 upsamples.
Side outputs (1x1 conv to classes) at 1/32, 1/16, 1/8 in training mode."""

from __future__ import annotations

import torch
from torch import nn

from edgefuse.models.blocks import NonBottleneck1D
from edgefuse.models.layers import ConvBNAct, LearnedUpsample


class DecoderModule(nn.Module):
    def __init__(self, c_in: int, c_out: int, n_blocks: int, num_classes: int) -> None:
        super().__init__()
        self.conv = ConvBNAct(c_in, c_out, 3)
        self.blocks = nn.Sequential(*(NonBottleneck1D(c_out, c_out) for _ in range(n_blocks)))
        self.side = nn.Conv2d(c_out, num_classes, 1)
        self.up = LearnedUpsample(c_out)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = self.blocks(self.conv(x))
        side = self.side(x) if self.training else None
        return self.up(x) + skip, side


class Decoder(nn.Module):
    """Takes the context output (1/32) and the fused encoder skips at 1/16, 1/8, 1/4."""

    def __init__(self, c_context: int, skip_channels: tuple[int, int, int],
                 channels: tuple[int, int, int], n_blocks: int, num_classes: int) -> None:
        super().__init__()
        c16, c8, c4 = skip_channels
        self.module1 = DecoderModule(c_context, channels[0], n_blocks, num_classes)
        self.module2 = DecoderModule(channels[0], channels[1], n_blocks, num_classes)
        self.module3 = DecoderModule(channels[1], channels[2], n_blocks, num_classes)
        # Encoder skips go through a 1x1 ConvBNAct when their width differs (ESANet).
        self.skip16 = ConvBNAct(c16, channels[0], 1) if c16 != channels[0] else nn.Identity()
        self.skip8 = ConvBNAct(c8, channels[1], 1) if c8 != channels[1] else nn.Identity()
        self.skip4 = ConvBNAct(c4, channels[2], 1) if c4 != channels[2] else nn.Identity()
        self.classifier = nn.Conv2d(channels[2], num_classes, 3, padding=1)
        self.up1 = LearnedUpsample(num_classes)
        self.up2 = LearnedUpsample(num_classes)

    def forward(self, context: torch.Tensor, skip16: torch.Tensor, skip8: torch.Tensor,
                skip4: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, ...]:
        x, side32 = self.module1(context, self.skip16(skip16))
        x, side16 = self.module2(x, self.skip8(skip8))
        x, side8 = self.module3(x, self.skip4(skip4))
        out = self.up2(self.up1(self.classifier(x)))
        if self.training:
            return out, side8, side16, side32
        return out
