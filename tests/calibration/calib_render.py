"""Calibration views rendered with OpenCV: a board texture seen through a known camera.

Every output pixel is undistorted to its ray (`cv2.undistortPoints` with a tight stopping criterion, the inverse of
the plumb-bob model to 1e-9), the ray meets the board plane at the known pose, and the board
texture is sampled there (`cv2.remap`). So the views hold exactly the camera the test chose:
K, distortion and pose, and the calibration must find them again.
"""

from __future__ import annotations

import cv2
import numpy as np

SIZE = (480, 640)   # H, W
K = np.array([[560.0, 0.0, 324.0], [0.0, 555.0, 236.0], [0.0, 0.0, 1.0]])
DIST = np.array([-0.28, 0.09, 0.0008, -0.0005, 0.0])   # barrel distortion, as on a wide webcam


def poses(count: int, seed: int = 0, distance: float = 0.55, spread: float = 0.16):
    """Board poses that tilt the board and sweep it over the whole image (corners included)."""
    rng = np.random.default_rng(seed)
    out = []
    grid = [(x, y) for y in (-1, 0, 1) for x in (-1, 0, 1)]
    for i in range(count):
        gx, gy = grid[i % len(grid)]
        rvec = np.array([rng.uniform(-0.35, 0.35), rng.uniform(-0.35, 0.35), rng.uniform(-0.2, 0.2)])
        tvec = np.array([gx * spread - 0.1, gy * spread * 0.75 - 0.07, distance + rng.uniform(-0.08, 0.12)])
        out.append((rvec, tvec))
    return out


def _rays(size, k, dist):
    h, w = size
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    pts = np.stack([u.ravel(), v.ravel()], -1).reshape(-1, 1, 2)
    crit = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 100, 1e-12)
    return cv2.undistortPoints(pts, k, dist, None, None, None, crit).reshape(h, w, 2)


_RAY_CACHE: dict = {}


def render(board, rvec, tvec, size=SIZE, k=K, dist=DIST, px_per_square=48, blur: float = 0.0,
           bend_px: float = 0.0, seed: int = 0) -> np.ndarray:
    """A grey uint8 view of `board` at pose (rvec, tvec) through camera (k, dist).

    blur: Gaussian sigma in pixels (a shaken camera); bend_px: a wavy displacement of the
    texture (a board that is not flat), which no pinhole model can explain."""
    texture, m_per_px, (ox, oy) = board.image(px_per_square)
    key = (size, k.tobytes(), dist.tobytes())
    if key not in _RAY_CACHE:
        _RAY_CACHE[key] = _rays(size, k, dist)
    rays = _RAY_CACHE[key]
    r, _ = cv2.Rodrigues(np.asarray(rvec, dtype=np.float64))
    t = np.asarray(tvec, dtype=np.float64)
    c = -r.T @ t                                             # camera centre in board coordinates
    d = np.concatenate([rays, np.ones(rays.shape[:2] + (1,))], -1) @ r   # ray directions, board frame
    s = -c[2] / d[..., 2]
    p = c[None, None, :2] + s[..., None] * d[..., :2]
    mapx = (p[..., 0] / m_per_px + ox).astype(np.float32)
    mapy = (p[..., 1] / m_per_px + oy).astype(np.float32)
    if bend_px:
        mapx += np.float32(bend_px) * np.sin(mapy / 23.0).astype(np.float32)
        mapy += np.float32(bend_px) * np.cos(mapx / 31.0).astype(np.float32)
    behind = s <= 0
    mapx[behind] = -1e4
    img = cv2.remap(texture, mapx, mapy, cv2.INTER_LINEAR,
                    borderMode=cv2.BORDER_CONSTANT, borderValue=150)
    rng = np.random.default_rng(seed)
    img = img.astype(np.float32) * 0.8 + 25 + rng.normal(0, 2.0, img.shape)
    if blur:
        img = cv2.GaussianBlur(img, (0, 0), blur)
    return np.clip(img, 0, 255).astype(np.uint8)
