"""A RealSense-D435-like RGB-D camera: colour intrinsics, ray generation, image formation.

Depth is aligned to the colour camera (as `rs.align(rs.stream.color)` delivers it), so one
pinhole model serves both. Intrinsics are those of the 640x480 colour stream (about
69 x 42 degrees field of view at 16:9; 55 x 43 at 4:3), scaled to the output size exactly
as resizing the stream would scale them.
"""

from __future__ import annotations

import numpy as np

# Typical factory calibration of a D435 colour stream at 640x480 (fx, fy, cx, cy).
D435_COLOR_640x480 = (615.0, 615.0, 320.0, 240.0)


def intrinsics_for(size: tuple[int, int]) -> dict[str, float]:
    """Pinhole intrinsics of the colour stream resized to `size` (H, W)."""
    h, w = size
    fx, fy, cx, cy = D435_COLOR_640x480
    sx, sy = w / 640.0, h / 480.0
    return {"fx": fx * sx, "fy": fy * sy, "cx": cx * sx, "cy": cy * sy, "width": int(w), "height": int(h)}


def camera_rays(intr: dict[str, float], rot: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """H x W x 6 rays (origin, direction) through pixel centres.

    Directions have camera-frame z = 1, so the ray parameter of a hit IS the z-depth the
    sensor reports (not the Euclidean distance).
    """
    h, w = int(intr["height"]), int(intr["width"])
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    d_cam = np.stack([(u - intr["cx"]) / intr["fx"], (v - intr["cy"]) / intr["fy"], np.ones_like(u)], axis=-1)
    d_world = d_cam @ rot.T
    origin = np.broadcast_to(pos, d_world.shape)
    return np.concatenate([origin, d_world], axis=-1).astype(np.float32)


def expose(radiance: np.ndarray, rng: np.random.Generator, max_gain: float = 6.0) -> np.ndarray:
    """Linear scene radiance -> sRGB uint8, with auto-exposure and sensor noise.

    Auto-exposure scales the image towards a mid-grey mean but its gain saturates at
    `max_gain`: a dark room stays dark and its read noise is amplified by the gain, which is
    what drowns colour in dim frames. Shot noise grows with the square root of the signal.
    """
    mean = float(radiance.mean()) + 1e-6
    gain = float(np.clip(0.18 / mean, 0.25, max_gain))
    signal = radiance * gain
    read = 0.008 * gain
    noise = rng.normal(size=signal.shape) * np.sqrt(read ** 2 + 0.0004 * np.maximum(signal, 0.0))
    lin = np.clip(signal + noise, 0.0, 1.0)
    return np.round(255.0 * lin ** (1 / 2.2)).astype(np.uint8)
