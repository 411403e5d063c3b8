"""A source seen through a calibration file (`--calibration camera.yaml`).

Any source can be wrapped: its frames get the file's colour intrinsics instead of the
device's, and when the file holds the depth camera and the depth-to-colour extrinsics,
depth is registered to colour here (`registration.py`) instead of by the device. For
sources that can hand over unregistered depth (`realsense`, `bag`, `open3d-realsense`:
their `align` option), `open_source(..., calibration=...)` turns the device's alignment
off so the file's extrinsics are the ones used. A source whose depth is inherently
unregistered marks its frames `meta["depth_registered"] = False`.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Iterator

import numpy as np

from edgefuse.cameras.base import Frame, FrameSource
from edgefuse.cameras.camera_info import CameraCalibration, CameraModel
from edgefuse.cameras.registration import DepthRegistrar
from edgefuse.errors import EdgefuseError

log = logging.getLogger(__name__)


class FrameCalibrator:
    """The calibration applied to one frame at a time: the file's colour intrinsics, and
    depth registered to colour where it is not. Shared by `CalibratedSource` (pulled
    frames) and the ROS node (pushed frames), so both apply a calibration the same way.

    raw_depth: every depth frame is in the depth camera's image (the device's alignment is
    off, or a ROS node subscribes to raw depth). `say` gets each per-run fact once.
    """

    def __init__(self, calibration: CameraCalibration, raw_depth: bool = False, name: str = "camera",
                 say: Callable[[str], None] | None = None) -> None:
        self.calibration = calibration
        self.raw_depth = raw_depth
        self.name = name
        self.say = say
        self._colour: dict[tuple[int, int], CameraModel] = {}
        self._registrars: dict[tuple, DepthRegistrar] = {}
        self._said: set[str] = set()

    def _once(self, key: str, message: str) -> None:
        """Say a per-run fact once, not per frame."""
        if key not in self._said:
            self._said.add(key)
            log.warning("%s: %s", self.name, message)
            if self.say is not None:
                self.say(f"{self.name}: {message}")

    def _registrar(self, colour: CameraModel, depth_shape: tuple[int, int]) -> DepthRegistrar:
        key = (colour.size, depth_shape)
        reg = self._registrars.get(key)
        if reg is None:
            cal = self.calibration
            assert cal.depth is not None and cal.depth_to_color is not None
            depth = cal.depth.scaled(depth_shape)
            reg = DepthRegistrar(depth.intrinsics, colour.intrinsics, cal.depth_to_color,
                                 depth_distortion=depth.distortion, color_distortion=colour.distortion)
            self._registrars[key] = reg
        return reg

    def __call__(self, frame: Frame) -> Frame:
        """One frame with the calibration applied (a decode error passes through untouched)."""
        if frame.error is not None or frame.rgb.ndim != 3 or frame.rgb.size == 0:
            return frame
        size = frame.size
        colour = self._colour.get(size)
        if colour is None:
            colour = self._colour[size] = self.calibration.color.scaled(size)
        meta = dict(frame.meta)
        depth = frame.depth
        unregistered = depth is not None and (self.raw_depth or frame.meta.get("depth_registered") is False)
        if unregistered and self.calibration.registers_depth:
            try:
                depth = self._registrar(colour, tuple(depth.shape))(np.asarray(depth, dtype=np.uint16))
            except EdgefuseError as exc:   # a frame of another size: this frame goes RGB-only
                meta["depth_missing"] = f"registration failed: {exc}"
                depth = None
            else:
                meta["depth_registered"] = "calibration"
        elif unregistered:
            self._once("no-extrinsics", "depth is not registered to colour and the calibration file has no "
                                        "depth_to_color; frames go to the RGB-only path (calibrate with "
                                        "`edgefuse calibrate ... --depth-images DIR`)")
            meta["depth_missing"] = "unregistered depth and no depth_to_color in the calibration"
            depth = None
        elif depth is not None and self.calibration.registers_depth:
            self._once("device-registered", "depth is registered by the device; the calibration's depth_to_color "
                                            "is not used (only its colour intrinsics are)")
        return dataclasses.replace(frame, depth=depth, intrinsics=colour.intrinsics, meta=meta)


class CalibratedSource(FrameSource):
    """`inner`'s frames with the calibration's intrinsics; unregistered depth registered
    (`FrameCalibrator`).

    raw_depth: the inner source was opened with its alignment off, so every depth frame is
    in the depth camera's image (what `open_source` arranges when it can).
    """

    def __init__(self, inner: FrameSource, calibration: CameraCalibration, raw_depth: bool = False) -> None:
        super().__init__(f"{inner.name}+calibration", frames=None)  # the inner source counts frames
        self.inner = inner
        self.calibration = calibration
        self.raw_depth = raw_depth
        self.is_live = inner.is_live
        # on_status is set after construction (before open): look it up when a fact is said
        self.apply = FrameCalibrator(calibration, raw_depth, inner.name,
                                     say=lambda message: self.on_status and self.on_status(message))

    @property
    def dropped(self) -> int:
        return self.inner.dropped

    def __len__(self) -> int:
        return len(self.inner)

    def _open(self) -> None:
        self.inner.on_status = self.on_status
        self.inner.open()

    def _close(self) -> None:
        self.inner.close()

    def _frames(self) -> Iterator[Frame]:
        for frame in self.inner:
            yield self.apply(frame)
