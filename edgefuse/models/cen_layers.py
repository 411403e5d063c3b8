"""Layers of the channel exchanging network (CEN, Wang et al. NeurIPS 2020).

M modalities run through one set of convolution weights in lockstep; every BatchNorm is
private to its modality (paper Sec. 3.4). After the BN of each 3x3 convolution (before
the ReLU), modality m's channels inside its *designated* 1/M part whose |gamma| is below
the threshold take the mean of the other modalities' values at those channels (eq. 6;
Sec. 3.3 restricts exchange to the designated part, docs/models-and-training.md "CEN").

The exchange is a channel select with a boolean mask (`torch.where`), never an index_put
on the channels: while training the mask is derived from gamma on every call; after
`freeze()` it is a constant buffer, so a traced graph holds no data-dependent indexing.

Parameter names follow torchvision where they exist (conv1, layer1.0.conv1,
downsample.0); a private BN `bn1` holds one BatchNorm2d per modality as `bn1.bns.<m>`.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

Streams = list[torch.Tensor]


class Tap(nn.Module):
    """A stateless module that calls `fn(*args)`: running a modality's convolutions inside
    its tap makes `torch.utils.flop_counter` attribute them to that modality's named part
    (costs count parts named 'depth*' as depth-encoder work, models/costs.py)."""

    def forward(self, fn: Callable[..., torch.Tensor], *args: torch.Tensor) -> torch.Tensor:
        return fn(*args)


def shared(conv: nn.Module, xs: Streams, taps: Sequence[nn.Module] | None) -> Streams:
    """Apply one (shared) module to every modality's stream, each inside its tap."""
    if taps is None:
        return [conv(x) for x in xs]
    return [tap(conv, x) for tap, x in zip(taps, xs)]


def designated_parts(channels: int, modalities: int) -> torch.Tensor:
    """M x C bool: row m marks modality m's designated part, channels
    [m*C//M, (m+1)*C//M) (the M parts are disjoint and cover every channel)."""
    idx = torch.arange(channels)
    bounds = [m * channels // modalities for m in range(modalities + 1)]
    return torch.stack([(idx >= bounds[m]) & (idx < bounds[m + 1]) for m in range(modalities)])


def exchange(ys: Streams, masks: torch.Tensor, active: Sequence[bool] | None = None) -> Streams:
    """Eq. 6: where masks[m, c], modality m's channel c becomes the mean of the other
    modalities' channel c. Gradients flow to the replacing values, not the replaced ones.
    `active[m]` False (known to exchange nothing) leaves modality m untouched, with no op."""
    out = []
    for m, y in enumerate(ys):
        if active is not None and not active[m]:
            out.append(y)
            continue
        others = [ys[j] for j in range(len(ys)) if j != m]
        mean = others[0] if len(others) == 1 else torch.stack(others).mean(dim=0)
        out.append(torch.where(masks[m].view(1, -1, 1, 1), mean, y))
    return out


class ParallelBN(nn.Module):
    """One BatchNorm2d per modality (private BN, CEN Sec. 3.4)."""

    def __init__(self, channels: int, modalities: int) -> None:
        super().__init__()
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in range(modalities))

    def forward(self, xs: Streams) -> Streams:
        return [bn(x) for bn, x in zip(self.bns, xs)]

    def gammas(self) -> torch.Tensor:
        """M x C BN scaling factors."""
        return torch.stack([bn.weight for bn in self.bns])


class ExchangingBN(ParallelBN):
    """Private BN followed by channel exchange inside each modality's designated part."""

    def __init__(self, channels: int, modalities: int, threshold: float) -> None:
        super().__init__(channels, modalities)
        self.threshold = float(threshold)
        self.register_buffer("part", designated_parts(channels, modalities), persistent=False)
        # Set by freeze(): constant masks, not saved (freezing is a mode, not a weight).
        self.register_buffer("frozen", None, persistent=False)
        self._frozen_any: tuple[bool, ...] = ()

    def masks(self) -> torch.Tensor:
        """M x C bool: the channels each modality takes from the others right now."""
        if self.frozen is not None:
            return self.frozen
        return (self.gammas().detach().abs() < self.threshold) & self.part

    def l1_penalty(self) -> torch.Tensor:
        """Sum of |gamma| over each modality's designated part (the sparsity term of eq. 4)."""
        return (self.gammas().abs() * self.part).sum()

    def freeze(self) -> None:
        self.frozen = self.masks().clone()
        self._frozen_any = tuple(bool(v) for v in self.frozen.any(dim=1))

    def unfreeze(self) -> None:
        self.frozen = None
        self._frozen_any = ()

    def forward(self, xs: Streams) -> Streams:
        ys = super().forward(xs)
        if len(ys) < 2:
            return ys
        if self.frozen is not None:
            # constant masks: modalities that take no channel get no select op in the graph
            return exchange(ys, self.frozen, self._frozen_any)
        return exchange(ys, self.masks())


class ParallelDownsample(nn.Module):
    """Shortcut projection: shared 1x1 conv, private BN (torchvision names downsample.0/.1)."""

    def __init__(self, c_in: int, c_out: int, stride: int, modalities: int) -> None:
        super().__init__()
        self.add_module("0", nn.Conv2d(c_in, c_out, 1, stride, bias=False))
        self.add_module("1", ParallelBN(c_out, modalities))

    def forward(self, xs: Streams, taps: Sequence[nn.Module] | None = None) -> Streams:
        return getattr(self, "1")(shared(getattr(self, "0"), xs, taps))


def _downsample(c_in: int, c_out: int, stride: int, modalities: int) -> ParallelDownsample | None:
    if stride == 1 and c_in == c_out:
        return None
    return ParallelDownsample(c_in, c_out, stride, modalities)


class CENBasicBlock(nn.Module):
    """BasicBlock with exchange after the BN of both 3x3 convs (the paper exchanges at
    'every 3x3 convolutional layer throughout the encoder', Sec. 4.1)."""

    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int, modalities: int, threshold: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = ExchangingBN(planes, modalities, threshold)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = ExchangingBN(planes, modalities, threshold)
        self.downsample = _downsample(c_in, planes, stride, modalities)

    def forward(self, xs: Streams, taps: Sequence[nn.Module] | None = None) -> Streams:
        identity = xs if self.downsample is None else self.downsample(xs, taps)
        out = [F.relu(y) for y in self.bn1(shared(self.conv1, xs, taps))]
        out = self.bn2(shared(self.conv2, out, taps))
        return [F.relu(o + i) for o, i in zip(out, identity)]


class CENBottleneck(nn.Module):
    """Bottleneck with exchange after the 3x3 conv's BN, before its ReLU (official code)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int, modalities: int, threshold: float) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = ParallelBN(planes, modalities)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = ExchangingBN(planes, modalities, threshold)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = ParallelBN(planes * 4, modalities)
        self.downsample = _downsample(c_in, planes * 4, stride, modalities)

    def forward(self, xs: Streams, taps: Sequence[nn.Module] | None = None) -> Streams:
        identity = xs if self.downsample is None else self.downsample(xs, taps)
        out = [F.relu(y) for y in self.bn1(shared(self.conv1, xs, taps))]
        out = [F.relu(y) for y in self.bn2(shared(self.conv2, out, taps))]
        out = self.bn3(shared(self.conv3, out, taps))
        return [F.relu(o + i) for o, i in zip(out, identity)]


CEN_BLOCKS: dict[str, type[nn.Module]] = {"basic": CENBasicBlock, "bottleneck": CENBottleneck}


class CENStage(nn.ModuleList):
    """A residual stage over M streams (names layerN.<j>.* as torchvision)."""

    def forward(self, xs: Streams, taps: Sequence[nn.Module] | None = None) -> Streams:  # type: ignore[override]
        for block in self:
            xs = block(xs, taps)
        return xs


class CENEncoder(nn.Module):
    """Shared-weight ResNet over M modality streams: conv1 shared (inputs broadened to the
    same channel count), bn1 private, stages layer1..layer4 with exchanging blocks."""

    def __init__(self, layers: tuple[int, int, int, int], block: str, base: int, in_channels: int,
                 modalities: int, threshold: float) -> None:
        super().__init__()
        cls = CEN_BLOCKS[block]
        self.conv1 = nn.Conv2d(in_channels, base, 7, 2, 3, bias=False)
        self.bn1 = ParallelBN(base, modalities)
        c_in = base
        for i, n in enumerate(layers):
            planes = base * 2**i
            blocks = []
            for j in range(n):
                blocks.append(cls(c_in, planes, (1 if i == 0 else 2) if j == 0 else 1, modalities, threshold))
                c_in = planes * cls.expansion  # type: ignore[attr-defined]
            self.add_module(f"layer{i + 1}", CENStage(blocks))

    def stem(self, xs: Streams, taps: Sequence[nn.Module] | None = None) -> Streams:
        """conv1 -> private bn1 -> relu -> max-pool (no exchange in the stem, as the official code)."""
        return [F.max_pool2d(F.relu(y), 3, 2, 1) for y in self.bn1(shared(self.conv1, xs, taps))]

    def exchanging_bns(self) -> dict[str, ExchangingBN]:
        return {n: m for n, m in self.named_modules() if isinstance(m, ExchangingBN)}
