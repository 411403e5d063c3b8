"""Depth-to-colour extrinsics: `cv2.stereoCalibrate` with both cameras' intrinsics fixed.

The depth camera's own images of the board (IR, or an image derived from depth) and the
colour images of the same board poses are paired by file name; the corners both cameras
saw (all of them for a checkerboard, the shared ids for ChArUco) give one stereo pair
each. With the intrinsics fixed (`CALIB_FIX_INTRINSIC`) only R and T are solved:
X_color = R X_depth + T, metres (the board's units) - what registration needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgefuse.calibration.views import View
from edgefuse.cameras.camera_info import CameraModel
from edgefuse.cameras.registration import Extrinsics
from edgefuse.errors import ConfigError, require

#: Fewest stereo pairs (views where both cameras saw the board).
MIN_PAIRS = 3


@dataclass
class StereoResult:
    depth_to_color: Extrinsics
    rms_px: float
    pairs: list[str]
    unpaired: list[str]


def _key(name: str) -> str:
    """Pair views by file stem, so color/0001.png matches ir/0001.png (any suffix)."""
    return name.rsplit(".", 1)[0]


def calibrate_depth_to_color(color_views: list[View], depth_views: list[View], color: CameraModel,
                             depth: CameraModel, *, min_pairs: int = MIN_PAIRS) -> StereoResult:
    cv2 = require("cv2", "viz", "camera calibration uses OpenCV")
    by_name = {_key(v.name): v for v in depth_views if v.used}
    obj, img_d, img_c, pairs, unpaired = [], [], [], [], []
    for cv in color_views:
        dv = by_name.get(_key(cv.name))
        if not cv.used or dv is None:
            unpaired.append(cv.name)
            continue
        common, ci, di = np.intersect1d(cv.detection.ids, dv.detection.ids, return_indices=True)
        if len(common) < 6:
            unpaired.append(cv.name)
            continue
        obj.append(cv.detection.object_points[ci].astype(np.float32))
        img_c.append(cv.detection.image_points[ci].reshape(-1, 1, 2).astype(np.float32))
        img_d.append(dv.detection.image_points[di].reshape(-1, 1, 2).astype(np.float32))
        pairs.append(cv.name)
    if len(pairs) < min_pairs:
        raise ConfigError(f"only {len(pairs)} views show the board in both the colour and the depth images (need "
                          f"{min_pairs}); --depth-images must hold the depth camera's (IR) images of the same board "
                          f"poses, with the same file names as the colour views")
    h, w = color.size
    flags = cv2.CALIB_FIX_INTRINSIC
    rms, _, _, _, _, r, t, _, _ = cv2.stereoCalibrate(
        obj, img_d, img_c, depth.camera_matrix(), np.asarray(depth.distortion), color.camera_matrix(),
        np.asarray(color.distortion), (w, h), flags=flags)
    return StereoResult(Extrinsics.from_rt(r, t.ravel()), float(rms), pairs, unpaired)
