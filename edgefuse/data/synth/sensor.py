"""Depth sensor model of an active stereo camera (Intel RealSense D435), in numpy.

What a real D435 depth frame has, and this model reproduces:
- noise that grows quadratically with distance: sigma_z = z^2 * subpixel / (f * baseline)
  (Intel's depth RMS error formula; f = 425 px at 848x480, baseline 50 mm, subpixel 0.08),
  partly spatially correlated (low-frequency wobble) and partly per pixel;
- occlusion shadows: background pixels beside a foreground edge that the second imager
  cannot see (computed from the disparity, so the shadow widens with the depth jump);
- flying pixels removed at depth edges (random thin holes along discontinuities);
- no return on glass, glossy black screens and very dark surfaces, and at grazing angles;
- nothing outside [min_range, max_range], with dropout ramping up near the far end.
0 means "no measurement" everywhere, as in the librealsense and NYUv2 conventions.
"""

from __future__ import annotations

import numpy as np

BASELINE_M = 0.050
F_NATIVE_PX = 425.0
SUBPIXEL = 0.08


def depth_sigma_m(z: np.ndarray) -> np.ndarray:
    """RMS depth error (metres) at depth z (metres)."""
    return z * z * SUBPIXEL / (F_NATIVE_PX * BASELINE_M)


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: tuple[int, int]) -> np.ndarray:
    """Zero-mean unit-ish noise that varies over ~cells, by bilinear upsampling of a coarse grid."""
    h, w = shape
    gh, gw = cells
    grid = rng.normal(size=(gh + 1, gw + 1))
    y = np.linspace(0, gh, h, endpoint=False)
    x = np.linspace(0, gw, w, endpoint=False)
    y0, x0 = y.astype(int), x.astype(int)
    fy, fx = (y - y0)[:, None], (x - x0)[None, :]
    g00, g01 = grid[y0][:, x0], grid[y0][:, x0 + 1]
    g10, g11 = grid[y0 + 1][:, x0], grid[y0 + 1][:, x0 + 1]
    return (g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy


def occlusion_shadow(z: np.ndarray, fx: float) -> np.ndarray:
    """Pixels the second imager (BASELINE_M to the right) cannot see.

    A pixel at column u with disparity d projects to u - d in the other view. It is hidden
    when a pixel further right projects at or left of it (a nearer surface in front).
    """
    h, w = z.shape
    disp = np.where(z > 0, fx * BASELINE_M / np.maximum(z, 1e-6), 0.0)
    proj = np.arange(w)[None, :] + 0.5 - disp
    # running minimum of the projected position over the pixels to the right of each pixel
    right_min = np.minimum.accumulate(proj[:, ::-1], axis=1)[:, ::-1]
    right_min = np.concatenate([right_min[:, 1:], np.full((h, 1), np.inf)], axis=1)
    return right_min < proj - 0.5


def depth_edges(z: np.ndarray, rel: float = 0.04) -> np.ndarray:
    """Pixels next to a relative depth jump larger than `rel` (either direction)."""
    e = np.zeros(z.shape, dtype=bool)
    dx = np.abs(np.diff(z, axis=1)) > rel * np.minimum(z[:, 1:], z[:, :-1])
    dy = np.abs(np.diff(z, axis=0)) > rel * np.minimum(z[1:], z[:-1])
    e[:, 1:] |= dx
    e[:, :-1] |= dx
    e[1:] |= dy
    e[:-1] |= dy
    return e


def simulate_depth(z_true: np.ndarray, ir_dropout: np.ndarray, albedo_lum: np.ndarray, cos_view: np.ndarray,
                   fx: float, rng: np.random.Generator, min_range: float = 0.28,
                   max_range: float = 6.5) -> np.ndarray:
    """Measured depth (uint16 mm, 0 = none) from true z-depth in metres (inf/0 = no surface).

    ir_dropout: per-pixel extra chance of no return (material); albedo_lum: linear albedo
    luminance (dark surfaces return little IR); cos_view: |cos| between normal and view ray.
    """
    shape = z_true.shape
    valid = np.isfinite(z_true) & (z_true > 0)
    z = np.where(valid, z_true, 0.0)
    sigma = depth_sigma_m(z)
    h, w = shape
    wobble = _smooth_noise(rng, shape, (max(2, h // 24), max(2, w // 24)))
    noisy = z + sigma * (0.6 * wobble + 0.8 * rng.normal(size=shape))

    # Holes come in blobs, not salt-and-pepper: threshold a smooth random field.
    blob = _smooth_noise(rng, shape, (max(2, h // 10), max(2, w // 10)))
    blob_u = 0.5 * (1 + np.tanh(blob))  # ~uniform-ish in (0, 1)
    p_hole = np.clip(ir_dropout, 0.0, 1.0)
    p_hole = np.maximum(p_hole, np.clip((0.02 - albedo_lum) / 0.02, 0.0, 1.0) * 0.7)  # dark surfaces
    p_hole = np.maximum(p_hole, np.clip((0.2 - cos_view) / 0.2, 0.0, 1.0) * 0.8)  # grazing angles
    far = np.clip((z - 0.75 * max_range) / (0.25 * max_range), 0.0, 1.0)
    p_hole = np.maximum(p_hole, far ** 2)
    holes = blob_u * 0.7 + rng.random(shape) * 0.3 < p_hole

    edges = depth_edges(z) & (rng.random(shape) < 0.6)
    shadow = occlusion_shadow(z, fx)
    speckle = rng.random(shape) < 0.003
    keep = valid & ~holes & ~edges & ~shadow & ~speckle & (z >= min_range) & (z <= max_range)
    mm = np.where(keep, np.round(noisy * 1000.0), 0.0)
    return np.clip(mm, 0, 65535).astype(np.uint16)
