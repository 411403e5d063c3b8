"""Gating networks: they map cheap features to logits over the path (or expert) set."""

from __future__ import annotations

import enum

import torch
from torch import nn

from edgefuse.errors import ConfigError


class ConvGate(nn.Module):
    """DynMM's global convolutional gate on the stem features (docs/models-and-training.md "DynMM"):
    Conv5x5 s2 -> BN -> Tanh, Conv5x5 s2 -> BN -> Tanh, global average pool, 1x1 conv."""

    def __init__(self, c_in: int, num_paths: int, hidden: int = 8, style: str = "edgefuse") -> None:
        super().__init__()
        # edgefuse's gate pads its 5x5 convs (centred windows) and drops the bias a BN follows;
        # style "dynmm" is the official GlobalGate's layout (unpadded, conv bias, head without),
        # for weights imported from it (docs/import.md)
        official = style == "dynmm"
        pad = 0 if official else 2
        self.features = nn.Sequential(
            nn.Conv2d(c_in, hidden, 5, 2, pad, bias=official), nn.BatchNorm2d(hidden), nn.Tanh(),
            nn.Conv2d(hidden, hidden, 5, 2, pad, bias=official), nn.BatchNorm2d(hidden), nn.Tanh(),
            nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Conv2d(hidden, num_paths, 1, bias=not official)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x)).flatten(1)

    def forward_parts(self, *parts: torch.Tensor) -> torch.Tensor:
        """forward(cat(parts, dim=1)) without building the concatenation: the first conv is
        linear in its input channels, so it is a sum of one conv per part. Exported, each
        part's conv reads the features where they are (no concat copy, no layout change)."""
        conv = self.features[0]
        y, start = None, 0
        for part in parts:
            c = part.shape[1]
            # the bias (style dynmm) is added once, with the first part
            term = nn.functional.conv2d(part, conv.weight[:, start:start + c], conv.bias if start == 0 else None,
                                        conv.stride, conv.padding)
            y = term if y is None else y + term
            start += c
        if start != conv.in_channels:
            raise ValueError(f"gate parts have {start} channels, the gate takes {conv.in_channels}")
        return self.head(self.features[1:](y)).flatten(1)


def pool_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Average-pool x to exactly `size` with a fixed kernel (the caller checks that size
    divides x; fixed-kernel pooling exports to ONNX where adaptive pooling may not)."""
    h, w = int(x.shape[-2]), int(x.shape[-1])
    if (h, w) == tuple(size):
        return x
    return torch.nn.functional.avg_pool2d(x, kernel_size=(h // size[0], w // size[1]))


class MLPGate(nn.Module):
    """Modality-level DynMM's MLP gate (paper Sec. 4.1: 2-layer MLP, hidden 128) on the gate
    input average-pooled to a coarse `grid`, flattened."""

    def __init__(self, c_in: int, num_paths: int, grid: tuple[int, int] = (6, 8), hidden: int = 128) -> None:
        super().__init__()
        self.grid = tuple(grid)
        self.net = nn.Sequential(nn.Flatten(1), nn.Linear(c_in * grid[0] * grid[1], hidden),
                                 nn.ReLU(inplace=True), nn.Linear(hidden, num_paths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(pool_to(x, self.grid))


class TinyAttentionBlock(nn.Module):
    """Pre-norm transformer encoder block written with plain matmuls (exports to ONNX and is
    counted by flop_counter without relying on fused attention kernels)."""

    def __init__(self, dim: int, heads: int, ff: int) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"transformer gate width {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, ff), nn.GELU(), nn.Linear(ff, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        att = torch.softmax(q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(n, t, d))
        return x + self.ff(self.norm2(x))


class TransformerGate(nn.Module):
    """Modality-level DynMM's transformer gate (paper Sec. 4.2: a tiny transformer with 2
    heads, then a linear layer). Tokens are `patch` x `patch` patches of the gate input
    with a learned position embedding; the token mean feeds the linear head.

    Width 10, not the paper's 5: 5 is not divisible by 2 heads (the official code's gate is
    10 wide)."""

    def __init__(self, c_in: int, num_paths: int, size: tuple[int, int], patch: int = 4,
                 dim: int = 10, heads: int = 2, layers: int = 1) -> None:
        super().__init__()
        if size[0] % patch or size[1] % patch:
            raise ConfigError(f"gate input {size} is not a multiple of the patch size {patch}")
        self.embed = nn.Conv2d(c_in, dim, patch, patch)
        self.pos = nn.Parameter(torch.zeros(1, (size[0] // patch) * (size[1] // patch), dim))
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.blocks = nn.Sequential(*(TinyAttentionBlock(dim, heads, 2 * dim) for _ in range(layers)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_paths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.norm(self.blocks(tokens)).mean(dim=1))


class GateKind(str, enum.Enum):
    CONV = "conv"
    MLP = "mlp"
    TRANSFORMER = "transformer"


def build_gate(kind: str, c_in: int, num_paths: int, size: tuple[int, int], hidden: int = 8) -> nn.Module:
    """A gate over a c_in x size[0] x size[1] input. `hidden` is the conv gate's width."""
    try:
        kind = GateKind(kind)
    except ValueError:
        raise ConfigError(f"unknown gate {kind!r}; choose one of {[k.value for k in GateKind]}") from None
    builders = {
        GateKind.CONV: lambda: ConvGate(c_in, num_paths, hidden),
        GateKind.MLP: lambda: MLPGate(c_in, num_paths, _mlp_grid(size)),
        GateKind.TRANSFORMER: lambda: TransformerGate(c_in, num_paths, size),
    }
    return builders[kind]()


def _mlp_grid(size: tuple[int, int]) -> tuple[int, int]:
    """The coarsest-but-not-trivial grid dividing `size`: about 6 x 8 for 4:3 inputs."""
    def pick(n: int, target: int) -> int:
        return min((d for d in range(1, n + 1) if n % d == 0), key=lambda d: (abs(d - target), d))
    return pick(size[0], 6), pick(size[1], 8)
