"""ResNet encoders (18/34 with BasicBlock or NonBottleneck1D, 50 with Bottleneck).

Parameter names follow torchvision's ResNet (conv1, bn1, layer1.0.conv1, ...), so an
ImageNet state dict from a *local* file loads directly (see `load_pretrained`). The encoder
exposes its stages separately because fusion happens between them (ESANet): `stem` is
conv1-bn1-relu at 1/2 resolution *before* max-pooling.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.models.blocks import BLOCKS

LAYERS: dict[str, tuple[int, int, int, int]] = {
    "resnet18": (2, 2, 2, 2),
    "resnet34": (3, 4, 6, 3),
    "resnet50": (3, 4, 6, 3),
}


@dataclass(frozen=True)
class EncoderSpec:
    arch: str = "resnet34"
    block: str = "nbt1d"
    width: float = 1.0

    def __post_init__(self) -> None:
        if self.arch not in LAYERS:
            raise ConfigError(f"unknown encoder {self.arch!r}; choose one of {sorted(LAYERS)}")
        if self.block not in BLOCKS:
            raise ConfigError(f"unknown block {self.block!r}; choose one of {sorted(BLOCKS)}")
        if (self.arch == "resnet50") != (self.block == "bottleneck"):
            raise ConfigError(
                f"{self.arch} with block {self.block!r} is not a ResNet: resnet50 uses "
                "'bottleneck'; resnet18/34 use 'basic' or 'nbt1d'")
        if not 0.0 < self.width <= 4.0:
            raise ConfigError(f"encoder width multiplier must be in (0, 4], got {self.width}")

    @property
    def base(self) -> int:
        return max(8, int(round(64 * self.width)))

    @property
    def stage_channels(self) -> tuple[int, int, int, int]:
        exp = BLOCKS[self.block].expansion  # type: ignore[attr-defined]
        b = self.base
        return (b * exp, 2 * b * exp, 4 * b * exp, 8 * b * exp)


class ResNetEncoder(nn.Module):
    def __init__(self, spec: EncoderSpec, in_channels: int = 3) -> None:
        super().__init__()
        self.spec = spec
        block = BLOCKS[spec.block]
        b = spec.base
        self.conv1 = nn.Conv2d(in_channels, b, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(b)
        self.relu = nn.ReLU(inplace=True)
        c_in = b
        for i, n in enumerate(LAYERS[spec.arch]):
            planes = b * 2**i
            stride = 1 if i == 0 else 2
            blocks = []
            for j in range(n):
                blocks.append(block(c_in, planes, stride if j == 0 else 1))
                c_in = planes * block.expansion  # type: ignore[attr-defined]
            self.add_module(f"layer{i + 1}", nn.Sequential(*blocks))
        self.stem_channels = b
        self.stage_channels = spec.stage_channels

    def stem(self, x: torch.Tensor) -> torch.Tensor:
        """conv1 -> bn1 -> relu, at 1/2 resolution (fusion happens before max-pooling)."""
        return self.relu(self.bn1(self.conv1(x)))

    @staticmethod
    def pool(x: torch.Tensor) -> torch.Tensor:
        return F.max_pool2d(x, 3, 2, 1)

    def stage(self, i: int, x: torch.Tensor) -> torch.Tensor:
        """Run residual stage i (1..4)."""
        return getattr(self, f"layer{i}")(x)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.pool(self.stem(x))
        feats = []
        for i in range(1, 5):
            x = self.stage(i, x)
            feats.append(x)
        return feats


def load_pretrained(encoder: ResNetEncoder, path: str | Path) -> list[str]:
    """Load torchvision-named ImageNet weights from a local file into `encoder`.

    A 1-channel (depth) encoder takes conv1 summed over the RGB input channels (ESANet).
    The classifier (fc.*) is ignored. Returns the list of encoder keys left uninitialised.
    Loading uses weights_only=True (or safetensors): a checkpoint can't run code.
    """
    path = Path(path)
    if not path.is_file():
        raise EdgefuseError(f"pretrained weights file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path))
    else:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # noqa: BLE001 - any unpickling failure is a user file problem
            raise EdgefuseError(f"cannot read {path} as a weights-only PyTorch state dict: {exc}") from exc
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise EdgefuseError(f"{path} does not hold a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items() if not k.startswith("fc.")}
    w = state.get("conv1.weight")
    in_ch = encoder.conv1.weight.shape[1]
    if w is not None and w.shape[1] != in_ch:
        if in_ch == 1:
            state["conv1.weight"] = w.sum(dim=1, keepdim=True)
        elif in_ch == 4 and w.shape[1] == 3:
            # early fusion (RGB + depth as a 4th channel): RGB filters as trained, the depth
            # channel their mean, so the pretrained response scale is kept
            state["conv1.weight"] = torch.cat([w, w.mean(dim=1, keepdim=True)], dim=1)
        else:
            raise EdgefuseError(f"conv1 of {path} has {w.shape[1]} input channels; encoder expects {in_ch}")
    own = encoder.state_dict()
    mismatched = [k for k, v in state.items() if k in own and own[k].shape != v.shape]
    if mismatched:
        raise EdgefuseError(
            f"{path} does not match the encoder ({encoder.spec.arch}, block {encoder.spec.block}, "
            f"width {encoder.spec.width}): shape mismatch in {mismatched[:3]}")
    result = encoder.load_state_dict(state, strict=False)
    if not set(own) - set(result.missing_keys):
        raise EdgefuseError(f"{path} has no parameter matching a torchvision ResNet")
    return list(result.missing_keys)
