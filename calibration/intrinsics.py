"""One camera's intrinsics from board views: `cv2.calibrateCameraExtended`, checked.

What the report needs besides K and the distortion: the RMS reprojection error, each
view's own error with the outliers flagged (a view far above the others is a moved board,
a bent print or a wrong detection), and how much of the image the board's corners covered
(a 4 x 4 grid: the distortion model is only measured where corners were seen, so a corner
of the image never covered is extrapolated there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgefuse.calibration.board import Board
from edgefuse.calibration.views import View, image_size
from edgefuse.cameras.frame import Intrinsics
from edgefuse.cameras.camera_info import CameraModel
from edgefuse.errors import ConfigError, require

#: Fewest usable views by default (calibrateCamera needs 3; ten or more is the usual advice).
MIN_VIEWS = 6
#: A view is an outlier above both this multiple of the median view error and OUTLIER_MIN_PX.
OUTLIER_FACTOR = 2.5
OUTLIER_MIN_PX = 0.5
GRID = 4
_ROWS = ("top", "upper-middle", "lower-middle", "bottom")
_COLS = ("left", "left-centre", "right-centre", "right")


@dataclass
class Coverage:
    """Corners seen per cell of a GRID x GRID split of the image."""

    counts: np.ndarray      # GRID x GRID ints

    @classmethod
    def of(cls, views: list[View], size: tuple[int, int]) -> "Coverage":
        h, w = size
        counts = np.zeros((GRID, GRID), dtype=np.int64)
        for v in views:
            if v.used and v.detection is not None:
                pts = v.detection.image_points
                cx = np.clip((pts[:, 0] / w * GRID).astype(int), 0, GRID - 1)
                cy = np.clip((pts[:, 1] / h * GRID).astype(int), 0, GRID - 1)
                np.add.at(counts, (cy, cx), 1)
        return cls(counts)

    @property
    def fraction(self) -> float:
        return float(np.count_nonzero(self.counts)) / self.counts.size

    def missing_corners(self) -> list[str]:
        last = GRID - 1
        names = {(0, 0): "top-left", (0, last): "top-right", (last, 0): "bottom-left", (last, last): "bottom-right"}
        return [n for (r, c), n in names.items() if self.counts[r, c] == 0]

    def missing_edges(self) -> list[str]:
        """Border cells (not corners) never covered, e.g. 'top (left-centre)'."""
        last = GRID - 1
        out = []
        for r in range(GRID):
            for c in range(GRID):
                border = r in (0, last) or c in (0, last)
                corner = r in (0, last) and c in (0, last)
                if border and not corner and self.counts[r, c] == 0:
                    out.append(f"{_ROWS[r]}-{_COLS[c]}")
        return out

    def advice(self) -> str | None:
        corners, edges = self.missing_corners(), self.missing_edges()
        if not corners and not edges:
            return None
        parts = []
        if corners:
            parts.append(f"image corners never covered: {', '.join(corners)}")
        if edges:
            parts.append(f"edge cells never covered: {', '.join(edges)}")
        return ("; ".join(parts) + ". The distortion there is extrapolated, not measured: add views with the "
                "board in those parts of the image")

    def grid(self) -> list[str]:
        """The grid as text rows ('.' = never covered)."""
        return [" ".join(f"{int(n):4d}" if n else "   ." for n in row) for row in self.counts]


@dataclass
class ViewError:
    name: str
    rms_px: float
    outlier: bool


@dataclass
class IntrinsicsResult:
    camera: CameraModel
    rms_px: float
    views: list[View]
    per_view: list[ViewError]
    coverage: Coverage
    dropped: list[str] = field(default_factory=list)   # outliers removed by drop_outliers

    @property
    def outliers(self) -> list[str]:
        return [e.name for e in self.per_view if e.outlier]


def flag_outliers(errors: list[float]) -> list[bool]:
    """Views whose error is above OUTLIER_FACTOR x the median and above OUTLIER_MIN_PX."""
    if not errors:
        return []
    median = float(np.median(errors))
    return [e > OUTLIER_FACTOR * median and e > OUTLIER_MIN_PX for e in errors]


def calibration_flags(k_coefficients: int) -> int:
    """OpenCV flags for 1-3 radial coefficients (ROS's cameracalibrator fits 2 by default:
    a third one overfits unless the views fill the image's corners)."""
    cv2 = require("cv2", "viz", "camera calibration uses OpenCV")
    if k_coefficients not in (1, 2, 3):
        raise ConfigError(f"--k-coefficients must be 1, 2 or 3, got {k_coefficients}")
    flags = 0
    if k_coefficients < 3:
        flags |= cv2.CALIB_FIX_K3
    if k_coefficients < 2:
        flags |= cv2.CALIB_FIX_K2
    return flags


def calibrate_intrinsics(views: list[View], board: Board, *, min_views: int = MIN_VIEWS, k_coefficients: int = 2,
                         drop_outliers: bool = False, camera_name: str = "camera") -> IntrinsicsResult:
    """calibrateCamera over the used views; refuses too few of them with what to do."""
    cv2 = require("cv2", "viz", "camera calibration uses OpenCV")
    if min_views < 3:
        raise ConfigError(f"--min-views must be >= 3 (OpenCV needs 3 views), got {min_views}")
    used = [v for v in views if v.used]
    if not used:
        reasons = sorted({v.skipped or "" for v in views})
        raise ConfigError(f"no board found in any of the {len(views)} views ({'; '.join(reasons)}); check --board "
                          f"(inner corners for a checkerboard, squares for ChArUco) and that the board is in view")
    if len(used) < min_views:
        raise ConfigError(f"only {len(used)} of {len(views)} views are usable (need {min_views}); add views of the "
                          f"board at other positions and angles, or lower --min-views")
    size = image_size(views)
    flags = calibration_flags(k_coefficients)
    result = _solve(cv2, used, size, flags)
    rms, k, d, errors = result
    outliers = flag_outliers(errors)
    dropped: list[str] = []
    if drop_outliers and any(outliers):
        keep = [v for v, o in zip(used, outliers) if not o]
        if len(keep) >= min_views:
            dropped = [v.name for v, o in zip(used, outliers) if o]
            for v in used:
                if v.name in dropped:
                    v.skipped = "outlier (dropped with --drop-outliers)"
            used = keep
            rms, k, d, errors = _solve(cv2, used, size, flags)
            outliers = flag_outliers(errors)
    h, w = size
    intr = Intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), w, h)
    # ROS's monocular calibrator: P holds the camera matrix of the rectified image (alpha 0)
    new_k, _ = cv2.getOptimalNewCameraMatrix(k, d, (w, h), 0.0)
    projection = np.hstack([new_k, np.zeros((3, 1))])
    camera = CameraModel(intr, tuple(float(x) for x in d.ravel()[:5]), "plumb_bob", camera_name,
                         projection=tuple(float(x) for x in projection.ravel()))
    per_view = [ViewError(v.name, float(e), bool(o)) for v, e, o in zip(used, errors, outliers)]
    return IntrinsicsResult(camera, float(rms), views, per_view, Coverage.of(views, size), dropped)


def _solve(cv2, used: list[View], size: tuple[int, int], flags: int):
    h, w = size
    obj = [v.detection.object_points.astype(np.float32) for v in used]
    img = [v.detection.image_points.reshape(-1, 1, 2).astype(np.float32) for v in used]
    try:
        rms, k, d, _, _, _, _, errors = cv2.calibrateCameraExtended(obj, img, (w, h), None, None, flags=flags)
    except cv2.error as exc:
        raise ConfigError(f"OpenCV could not calibrate from these views ({str(exc).strip().splitlines()[-1]}); "
                          f"add views with the board tilted, not only face-on") from None
    return rms, k, d, [float(e) for e in np.asarray(errors).ravel()]
