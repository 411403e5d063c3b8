"""`openni[:INDEX|FILE.oni]`: OpenNI2 depth cameras (Kinect, Xtion, Astra) through OpenCV.

OpenCV's OpenNI2 backend (`cv2.CAP_OPENNI2`) delivers the depth map (uint16 mm) and the
BGR image of one device, or plays an `.oni` recording. By default the device registers
depth to colour itself (`CAP_OPENNI_DEPTH_GENERATOR_REGISTRATION`); with a calibration
file that holds the depth-to-colour extrinsics (`--calibration`), the device's
registration is turned off and edgefuse registers depth with the file's numbers.

The pip wheels of OpenCV (opencv-python, opencv-python-headless) are built without
OpenNI2; the source checks the build when it opens and says what to do instead of failing
at the first frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.cameras.base import Intrinsics, SourceSpec
from edgefuse.cameras.opencv import OpenCVOptions, OpenCVSource
from edgefuse.errors import ConfigError, EdgefuseError


@dataclass
class OpenNIOptions(OpenCVOptions):
    """align: let the device register depth to colour (off: depth stays in the depth camera's
    image, for registration with a calibration file's extrinsics)."""

    align: bool = True


def has_openni2(cv2: Any) -> bool:
    """Whether this OpenCV build can open OpenNI2 devices (built in or as a videoio plugin)."""
    registry = getattr(cv2, "videoio_registry", None)
    if registry is not None and hasattr(cv2, "CAP_OPENNI2"):
        return bool(registry.hasBackend(cv2.CAP_OPENNI2))
    return any("OpenNI2" in line and "YES" in line for line in cv2.getBuildInformation().splitlines())


class OpenNISource(OpenCVSource):
    Options = OpenNIOptions

    def __init__(self, target: str | None = None, options: OpenNIOptions | None = None) -> None:
        super().__init__(target or "0", options or OpenNIOptions(), kind="openni")

    @classmethod
    def from_spec(cls, spec: SourceSpec, options: OpenNIOptions) -> "OpenNISource":
        return cls(spec.target, options)

    @staticmethod
    def _target(target: str) -> tuple[Any, bool]:
        if target.isdigit():
            return int(target), True
        path = Path(target).expanduser()
        if path.suffix.lower() == ".oni":
            if not path.is_file():
                raise ConfigError(f"openni:{target}: recording not found")
            return str(path), False
        raise ConfigError(f"openni:{target}: expected a device index (openni:0) or an .oni recording")

    def _check_build(self) -> None:
        if not has_openni2(self.cv2):
            raise EdgefuseError(
                f"{self.name}: this OpenCV build ({self.cv2.__version__}) has no OpenNI2 backend "
                f"(cv2.getBuildInformation() lists no 'OpenNI2: YES'; the pip wheels never have it). Build OpenCV "
                f"with -DWITH_OPENNI2=ON against the OpenNI2 SDK, or use the camera's own driver through ROS "
                f"(rosbag:FILE)")

    def _api(self) -> int:
        return int(self.cv2.CAP_OPENNI2)

    def _make_capture(self) -> Any:
        cap = self.cv2.VideoCapture(self.device, self._api())
        if cap.isOpened():
            cv2 = self.cv2
            cap.set(cv2.CAP_OPENNI_DEPTH_GENERATOR_REGISTRATION, 1.0 if self.options.align else 0.0)
        return cap

    def _announce(self) -> None:
        """Depth comes with every frame: nothing to say."""

    def _read(self) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]] | None:
        cv2 = self.cv2
        if not self._cap.grab():
            return None
        ok_d, depth = self._cap.retrieve(None, cv2.CAP_OPENNI_DEPTH_MAP)
        ok_c, bgr = self._cap.retrieve(None, cv2.CAP_OPENNI_BGR_IMAGE)
        if not ok_c or bgr is None:
            return None
        return openni_images(bgr, depth if ok_d else None, self.options.align)

    def _intrinsics(self, rgb: np.ndarray) -> Intrinsics | None:
        """The driver's focal length (pixels) with the principal point at the image centre:
        what OpenNI reports; `--calibration` gives measured intrinsics."""
        focal = float(self._cap.get(self.cv2.CAP_OPENNI_DEPTH_GENERATOR_FOCAL_LENGTH) or 0.0)
        if focal <= 0:
            return None
        h, w = rgb.shape[:2]
        return Intrinsics(focal, focal, (w - 1) / 2.0, (h - 1) / 2.0, w, h)


def openni_images(bgr: np.ndarray, depth: np.ndarray | None,
                  registered: bool) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]]:
    """OpenCV's OpenNI images -> (rgb, depth uint16 mm, meta)."""
    meta: dict[str, Any] = {"depth_registered": bool(registered)}
    if depth is not None:
        depth = np.ascontiguousarray(depth, dtype=np.uint16)  # CAP_OPENNI_DEPTH_MAP: CV_16UC1 mm
    else:
        meta["depth_missing"] = "no depth map in this grab"
    return OpenCVSource.to_rgb(bgr), depth, meta
