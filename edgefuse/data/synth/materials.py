"""Appearance: per-class materials on easy frames, one shared texture on hard frames.

Easy frames give each class its own colour family, so RGB alone tells classes apart.
Hard frames ("same_texture") paint bed, chair, sofa, table and furniture (and sometimes
the room itself) with ONE world-space texture: their colour is identical and continuous
across object borders, so only geometry (height above the floor, shape, surface normal),
which the depth camera sees, separates them (DynMM's premise: depth matters on some
frames only). Pictures, TVs and windows keep their colours everywhere: they are flat
on the wall, so there only RGB reveals them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgefuse.data.classes import label_id


@dataclass
class Material:
    """Albedo = lerp(color_a, color_b, pattern(p)) with a pattern of sines over world points.

    Colours are linear RGB in 0..1. `sharpness` 0 gives smooth blotches, > 0 stripes/checks.
    `emission` adds light of colour_a (windows, TV screens). `ir_dropout` is the chance the
    depth sensor gets no return (glass, glossy black screens) in addition to dark albedo.
    """

    color_a: np.ndarray
    color_b: np.ndarray
    waves: np.ndarray = field(default_factory=lambda: np.zeros((3, 4)))  # rows: kx, ky, kz, phase
    sharpness: float = 0.0
    emission: float = 0.0
    ir_dropout: float = 0.0


def srgb_to_linear(c) -> np.ndarray:
    return np.clip(np.asarray(c, dtype=np.float64), 0.0, 1.0) ** 2.2


def random_waves(rng: np.random.Generator, freq: tuple[float, float]) -> np.ndarray:
    """Three plane waves with random directions, spatial frequencies (rad/m) and phases."""
    d = rng.normal(size=(3, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    k = d * rng.uniform(*freq, size=(3, 1))
    return np.concatenate([k, rng.uniform(0, 2 * np.pi, size=(3, 1))], axis=1)


def _jitter(rng: np.random.Generator, srgb, spread: float = 0.05) -> np.ndarray:
    c = np.asarray(srgb, dtype=np.float64) * rng.uniform(0.85, 1.15) + rng.uniform(-spread, spread, 3)
    return np.clip(c, 0.02, 1.0)


# Easy-frame colour families (sRGB) and texture style per class: (base colour, contrast of the
# texture, frequency range rad/m, sharpness).
_CLASS_LOOK: dict[str, tuple[tuple[float, float, float], float, tuple[float, float], float]] = {
    "bed": ((0.45, 0.60, 0.92), 0.25, (3.0, 8.0), 0.0),
    "ceiling": ((0.94, 0.94, 0.92), 0.05, (1.0, 3.0), 0.0),
    "chair": ((0.85, 0.22, 0.15), 0.20, (5.0, 12.0), 0.0),
    "floor": ((0.42, 0.44, 0.50), 0.25, (20.0, 40.0), 0.0),  # grey carpet: unlike table wood
    "furniture": ((0.18, 0.42, 0.45), 0.25, (4.0, 10.0), 2.0),
    "sofa": ((0.30, 0.62, 0.28), 0.20, (6.0, 14.0), 0.0),
    "table": ((0.88, 0.70, 0.42), 0.30, (10.0, 25.0), 3.0),
    "wall": ((0.90, 0.78, 0.62), 0.08, (1.0, 4.0), 0.0),
}

_VIVID = np.array([(0.9, 0.15, 0.1), (0.1, 0.3, 0.9), (0.1, 0.7, 0.2), (0.95, 0.85, 0.1),
                   (0.95, 0.95, 0.95), (0.08, 0.08, 0.08), (0.8, 0.2, 0.8), (0.95, 0.5, 0.05),
                   (0.1, 0.8, 0.85)])


def class_material(rng: np.random.Generator, name: str) -> Material:
    """A fresh easy-frame material for class `name` (each object gets its own jittered copy)."""
    if name in _CLASS_LOOK:
        base, contrast, freq, sharp = _CLASS_LOOK[name]
        a = _jitter(rng, base)
        return Material(srgb_to_linear(a), srgb_to_linear(a * (1 - contrast)), random_waves(rng, freq), sharp)
    if name in ("books", "objects"):
        a = _VIVID[rng.integers(len(_VIVID))]
        b = a * rng.uniform(0.6, 1.0)
        return Material(srgb_to_linear(_jitter(rng, a, 0.03)), srgb_to_linear(b), random_waves(rng, (5, 30)), 0.0)
    if name == "picture":
        a, b = _VIVID[rng.choice(len(_VIVID), size=2, replace=False)]
        return Material(srgb_to_linear(a), srgb_to_linear(b), random_waves(rng, (15.0, 40.0)),
                        float(rng.choice([0.0, 4.0])))
    if name == "tv":  # a glossy black screen, switched on half of the time
        on = rng.random() < 0.5
        a, b = _VIVID[rng.choice(len(_VIVID), size=2, replace=False)]
        if on:
            return Material(srgb_to_linear(a) * 0.6, srgb_to_linear(b) * 0.6, random_waves(rng, (10, 30)), 0.0,
                            emission=rng.uniform(0.5, 1.0), ir_dropout=0.1)
        # off: near-black but not so dark that the IR pattern vanishes; a screen should be
        # something only colour reveals, not a depth hole shaped like a TV
        return Material(np.full(3, 0.03), np.full(3, 0.04), random_waves(rng, (2, 5)), 0.0, ir_dropout=0.1)
    if name == "window":  # daylight behind glass: bright, bluish, and mostly invisible to the IR sensor
        a = srgb_to_linear(_jitter(rng, (0.75, 0.88, 1.0), 0.04))
        return Material(a, a * 0.8, random_waves(rng, (2, 6)), 0.0, emission=rng.uniform(0.8, 1.4), ir_dropout=0.6)
    raise KeyError(name)


def shared_material(rng: np.random.Generator) -> Material:
    """The one texture every same-texture object wears on a hard frame (any hue, any style)."""
    a = rng.uniform(0.25, 0.9, 3)
    b = a * rng.uniform(0.4, 0.8)
    freq = (2.0, 8.0) if rng.random() < 0.5 else (8.0, 20.0)
    return Material(srgb_to_linear(a), srgb_to_linear(b), random_waves(rng, freq), float(rng.choice([0.0, 3.0])))


# Classes that may share one texture on hard frames: they differ only by geometry.
SAME_TEXTURE_CLASSES = frozenset(label_id(n) for n in ("bed", "chair", "sofa", "table", "furniture"))
ROOM_CLASSES = frozenset(label_id(n) for n in ("wall", "floor", "ceiling"))
