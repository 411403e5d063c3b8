"""Triangle meshes of the primitives rooms are built from (boxes, cylinders), in numpy.

World frame: metres, z up, the floor at z = 0. Winding is irrelevant: the renderer turns
every normal towards the camera.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

_BOX_CORNERS = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)],
                        dtype=np.float64)
# 12 triangles over the 8 corners (index = 4x + 2y + z).
_BOX_FACES = np.array([
    [0, 1, 3], [0, 3, 2], [4, 6, 7], [4, 7, 5],   # x = -/+
    [0, 4, 5], [0, 5, 1], [2, 3, 7], [2, 7, 6],   # y = -/+
    [0, 2, 6], [0, 6, 4], [1, 5, 7], [1, 7, 3],   # z = -/+
], dtype=np.int64)


def rot_z(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class Mesh:
    vertices: np.ndarray   # V x 3 float64
    triangles: np.ndarray  # T x 3 int64


def box(center: np.ndarray, size: np.ndarray, yaw: float = 0.0) -> Mesh:
    """Box of `size` (sx, sy, sz) centred at `center`, rotated by `yaw` about z."""
    v = (_BOX_CORNERS * np.asarray(size)) @ rot_z(yaw).T + np.asarray(center)
    return Mesh(v, _BOX_FACES.copy())


def cylinder(bottom_center: np.ndarray, radius: float, height: float, segments: int = 14) -> Mesh:
    """Vertical closed cylinder standing on `bottom_center`."""
    a = np.linspace(0.0, 2 * np.pi, segments, endpoint=False)
    ring = np.stack([radius * np.cos(a), radius * np.sin(a), np.zeros_like(a)], axis=1)
    bottom = ring + bottom_center
    top = bottom + np.array([0.0, 0.0, height])
    centers = np.array([bottom_center, np.asarray(bottom_center) + [0.0, 0.0, height]])
    v = np.concatenate([bottom, top, centers])
    i = np.arange(segments)
    j = (i + 1) % segments
    n = segments
    sides = np.concatenate([np.stack([i, j, n + j], 1), np.stack([i, n + j, n + i], 1)])
    caps = np.concatenate([np.stack([np.full(n, 2 * n), j, i], 1), np.stack([np.full(n, 2 * n + 1), n + i, n + j], 1)])
    return Mesh(v, np.concatenate([sides, caps]))


class Frame2D:
    """A placement on the floor: origin (x, y) and yaw. Local +y is the object's front."""

    def __init__(self, x: float, y: float, yaw: float) -> None:
        self.origin = np.array([x, y, 0.0])
        self.yaw = yaw
        self.rot = rot_z(yaw)

    def to_world(self, local: np.ndarray) -> np.ndarray:
        return np.asarray(local, dtype=np.float64) @ self.rot.T + self.origin

    def box(self, center: tuple[float, float, float], size: tuple[float, float, float]) -> Mesh:
        return box(self.to_world(np.asarray(center)), np.asarray(size), self.yaw)

    def cylinder(self, bottom: tuple[float, float, float], radius: float, height: float) -> Mesh:
        return cylinder(self.to_world(np.asarray(bottom)), radius, height)
