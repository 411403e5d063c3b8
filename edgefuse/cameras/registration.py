"""Depth registration: a depth image seen from the depth camera -> depth in the colour image.

A rig whose depth is not registered to colour on the device (two sensors, a structured-light
camera through OpenNI, a webcam plus a depth sensor) needs this before the network fuses
pixels (issue 11). For every valid depth pixel: back-project with the depth camera's
intrinsics (its distortion undone once, by OpenCV, when the rays are built), move the point
into the colour camera's frame (`depth_to_color`, metres), project it with the colour
camera's intrinsics (its distortion applied by OpenCV when it has any), and keep the nearest
surface where several points land on one colour pixel (a z-buffer). Colour pixels no point
lands on stay 0 ("no measurement"), as everywhere in edgefuse.

Conventions are OpenCV's and ROS's: pixel (u, v) has its centre at integer coordinates,
camera axes x right, y down, z forward; `depth_to_color` maps a point in the depth camera's
frame to the colour camera's frame (X_c = R X_d + t), which is what `cv2.stereoCalibrate`
returns for (camera 1 = depth, camera 2 = colour).

Why numpy and not Open3D's tensor geometry (`PointCloud.create_from_depth_image` +
`project_to_depth_image`): both were measured on one core at 640x480, alternating
(`benchmarks/registration.py`, docs/results.md): the numpy path with its cached rays had
the lower median, and it handles lens distortion and needs no extra. The Open3D path is kept (`method="open3d"`) so the benchmark can keep measuring it.

When the colour camera sees a depth pixel larger than one colour pixel (a colour image of
higher resolution than the depth image), each point fills a k x k block (k = the ceiling of
the focal-length ratio), as librealsense's align does with the pixel's footprint; otherwise
magnified depth would be a sparse grid of dots.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from edgefuse.cameras.frame import Intrinsics
from edgefuse.errors import ConfigError

_NO_DEPTH = np.iinfo(np.uint16).max
METHODS = ("numpy", "open3d")


@dataclass(frozen=True)
class Extrinsics:
    """A rigid transform X_to = rotation @ X_from + translation (metres)."""

    rotation: tuple[tuple[float, float, float], ...]
    translation: tuple[float, float, float]

    @classmethod
    def from_matrix(cls, matrix: np.ndarray) -> "Extrinsics":
        """From a 4x4 (or 3x4) homogeneous matrix."""
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape not in ((4, 4), (3, 4)):
            raise ConfigError(f"depth_to_color must be a 4x4 or 3x4 matrix, got shape {m.shape}")
        return cls.from_rt(m[:3, :3], m[:3, 3])

    @classmethod
    def from_rt(cls, rotation: np.ndarray | Sequence[float], translation: np.ndarray | Sequence[float]) -> "Extrinsics":
        r = np.asarray(rotation, dtype=np.float64).reshape(3, 3)
        t = np.asarray(translation, dtype=np.float64).reshape(3)
        if not np.allclose(r @ r.T, np.eye(3), atol=1e-4) or np.linalg.det(r) < 0:
            raise ConfigError("depth_to_color rotation is not a rotation matrix (R R^T != I or det < 0); "
                              "check the calibration file")
        return cls(tuple(tuple(float(v) for v in row) for row in r), tuple(float(v) for v in t))

    @classmethod
    def identity(cls) -> "Extrinsics":
        return cls.from_rt(np.eye(3), np.zeros(3))

    def matrix(self) -> np.ndarray:
        m = np.eye(4)
        m[:3, :3] = self.rotation
        m[:3, 3] = self.translation
        return m


def _as_extrinsics(depth_to_color: Extrinsics | np.ndarray) -> Extrinsics:
    return depth_to_color if isinstance(depth_to_color, Extrinsics) else Extrinsics.from_matrix(depth_to_color)


def _camera_matrix(k: Intrinsics) -> np.ndarray:
    return np.array([[k.fx, 0.0, k.cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]])


def _has_distortion(coeffs: Sequence[float] | None) -> bool:
    return coeffs is not None and any(abs(float(c)) > 0.0 for c in coeffs)


class DepthRegistrar:
    """Registration for one rig (fixed intrinsics, distortion and extrinsics), rays cached.

    `registrar(depth)` -> uint16 mm depth of the colour image's size. Build one per rig and
    call it per frame; `register_depth` keeps a few of these cached for callers that pass
    the parameters every time.
    """

    def __init__(self, depth_intrinsics: Intrinsics, color_intrinsics: Intrinsics,
                 depth_to_color: Extrinsics | np.ndarray, *, depth_distortion: Sequence[float] | None = None,
                 color_distortion: Sequence[float] | None = None, method: str = "numpy") -> None:
        if method not in METHODS:
            raise ConfigError(f"registration method {method!r} is unknown; valid: {', '.join(METHODS)}")
        if method == "open3d" and (_has_distortion(depth_distortion) or _has_distortion(color_distortion)):
            raise ConfigError("the open3d registration method has no lens distortion; use method='numpy'")
        self.depth_intrinsics = depth_intrinsics
        self.color_intrinsics = color_intrinsics
        self.extrinsics = _as_extrinsics(depth_to_color)
        self.method = method
        self._rot = np.asarray(self.extrinsics.rotation, dtype=np.float32)
        self._t_mm = np.asarray(self.extrinsics.translation, dtype=np.float32) * 1000.0
        self._color_dist = (np.asarray(color_distortion, dtype=np.float64)
                            if _has_distortion(color_distortion) else None)
        self._rays = self._depth_rays(depth_intrinsics, depth_distortion)
        ratio = max(color_intrinsics.fx / depth_intrinsics.fx, color_intrinsics.fy / depth_intrinsics.fy)
        # 1.1: a few percent of magnification only opens the odd one-pixel crack; a block
        # there would fatten foreground edges instead.
        self.splat = max(1, math.ceil(ratio - 0.1))
        self._o3d = None

    @staticmethod
    def _depth_rays(k: Intrinsics, distortion: Sequence[float] | None) -> tuple[np.ndarray, np.ndarray]:
        """Per depth pixel, the ray's (x/z, y/z) in the depth camera's frame (flattened)."""
        u, v = np.meshgrid(np.arange(k.width, dtype=np.float64), np.arange(k.height, dtype=np.float64))
        if _has_distortion(distortion):
            import cv2

            pts = np.stack([u.ravel(), v.ravel()], axis=-1).reshape(-1, 1, 2)
            norm = cv2.undistortPoints(pts, _camera_matrix(k), np.asarray(distortion, dtype=np.float64))
            x, y = norm[:, 0, 0], norm[:, 0, 1]
        else:
            x = ((u - k.cx) / k.fx).ravel()
            y = ((v - k.cy) / k.fy).ravel()
        return x.astype(np.float32), y.astype(np.float32)

    def __call__(self, depth: np.ndarray) -> np.ndarray:
        k = self.depth_intrinsics
        if depth.ndim != 2 or depth.shape != (k.height, k.width):
            raise ConfigError(f"depth image is {depth.shape[1] if depth.ndim == 2 else '?'}x"
                              f"{depth.shape[0] if depth.ndim == 2 else '?'}, the depth camera's intrinsics "
                              f"are for {k.width}x{k.height}; calibrate at the resolution you stream")
        if self.method == "open3d":
            return self._open3d(depth)
        return self._numpy(depth)

    # --- numpy -----------------------------------------------------------------------------------
    def _numpy(self, depth: np.ndarray) -> np.ndarray:
        c = self.color_intrinsics
        flat = depth.reshape(-1)
        idx = np.flatnonzero(flat)
        z = flat[idx].astype(np.float32)
        x = self._rays[0][idx] * z
        y = self._rays[1][idx] * z
        r, t = self._rot, self._t_mm
        xc = r[0, 0] * x + r[0, 1] * y + r[0, 2] * z + t[0]
        yc = r[1, 0] * x + r[1, 1] * y + r[1, 2] * z + t[1]
        zc = r[2, 0] * x + r[2, 1] * y + r[2, 2] * z + t[2]
        front = zc > 0.5  # behind (or at) the colour camera's centre: not visible
        if not front.all():
            xc, yc, zc = xc[front], yc[front], zc[front]
        if self._color_dist is None:
            inv = 1.0 / zc
            u = c.fx * xc * inv + c.cx
            v = c.fy * yc * inv + c.cy
        else:
            import cv2

            pts = np.stack([xc, yc, zc], axis=-1).astype(np.float64)
            proj, _ = cv2.projectPoints(pts, np.zeros(3), np.zeros(3), _camera_matrix(c), self._color_dist)
            u, v = proj[:, 0, 0], proj[:, 0, 1]
        # Pixel centres at integers: pixel i covers [i - 0.5, i + 0.5). The k pixels whose
        # centres are nearest the projection start at floor(u - (k - 1) / 2 + 0.5) (k = 1:
        # the pixel containing it).
        k = self.splat
        ui = np.floor(u + (1.0 - k / 2)).astype(np.int64)
        vi = np.floor(v + (1.0 - k / 2)).astype(np.int64)
        zmm = np.minimum(np.rint(zc), _NO_DEPTH - 1).astype(np.uint16)
        if k > 1:
            du, dv = np.meshgrid(np.arange(k), np.arange(k))
            ui = (ui[:, None] + du.ravel()[None]).ravel()
            vi = (vi[:, None] + dv.ravel()[None]).ravel()
            zmm = np.repeat(zmm, k * k)
        inside = (ui >= 0) & (ui < c.width) & (vi >= 0) & (vi < c.height)
        lin = vi[inside] * c.width + ui[inside]
        zmm = zmm[inside]
        out = np.zeros(c.height * c.width, dtype=np.uint16)
        # z-buffer, the nearest surface wins. A plain scatter keeps an arbitrary one of the
        # points that land on a pixel; only points nearer than what was kept (few: the
        # hidden surfaces) then go through the slower unbuffered minimum.
        out[lin] = zmm
        nearer = zmm < out[lin]
        if nearer.any():
            np.minimum.at(out, lin[nearer], zmm[nearer])
        return out.reshape(c.height, c.width)

    # --- Open3D tensor geometry ----------------------------------------------------------------
    def _open3d(self, depth: np.ndarray) -> np.ndarray:
        from edgefuse.errors import require

        o3d = self._o3d or require("open3d", "synth", "the open3d registration method uses Open3D")
        self._o3d = o3d
        core = o3d.core
        kd = core.Tensor(_camera_matrix(self.depth_intrinsics), core.float64)
        kc = core.Tensor(_camera_matrix(self.color_intrinsics), core.float64)
        image = o3d.t.geometry.Image(core.Tensor(np.ascontiguousarray(depth, dtype=np.uint16)))
        # depth_max: uint16 millimetres reach 65.535 m; nothing is cut off
        pcd = o3d.t.geometry.PointCloud.create_from_depth_image(image, kd, depth_scale=1000.0, depth_max=70.0)
        c = self.color_intrinsics
        extrinsic = core.Tensor(self.extrinsics.matrix(), core.float64)
        out = pcd.project_to_depth_image(c.width, c.height, kc, extrinsic, depth_scale=1000.0, depth_max=70.0)
        return np.rint(out.as_tensor().numpy()[..., 0]).astype(np.uint16)


# A few registrars for callers that pass the parameters every frame.
_CACHE: "OrderedDict[tuple, DepthRegistrar]" = OrderedDict()
_CACHE_SIZE = 4


def register_depth(depth: np.ndarray, depth_intrinsics: Intrinsics, color_intrinsics: Intrinsics,
                   depth_to_color: Extrinsics | np.ndarray, *, depth_distortion: Sequence[float] | None = None,
                   color_distortion: Sequence[float] | None = None, method: str = "numpy") -> np.ndarray:
    """`depth` (uint16 mm, the depth camera's image) -> uint16 mm depth in the colour image.

    Holes (no depth pixel lands there) are 0; where several land, the nearest is kept.
    The per-rig rays are cached, so calling this per frame costs only the per-frame work.
    """
    ext = _as_extrinsics(depth_to_color)
    key = (depth_intrinsics, color_intrinsics, ext, tuple(depth_distortion or ()), tuple(color_distortion or ()),
           method)
    registrar = _CACHE.get(key)
    if registrar is None:
        registrar = DepthRegistrar(depth_intrinsics, color_intrinsics, ext, depth_distortion=depth_distortion,
                                   color_distortion=color_distortion, method=method)
        _CACHE[key] = registrar
        while len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    else:
        _CACHE.move_to_end(key)
    return registrar(np.asarray(depth))
