"""Augmentation and resizing for RGB-D segmentation samples (ESANet's recipe).

Train: resize to the input size, random scale 1.0-1.4 then random crop back to it, random
horizontal flip, HSV jitter on RGB only. Eval: resize only. Depth and labels are resized
with nearest neighbour, so an invalid depth pixel (0) stays exactly 0 and never blends
into a fake "near" value, and labels stay labels. Every random draw comes from the
Generator passed in: the same Generator state gives the same output.

A sample is {"rgb": HxWx3 uint8, "depth": HxW float32 mm, "label": HxW int64}.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from edgefuse.config import from_dict
from edgefuse.errors import ConfigError

Sample = dict[str, np.ndarray]


@dataclass(frozen=True)
class TransformConfig:
    """Train-time augmentation; unknown keys are rejected (edgefuse.config.from_dict)."""

    size: tuple[int, int] = (192, 256)            # output H, W
    scale: tuple[float, float] = (1.0, 1.4)       # random rescale range before the crop
    flip: bool = True                             # random horizontal flip (p = 0.5)
    hue_deg: float = 10.0                         # hue shift drawn from +-hue_deg degrees
    saturation: tuple[float, float] = (0.9, 1.1)  # saturation scale range
    value: float = 25.0                           # brightness shift drawn from +-value (0..255)

    def __post_init__(self) -> None:
        if min(self.size) < 1:
            raise ConfigError(f"TransformConfig.size must be positive, got {self.size}")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ConfigError(f"TransformConfig.scale must be 0 < low <= high, got {self.scale}")
        if self.scale[0] < 1.0:
            raise ConfigError("TransformConfig.scale below 1.0 would need padding; use a range >= 1.0 (ESANet: 1.0-1.4)")


def resize_nearest(array: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of an HxW(xC) array (pixel-centre aligned)."""
    h, w = array.shape[:2]
    oh, ow = size
    rows = np.minimum(((np.arange(oh) + 0.5) * h / oh).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(ow) + 0.5) * w / ow).astype(np.int64), w - 1)
    return array[rows[:, None], cols[None, :]]


def resize_rgb(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if rgb.shape[:2] == tuple(size):
        return rgb
    return np.asarray(Image.fromarray(rgb).resize((size[1], size[0]), Image.BILINEAR))


def resize_sample(sample: Sample, size: tuple[int, int]) -> Sample:
    """RGB bilinear, depth and labels nearest."""
    if sample["rgb"].shape[:2] == tuple(size):
        return dict(sample)
    return {**sample, "rgb": resize_rgb(sample["rgb"], size), "depth": resize_nearest(sample["depth"], size),
            "label": resize_nearest(sample["label"], size)}


def hsv_jitter(rgb: np.ndarray, rng: np.random.Generator, hue_deg: float, saturation: tuple[float, float],
               value: float) -> np.ndarray:
    dh = rng.uniform(-hue_deg, hue_deg) / 360.0 * 256.0
    ds = rng.uniform(*saturation)
    dv = rng.uniform(-value, value)
    hsv = np.asarray(Image.fromarray(rgb).convert("HSV")).astype(np.float32)
    hsv[..., 0] = np.mod(hsv[..., 0] + dh, 256.0)
    hsv[..., 1] *= ds
    hsv[..., 2] += dv
    hsv = np.clip(np.round(hsv), 0, 255).astype(np.uint8)
    chans = [Image.fromarray(np.ascontiguousarray(hsv[..., i])) for i in range(3)]
    return np.asarray(Image.merge("HSV", chans).convert("RGB"))


def numpy_rng(generator) -> np.random.Generator:
    """A numpy Generator from a numpy or torch Generator (one draw from the torch one)."""
    if isinstance(generator, np.random.Generator):
        return generator
    import torch

    if isinstance(generator, torch.Generator):
        return np.random.default_rng(int(torch.randint(0, 2 ** 62, (1,), generator=generator)))
    raise TypeError(f"expected a numpy or torch Generator, got {type(generator).__name__}")


class TrainTransform:
    """Resize, random scale + crop, flip, HSV jitter (see the module docstring)."""

    def __init__(self, config: TransformConfig | dict | None = None) -> None:
        if isinstance(config, dict):
            config = from_dict(TransformConfig, config)
        self.config = config or TransformConfig()

    def __call__(self, sample: Sample, rng) -> Sample:
        """`rng`: numpy Generator (or torch Generator), the transform's only randomness."""
        rng = numpy_rng(rng)
        c = self.config
        h, w = c.size
        s = rng.uniform(*c.scale)
        sh, sw = max(h, int(round(h * s))), max(w, int(round(w * s)))
        out = resize_sample(sample, (sh, sw))
        top = int(rng.integers(0, sh - h + 1))
        left = int(rng.integers(0, sw - w + 1))
        out = {k: v[top:top + h, left:left + w] for k, v in out.items()}
        if c.flip and rng.random() < 0.5:
            out = {k: v[:, ::-1] for k, v in out.items()}
        out["rgb"] = hsv_jitter(np.ascontiguousarray(out["rgb"]), rng, c.hue_deg, c.saturation, c.value)
        return {k: np.ascontiguousarray(v) for k, v in out.items()}


class EvalTransform:
    """Resize to the model's input size only (no randomness)."""

    def __init__(self, size: tuple[int, int] = (192, 256)) -> None:
        self.size = (int(size[0]), int(size[1]))

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        return resize_sample(sample, self.size)
