"""Camera calibration files: the ROS `camera_info` YAML, plus the depth-to-colour extrinsics.

The file is exactly what ROS's `camera_calibration_parsers` reads and writes
(`readCalibrationYml` / `writeCalibrationYml`), so a ROS user can hand it to any driver
(`camera_info_url`) and a file written by ROS's `cameracalibrator` loads here::

    image_width: 640
    image_height: 480
    camera_name: color
    camera_matrix: {rows: 3, cols: 3, data: [fx, 0, cx, 0, fy, cy, 0, 0, 1]}
    distortion_model: plumb_bob
    distortion_coefficients: {rows: 1, cols: 5, data: [k1, k2, p1, p2, k3]}
    rectification_matrix: {rows: 3, cols: 3, data: [1, 0, 0, 0, 1, 0, 0, 0, 1]}
    projection_matrix: {rows: 3, cols: 4, data: [...]}

What depth registration needs in addition goes into two extra keys, which ROS's parser
ignores (it reads only the keys above):

    depth_camera:            # the depth (IR) camera: the same fields as above, for its image
      image_width: ..., image_height: ..., camera_matrix: ..., distortion_model: ...,
      distortion_coefficients: ...
    depth_to_color:          # X_color = rotation @ X_depth + translation, metres
      rotation: {rows: 3, cols: 3, data: [...]}
      translation: {rows: 3, cols: 1, data: [tx, ty, tz]}
      rms_px: 0.31           # stereoCalibrate's reprojection error (informative)

Like ROS's parser, `camera_name` defaults to "unknown" and a missing `distortion_model`
means plumb_bob. edgefuse's sources and registration read the intrinsics and distortion;
the rectification and projection matrices are written for ROS (image_proc) and kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.cameras.frame import Intrinsics
from edgefuse.cameras.registration import Extrinsics
from edgefuse.errors import ConfigError

#: Distortion models OpenCV evaluates (sensor_msgs/distortion_models.h names).
DISTORTION_MODELS = {"plumb_bob": (4, 5), "rational_polynomial": (8, 8)}
_FIX = "; write it with `edgefuse calibrate` or ROS's cameracalibrator"


@dataclass(frozen=True)
class CameraModel:
    """One camera: pinhole intrinsics at (width, height) and its lens distortion (OpenCV order)."""

    intrinsics: Intrinsics
    distortion: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    distortion_model: str = "plumb_bob"
    name: str = "unknown"
    rectification: tuple[float, ...] = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0)
    projection: tuple[float, ...] | None = None   # 3x4 row-major; None: [K | 0]

    @property
    def size(self) -> tuple[int, int]:
        """(H, W)."""
        return self.intrinsics.height, self.intrinsics.width

    def camera_matrix(self) -> np.ndarray:
        k = self.intrinsics
        return np.array([[k.fx, 0.0, k.cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]])

    def projection_matrix(self) -> np.ndarray:
        if self.projection is not None:
            return np.asarray(self.projection, dtype=np.float64).reshape(3, 4)
        return np.hstack([self.camera_matrix(), np.zeros((3, 1))])

    def scaled(self, size: tuple[int, int]) -> "CameraModel":
        """This camera streamed at another resolution of the same aspect ratio (H, W).

        Intrinsics scale with the image; distortion coefficients act on normalised
        coordinates and do not. A different aspect ratio means a crop, which cannot be
        derived: refuse it."""
        h, w = size
        k = self.intrinsics
        if (h, w) == (k.height, k.width):
            return self
        if abs(w / h - k.width / k.height) > 1e-3:
            raise ConfigError(f"camera {self.name!r} was calibrated at {k.width}x{k.height}, the stream is {w}x{h} "
                              f"(another aspect ratio, a crop); calibrate at the resolution you stream")
        return CameraModel(k.scaled((h, w)), self.distortion, self.distortion_model, self.name)


@dataclass(frozen=True)
class CameraCalibration:
    """A colour camera, and optionally the depth camera and where it sits relative to colour."""

    color: CameraModel
    depth: CameraModel | None = None
    depth_to_color: Extrinsics | None = None
    extras: dict[str, Any] = field(default_factory=dict)   # e.g. rms_px of the extrinsics

    @property
    def registers_depth(self) -> bool:
        """True when the file holds what registration needs (depth camera + extrinsics)."""
        return self.depth is not None and self.depth_to_color is not None


# --- reading ----------------------------------------------------------------------------------
def _matrix(doc: dict, key: str, shape: tuple[int, int] | None, where: str) -> np.ndarray:
    node = doc.get(key)
    if not isinstance(node, dict) or not {"rows", "cols", "data"} <= node.keys():
        raise ConfigError(f"{where}: '{key}' must be a mapping with rows, cols and data{_FIX}")
    try:
        rows, cols = int(node["rows"]), int(node["cols"])
        data = np.asarray(node["data"], dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: '{key}' has non-numeric rows/cols/data ({exc})") from None
    if data.size != rows * cols:
        raise ConfigError(f"{where}: '{key}' says {rows}x{cols} but has {data.size} numbers")
    if shape is not None and (rows, cols) != shape:
        raise ConfigError(f"{where}: '{key}' must be {shape[0]}x{shape[1]}, got {rows}x{cols}")
    if not np.isfinite(data).all():
        raise ConfigError(f"{where}: '{key}' has non-finite numbers")
    return data.reshape(rows, cols)


def _camera(doc: dict, where: str, name_default: str = "unknown") -> CameraModel:
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: expected a mapping of camera_info keys{_FIX}")
    missing = [k for k in ("image_width", "image_height", "camera_matrix", "distortion_coefficients") if k not in doc]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}; a ROS camera_info YAML has image_width, "
                          f"image_height, camera_matrix, distortion_model, distortion_coefficients, "
                          f"rectification_matrix, projection_matrix{_FIX}")
    try:
        width, height = int(doc["image_width"]), int(doc["image_height"])
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: image_width / image_height must be integers") from None
    if width <= 0 or height <= 0:
        raise ConfigError(f"{where}: image size {width}x{height} must be positive")
    k = _matrix(doc, "camera_matrix", (3, 3), where)
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise ConfigError(f"{where}: camera_matrix has non-positive focal lengths ({k[0, 0]}, {k[1, 1]})")
    model = str(doc.get("distortion_model", "plumb_bob"))
    if model not in DISTORTION_MODELS:
        raise ConfigError(f"{where}: distortion_model {model!r} is not supported; valid: "
                          f"{', '.join(DISTORTION_MODELS)} (OpenCV's pinhole models)")
    d = _matrix(doc, "distortion_coefficients", None, where).ravel()
    lo, hi = DISTORTION_MODELS[model]
    if d.size == 0:
        d = np.zeros(hi)   # ROS writes an empty D for an undistorted camera
    if not lo <= d.size <= hi:
        raise ConfigError(f"{where}: {model} takes {lo}-{hi} distortion coefficients, got {d.size}")
    r = _matrix(doc, "rectification_matrix", (3, 3), where) if "rectification_matrix" in doc else np.eye(3)
    p = _matrix(doc, "projection_matrix", (3, 4), where) if "projection_matrix" in doc else None
    intr = Intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]), width, height)
    return CameraModel(intr, tuple(float(v) for v in d), model, str(doc.get("camera_name", name_default)),
                       tuple(float(v) for v in r.ravel()),
                       None if p is None else tuple(float(v) for v in p.ravel()))


def parse_camera_calibration(doc: Any, where: str = "calibration") -> CameraCalibration:
    """A parsed YAML document -> CameraCalibration (errors name the key and the fix)."""
    if not isinstance(doc, dict):
        raise ConfigError(f"{where}: not a camera_info YAML mapping{_FIX}")
    color = _camera(doc, where)
    depth = ext = None
    extras: dict[str, Any] = {}
    if "depth_camera" in doc:
        depth = _camera(doc["depth_camera"], f"{where}: depth_camera", "depth")
    if "depth_to_color" in doc:
        node = doc["depth_to_color"]
        if not isinstance(node, dict):
            raise ConfigError(f"{where}: depth_to_color must be a mapping with rotation and translation")
        rot = _matrix(node, "rotation", (3, 3), f"{where}: depth_to_color")
        trans = _matrix(node, "translation", None, f"{where}: depth_to_color").ravel()
        if trans.size != 3:
            raise ConfigError(f"{where}: depth_to_color translation must have 3 numbers (metres)")
        ext = Extrinsics.from_rt(rot, trans)
        if "rms_px" in node:
            extras["depth_to_color_rms_px"] = float(node["rms_px"])
    if (depth is None) != (ext is None):
        raise ConfigError(f"{where}: depth registration needs both depth_camera and depth_to_color; the file has "
                          f"only {'depth_camera' if depth is not None else 'depth_to_color'} (re-run "
                          f"`edgefuse calibrate ... --depth-images DIR`)")
    return CameraCalibration(color, depth, ext, extras)


def load_camera_calibration(path: str | Path) -> CameraCalibration:
    """Read a ROS camera_info YAML (with edgefuse's optional depth keys).

    The entry point for `--calibration camera.yaml` on `edgefuse run`, the ROS node and the
    calibration sources; a missing or malformed file raises ConfigError saying what to fix.
    """
    import yaml

    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"calibration file {p} not found; write one with `edgefuse calibrate IMAGES --board SPEC "
                          f"--out {p.name}`")
    try:
        doc = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"calibration file {p} is not YAML: {str(exc).splitlines()[0]}") from None
    return parse_camera_calibration(doc, where=f"calibration file {p}")


# --- writing ----------------------------------------------------------------------------------
def _node(m: np.ndarray) -> dict[str, Any]:
    m = np.atleast_2d(np.asarray(m, dtype=np.float64))
    return {"rows": int(m.shape[0]), "cols": int(m.shape[1]), "data": [float(v) for v in m.ravel()]}


def _camera_doc(cam: CameraModel, full: bool = True) -> dict[str, Any]:
    k = cam.intrinsics
    doc: dict[str, Any] = {"image_width": int(k.width), "image_height": int(k.height), "camera_name": cam.name,
                           "camera_matrix": _node(cam.camera_matrix()), "distortion_model": cam.distortion_model,
                           "distortion_coefficients": _node(np.asarray(cam.distortion)[None])}
    if full:
        doc["rectification_matrix"] = _node(np.asarray(cam.rectification).reshape(3, 3))
        doc["projection_matrix"] = _node(cam.projection_matrix())
    return doc


def camera_calibration_doc(cal: CameraCalibration) -> dict[str, Any]:
    """The YAML mapping: ROS's keys in ROS's order, then edgefuse's depth keys."""
    doc = _camera_doc(cal.color)
    if cal.depth is not None and cal.depth_to_color is not None:
        doc["depth_camera"] = _camera_doc(cal.depth, full=False)
        ext = cal.depth_to_color
        doc["depth_to_color"] = {"rotation": _node(np.asarray(ext.rotation)),
                                 "translation": _node(np.asarray(ext.translation)[:, None])}
        if "depth_to_color_rms_px" in cal.extras:
            doc["depth_to_color"]["rms_px"] = round(float(cal.extras["depth_to_color_rms_px"]), 6)
    return doc


def save_camera_calibration(cal: CameraCalibration, path: str | Path) -> Path:
    """Write the YAML (matrices as `{rows, cols, data: [...]}` like writeCalibrationYml)."""
    import yaml

    p = Path(path).expanduser()
    p.parent.mkdir(parents=True, exist_ok=True)
    # default_flow_style=None: leaf lists (data) inline, mappings in block style, as ROS writes
    p.write_text(yaml.safe_dump(camera_calibration_doc(cal), sort_keys=False, default_flow_style=None))
    return p
