"""Class lists, palettes and the NYUv2 class mappings shipped with the package.

The NYUv2 894 -> 40 -> 13 mappings and the standard 795/654 split come from the dataset
toolboxes (classMapping40.mat, class13Mapping.mat, splits.mat), converted to JSON and shipped
in edgefuse/resources so that conversion works offline.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import numpy as np

# The synthetic benchmark's classes are NYUv2's 13 (label value = index + 1, 0 = void);
# the same tuple as edgefuse.models.registry.NYU13, repeated here so that data does not
# import the model package (and torch).
NYU13: tuple[str, ...] = ("bed", "books", "ceiling", "chair", "floor", "furniture", "objects",
                          "picture", "sofa", "table", "tv", "wall", "window")

# Display palette for NYUv2-13 (index 0 = void, black); distinct hues, fixed forever.
NYU13_PALETTE: tuple[tuple[int, int, int], ...] = (
    (0, 0, 0), (0, 0, 255), (232, 88, 47), (0, 217, 0), (148, 0, 240), (222, 241, 23),
    (255, 205, 205), (0, 223, 228), (106, 135, 204), (116, 28, 41), (240, 35, 235),
    (0, 166, 156), (249, 139, 0), (225, 228, 194),
)

SUNRGBD37: tuple[str, ...] = (
    "wall", "floor", "cabinet", "bed", "chair", "sofa", "table", "door", "window", "bookshelf",
    "picture", "counter", "blinds", "desk", "shelves", "curtain", "dresser", "pillow", "mirror",
    "floor mat", "clothes", "ceiling", "books", "fridge", "tv", "paper", "towel",
    "shower curtain", "box", "whiteboard", "person", "night stand", "toilet", "sink", "lamp",
    "bathtub", "bag",
)


def label_id(name: str) -> int:
    """Label value of an NYU13 class name (1..13)."""
    return NYU13.index(name) + 1


@functools.cache
def nyuv2_mapping() -> dict[str, Any]:
    """The shipped NYUv2 mapping file (see resources/nyuv2_classes.json's "note")."""
    text = resources.files("edgefuse").joinpath("resources/nyuv2_classes.json").read_text()
    return json.loads(text)


def lookup_894_to_40() -> np.ndarray:
    """uint8 lookup table of length 895: lut[label_894] = label_40 (0 stays void)."""
    m = nyuv2_mapping()["map_894_to_40"]
    return np.asarray([0, *m], dtype=np.uint8)


def lookup_40_to_13() -> np.ndarray:
    """uint8 lookup table of length 41: lut[label_40] = label_13 (0 stays void)."""
    m = nyuv2_mapping()["map_40_to_13"]
    return np.asarray([0, *m], dtype=np.uint8)


def class_names(num_classes: int) -> tuple[str, ...]:
    """NYUv2 class names for 13, 40 or 894 classes."""
    key = {13: "class_names_13", 40: "class_names_40", 894: "class_names_894"}.get(num_classes)
    if key is None:
        raise ValueError(f"NYUv2 has 13, 40 or 894 classes, not {num_classes}")
    return tuple(nyuv2_mapping()[key])


def default_palette(num_classes: int) -> list[list[int]]:
    """A palette with void + num_classes colours (NYU13's for 13, a fixed pseudo-random one else)."""
    if num_classes == 13:
        return [list(c) for c in NYU13_PALETTE]
    rng = np.random.default_rng(num_classes)
    cols = rng.integers(40, 256, size=(num_classes, 3))
    return [[0, 0, 0]] + cols.tolist()
