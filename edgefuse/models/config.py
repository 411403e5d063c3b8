"""Typed model configuration. Unknown keys raise an error listing the valid ones."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field, replace
from typing import Any

from edgefuse.config import from_dict, to_dict
from edgefuse.errors import ConfigError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# NYUv2 refined depth in millimetres (ESANet; docs/models-and-training.md "ESANet").
NYUV2_DEPTH_MEAN = 2841.95
NYUV2_DEPTH_STD = 1417.26


# raw: the sensor's zero (no measurement) stays 0 after normalising (ESANet's
# inference_samples.py --raw_depth, what a live sensor needs); refined: every value is
# normalised, zero included (ESANet's eval.py on hole-filled depth).
DEPTH_MODES = ("raw", "refined")
# edgefuse: 5x5 convs padded by 2 without bias (BN follows), 1x1 head with bias;
# dynmm: the official DynMM GlobalGate, unpadded 5x5 convs with bias, head without.
GATE_STYLES = ("edgefuse", "dynmm")


class Family(str, enum.Enum):
    ESANET = "esanet"            # static two-encoder fusion (SE-add after stem and stages 1-4)
    DYNMM = "dynmm"              # fusion-level DynMM: gated path set over the fusion cells
    RGB = "rgb"                  # RGB-only single encoder
    DEPTH = "depth"              # depth-only single encoder
    EARLY = "early"              # early fusion: 4-channel RGB-D input
    CEN = "cen"                  # channel exchanging network (shared convs, private BN)
    MODALITY = "dynmm-modality"  # modality-level DynMM: gate picks one expert network


@dataclass(frozen=True)
class CENOptions:
    """CEN (Wang et al. 2020): exchange channels whose |BN gamma| < threshold, inside each
    modality's designated 1/M part of the channels."""

    modalities: tuple[str, ...] = ("rgb", "depth")   # names in edgefuse.models.cen.MODALITY_INPUTS
    threshold: float = 2e-2
    l1_weight: float = 5e-3   # lambda of the l1 term on the designated gammas (paper; code 2e-4)


@dataclass(frozen=True)
class ModalityOptions:
    """Modality-level DynMM: experts are whole networks over a subset of modalities."""

    experts: tuple[str, ...] = ("rgb", "esanet")   # Family values of the expert networks
    gate: str = "conv"                             # conv | mlp | transformer
    # Gate input resolution: the frame average-pooled by `gate_stride` (60x80 at 480x640),
    # or an explicit `gate_size` that divides the input size.
    gate_stride: int = 8
    gate_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if self.gate_stride not in (1, 2, 4, 8, 16, 32):
            raise ConfigError(f"modality gate_stride must be a power of 2 up to 32 (inputs are "
                              f"multiples of 32), got {self.gate_stride}")

    def gate_input_size(self, input_size: tuple[int, int]) -> tuple[int, int]:
        if self.gate_size is not None:
            return tuple(self.gate_size)  # type: ignore[return-value]
        return input_size[0] // self.gate_stride, input_size[1] // self.gate_stride


@dataclass(frozen=True)
class ModelConfig:
    family: Family
    name: str = ""
    encoder: str = "resnet34"
    block: str = "nbt1d"
    width: float = 1.0
    num_classes: int = 40
    class_names: tuple[str, ...] = ()
    input_size: tuple[int, int] = (480, 640)
    decoder_channels: tuple[int, int, int] = (512, 256, 128)
    decoder_blocks: int = 3
    context_bins: tuple[int, ...] = (1, 5)
    paths: str = "progressive"       # dynmm: progressive | exhaustive | '0000,1000,...'
    gate_hidden: int = 8
    rgb_mean: tuple[float, float, float] = IMAGENET_MEAN
    rgb_std: tuple[float, float, float] = IMAGENET_STD
    depth_mean: float = NYUV2_DEPTH_MEAN
    depth_std: float = NYUV2_DEPTH_STD
    cen: CENOptions = field(default_factory=CENOptions)
    modality: ModalityOptions = field(default_factory=ModalityOptions)
    description: str = ""
    # Options that reproduce published architectures exactly (`edgefuse import`, docs/import.md).
    # Their defaults are edgefuse's own design, and `to_dict` leaves them out while they hold
    # their default, so configs, checkpoints and manifests written before them are unchanged.
    context_bn: bool = False         # pyramid-pooling branches conv+BN+ReLU (ESANet) vs conv+bias+ReLU
    depth_mode: str = "raw"          # raw: depth 0 (no measurement) stays 0; refined: every pixel normalised
    gate_style: str = "edgefuse"     # conv gate layout: one of GATE_STYLES (above)
    palette: tuple[tuple[int, int, int], ...] = ()   # void + one colour per class; () = default
    # Fusion-level DynMM: a BatchNorm set per path after the first fusion cell a path may skip
    # (edgefuse/models/path_bn.py); export folds each path's set into its own graph.
    per_path_bn: bool = False

    def __post_init__(self) -> None:
        if self.num_classes < 1:
            raise ConfigError(f"num_classes must be >= 1, got {self.num_classes}")
        if self.class_names and len(self.class_names) != self.num_classes:
            raise ConfigError(f"{len(self.class_names)} class names for {self.num_classes} classes")
        if min(self.input_size) < 32:
            raise ConfigError(f"input_size {self.input_size} is too small (at least 32x32)")
        if self.decoder_blocks < 0:
            raise ConfigError("decoder_blocks must be >= 0")
        if self.depth_mode not in DEPTH_MODES:
            raise ConfigError(f"depth_mode must be one of {', '.join(DEPTH_MODES)}, got {self.depth_mode!r}")
        if self.gate_style not in GATE_STYLES:
            raise ConfigError(f"gate_style must be one of {', '.join(GATE_STYLES)}, got {self.gate_style!r}")
        if self.per_path_bn and self.family is not Family.DYNMM:
            raise ConfigError(f"per_path_bn is an option of fusion-level DynMM (family dynmm), not "
                              f"{self.family.value}: its paths share BatchNorms; drop per_path_bn")
        if self.palette and len(self.palette) != self.num_classes + 1:
            raise ConfigError(f"palette has {len(self.palette)} colours; expected void + {self.num_classes} classes")
        if any(not 0 <= v <= 255 for c in self.palette for v in c):
            raise ConfigError("palette colours are 0..255 RGB triples")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return from_dict(cls, data, where="model config")

    def to_dict(self) -> dict[str, Any]:
        data = to_dict(self)
        for key, default in _OMITTED_AT_DEFAULT.items():
            if data.get(key) == default:
                del data[key]
        return data

    def with_(self, **changes: Any) -> ModelConfig:
        """Copy with changes; unknown keys raise ConfigError listing the valid ones."""
        return ModelConfig.from_dict({**self.to_dict(), **changes})

    @property
    def height(self) -> int:
        return self.input_size[0]

    @property
    def width_px(self) -> int:
        return self.input_size[1]


# Fields added after configs were first written (shipped weights, bundles): omitted from
# to_dict at their default so that every earlier config still serialises byte for byte.
_OMITTED_AT_DEFAULT: dict[str, Any] = {
    "context_bn": False, "depth_mode": "raw", "gate_style": "edgefuse", "palette": [],
    "per_path_bn": False,
}


__all__ = ["Family", "ModelConfig", "CENOptions", "ModalityOptions", "replace"]
