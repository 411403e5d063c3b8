"""What the official inference of a model trained on each dataset needs besides its weights:
the class list and display colours, the input size, and the depth normalisation.

Depth statistics are those of the official code (ESANet's dataset classes; DynMM's are a
copy), converted to millimetres, the unit edgefuse's cameras deliver. SUN RGB-D's depth
PNGs hold millimetres shifted left by 3 bits, so its statistics are divided by 8: a power of
two, so (8 d - m) / s and (d - m/8) / (s/8) are the same floats, bit for bit.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from importlib import resources

from edgefuse.data.classes import SUNRGBD37, class_names
from edgefuse.errors import ConfigError
from edgefuse.models.config import IMAGENET_MEAN, IMAGENET_STD


@dataclass(frozen=True)
class DatasetPreset:
    name: str
    classes: tuple[str, ...]
    palette: tuple[tuple[int, int, int], ...]   # void first, then one per class
    input_size: tuple[int, int]
    depth_mean: float          # millimetres
    depth_std: float
    depth_note: str            # how the official code reads depth, for provenance
    rgb_mean: tuple[float, float, float] = IMAGENET_MEAN
    rgb_std: tuple[float, float, float] = IMAGENET_STD


def bit_interleaved_palette(n: int) -> tuple[tuple[int, int, int], ...]:
    """The PASCAL VOC colour map for n labels (label bits spread over the high bits of R, G,
    B): ESANet's NYUv2-40 display colours, void (0) black."""
    colours = []
    for label in range(n):
        r = g = b = 0
        c = label
        for shift in range(7, -1, -1):
            r |= (c & 1) << shift
            g |= ((c >> 1) & 1) << shift
            b |= ((c >> 2) & 1) << shift
            c >>= 3
        colours.append((r, g, b))
    return tuple(colours)


@functools.cache
def _recorded_palettes() -> dict[str, list[list[int]]]:
    """Display colours that are a table, not a formula, recorded from the official code by
    benchmarks/vs_official_import.py --write-facts."""
    text = resources.files("edgefuse").joinpath("resources/official_palettes.json").read_text()
    return json.loads(text)["palettes"]


def _nyuv2() -> DatasetPreset:
    return DatasetPreset(
        "nyuv2", class_names(40), bit_interleaved_palette(41), (480, 640),
        2841.94941272766, 1417.2594281672277,
        "uint16 millimetres; the statistics of refined depth, used for raw depth too")


def _sunrgbd() -> DatasetPreset:
    return DatasetPreset(
        "sunrgbd", SUNRGBD37, tuple(tuple(c) for c in _recorded_palettes()["sunrgbd"]), (480, 640),
        19025.14930492213 / 8, 9880.916071806689 / 8,
        "PNG values are millimetres << 3; statistics divided by 8 to apply to millimetres")


PRESETS = {"nyuv2": _nyuv2, "sunrgbd": _sunrgbd}


def dataset_preset(name: str) -> DatasetPreset:
    if name not in PRESETS:
        raise ConfigError(f"unknown dataset {name!r}; importable: {', '.join(PRESETS)} "
                          "(Cityscapes models use adaptive pyramid pooling, not supported yet)")
    return PRESETS[name]()


def preset_for_classes(num_classes: int) -> DatasetPreset | None:
    """The dataset a class count implies (40: NYUv2, 37: SUN RGB-D), None if ambiguous."""
    matches = [p() for p in PRESETS.values()]
    found = [p for p in matches if len(p.classes) == num_classes]
    return found[0] if len(found) == 1 else None
