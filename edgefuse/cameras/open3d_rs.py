"""`open3d-realsense[:SERIAL]` and `open3d-bag:FILE`: RealSense through Open3D's sensor API.

The alternative to pyrealsense2 that the design card names: `o3d.t.io.RealSenseSensor`
(live capture, optional recording to a `.bag`) and `o3d.t.io.RSBagReader` (playback). Both
yield Open3D RGBD images with depth aligned to colour by librealsense; here they become the
same `Frame` every source yields (rgb uint8 RGB, depth uint16 mm, intrinsics of the colour
stream).

What Open3D's reader does differently from `bag:FILE` (worth knowing before choosing it):
- it reads `.bag` files only (Open3D 0.20 links librealsense 2.57; `.db3` recordings of
  librealsense >= 2.58 need `bag:FILE`), and only recordings of a device that has a name
  (a camera's do; some software-device recordings do not);
- it plays through an `rs2::pipeline` in real time, so a slow reader skips frames, its
  syncer may pair a colour frame with a neighbouring depth frame (seen on a short
  software-device recording), and its depth is always aligned to colour (a calibration
  file's extrinsics cannot replace the device's there).
`bag:FILE` plays every frame and can hand over unaligned depth; prefer it for evaluation.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgefuse.cameras.base import (
    Frame,
    FrameSource,
    Intrinsics,
    SourceDisconnected,
    SourceOptions,
    SourceSpec,
)
from edgefuse.cameras.live import DeviceSource, LiveCapture
from edgefuse.cameras.realsense import check_record_path, record_segment
from edgefuse.cameras.rs_frames import depth_to_mm
from edgefuse.errors import ConfigError, EdgefuseError, require

log = logging.getLogger(__name__)

#: Open3D's colour format names -> channel order to RGB.
_COLOR_ORDER = {"RGB8": (0, 1, 2), "BGR8": (2, 1, 0), "RGBA8": (0, 1, 2), "BGRA8": (2, 1, 0)}


def _open3d() -> Any:
    o3d = require("open3d", "synth", "the open3d-realsense / open3d-bag cameras use Open3D")
    if not hasattr(o3d.t.io, "RSBagReader"):
        raise EdgefuseError("this Open3D build has no RealSense support (built without BUILD_LIBREALSENSE); "
                            "use realsense[:SERIAL] / bag:FILE (pyrealsense2) instead")
    return o3d


def intrinsics_from_metadata(metadata: Any) -> Intrinsics:
    """Open3D's RGBDVideoMetadata (colour stream's pinhole) -> Intrinsics."""
    k = np.asarray(metadata.intrinsics.intrinsic_matrix, dtype=np.float64)
    return Intrinsics(float(k[0, 0]), float(k[1, 1]), float(k[0, 2]), float(k[1, 2]),
                      int(metadata.width), int(metadata.height))


def rgbd_to_arrays(image: Any, color_format: str, depth_scale: float) -> tuple[np.ndarray, np.ndarray | None]:
    """An Open3D t.geometry.RGBDImage -> (rgb HxWx3 uint8, depth HxW uint16 mm).

    Open3D's `depth_scale` is depth units per metre (1000 for 1 mm units)."""
    color = np.asarray(image.color.as_tensor().numpy())
    if color_format not in _COLOR_ORDER or color.ndim != 3:
        raise EdgefuseError(f"colour format {color_format!r} is not supported; record colour as "
                            f"{', '.join(_COLOR_ORDER)}")
    rgb = np.ascontiguousarray(color[..., list(_COLOR_ORDER[color_format])], dtype=np.uint8)
    depth = None
    if not image.depth.is_empty():
        raw = np.asarray(image.depth.as_tensor().numpy())
        depth = depth_to_mm(raw.reshape(raw.shape[0], raw.shape[1]), 1.0 / float(depth_scale))
    return rgb, depth


# --- playback ---------------------------------------------------------------------------------
class Open3DBagSource(FrameSource):
    """`open3d-bag:FILE`: a RealSense `.bag` through `o3d.t.io.RSBagReader`."""

    Options = SourceOptions

    def __init__(self, path: str | Path, options: SourceOptions | None = None) -> None:
        opts = options or SourceOptions()
        path = Path(path).expanduser()
        super().__init__(f"open3d-bag:{path}", frames=opts.frames)
        self.path = path
        self.options = opts
        self._reader: Any = None

    @classmethod
    def from_spec(cls, spec: SourceSpec, options: SourceOptions) -> "Open3DBagSource":
        return cls(spec.target or "", options)

    def _open(self) -> None:
        if not self.path.is_file():
            raise EdgefuseError(f"open3d-bag camera: recording {self.path} not found")
        o3d = _open3d()
        reader = o3d.t.io.RSBagReader()
        if not reader.open(str(self.path)):
            raise EdgefuseError(
                f"open3d-bag camera: Open3D could not open {self.path}; it reads RealSense .bag files of "
                f"librealsense < 2.58 from a named device only. Play it with bag:{self.path} (pyrealsense2) instead")
        self._reader = reader
        md = reader.metadata
        self.intrinsics = intrinsics_from_metadata(md)
        self.color_format = str(md.color_format)
        self.depth_scale = float(md.depth_scale)
        self.serial = str(md.serial_number)
        if self.color_format not in _COLOR_ORDER:
            self._close()
            raise EdgefuseError(f"open3d-bag camera: {self.path} has colour in {self.color_format}; "
                                f"edgefuse needs one of {', '.join(_COLOR_ORDER)}")

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __len__(self) -> int:
        raise TypeError("a recording's frame count is known only after playing it")

    def _frames(self) -> Iterator[Frame]:
        reader = self._reader
        index = 0
        while not reader.is_eof():
            image = reader.next_frame()
            if image.is_empty():
                return
            t = reader.get_timestamp() / 1e6
            meta = {"source": self.name, "serial": self.serial}
            try:
                rgb, depth = rgbd_to_arrays(image, self.color_format, self.depth_scale)
            except (RuntimeError, EdgefuseError) as exc:   # one bad frame must not end playback
                yield Frame(rgb=np.zeros((0, 0, 3), np.uint8), depth=None, timestamp=t, intrinsics=self.intrinsics,
                            index=index, meta=meta, error=str(exc))
            else:
                yield Frame(rgb=rgb, depth=depth, timestamp=t, intrinsics=self.intrinsics, index=index, meta=meta)
            index += 1


# --- live ---------------------------------------------------------------------------------------
@dataclass
class Open3DRealSenseOptions(SourceOptions):
    """width/height/fps: a mode the camera supports for colour and depth; align: align depth to
    colour (off: for registration with a calibration file); record: also write the stream to
    this `.bag` (Open3D's recorder; replay with open3d-bag:FILE or bag:FILE); queue_size,
    retry_backoff, give_up_after: as for realsense."""

    width: int = 640
    height: int = 480
    fps: int = 30
    align: bool = True
    record: str | None = None
    queue_size: int = 2
    retry_backoff: tuple[float, float] = (0.5, 5.0)
    give_up_after: float | None = None


class Open3DRealSenseSource(DeviceSource):
    """`open3d-realsense[:SERIAL]`: a live camera through `o3d.t.io.RealSenseSensor`."""

    Options = Open3DRealSenseOptions
    is_live = True

    def __init__(self, serial: str | None = None, options: Open3DRealSenseOptions | None = None) -> None:
        opts = options or Open3DRealSenseOptions()
        for key in ("width", "height", "fps", "queue_size"):
            if getattr(opts, key) <= 0:
                raise ConfigError(f"open3d-realsense camera: {key} must be > 0, got {getattr(opts, key)}")
        if opts.record is not None:
            check_record_path(opts.record, ".bag", "Open3D")
        super().__init__(f"open3d-realsense:{serial}" if serial else "open3d-realsense", frames=opts.frames)
        self.serial = serial
        self.options = opts
        self._sensor: Any = None
        self._capture: LiveCapture | None = None
        self._count = 0
        self._segments = 0

    @classmethod
    def from_spec(cls, spec: SourceSpec, options: Open3DRealSenseOptions) -> "Open3DRealSenseSource":
        return cls(spec.target, options)

    def sensor_config(self) -> dict[str, str]:
        """Open3D's RealSenseSensorConfig map for these options."""
        o = self.options
        return {"serial": self.serial or "", "color_format": "RS2_FORMAT_RGB8",
                "color_resolution": f"{o.width},{o.height}", "depth_format": "RS2_FORMAT_Z16",
                "depth_resolution": f"{o.width},{o.height}", "fps": str(o.fps)}

    def _start(self) -> None:
        o3d = self.o3d
        devices = o3d.t.io.RealSenseSensor.enumerate_devices()
        serials = [d.serial for d in devices]
        if not serials:
            raise SourceDisconnected("no RealSense camera found through Open3D (is it plugged into a USB 3 port? "
                                     "on Linux, are librealsense's udev rules installed?)")
        if self.serial is not None and self.serial not in serials:
            raise SourceDisconnected(f"RealSense {self.serial} not found; connected: {', '.join(serials)}")
        sensor = o3d.t.io.RealSenseSensor()
        record = ""
        if self.options.record is not None:   # after a reconnect: FILE-1.bag, FILE-2.bag, ...
            record = str(record_segment(self.options.record, self._segments))
            self._segments += 1
        cfg = o3d.t.io.RealSenseSensorConfig(self.sensor_config())
        if not sensor.init_sensor(cfg, 0, record) or not sensor.start_capture(bool(record)):
            raise SourceDisconnected(f"Open3D could not start the camera at {self.options.width}x"
                                     f"{self.options.height} @ {self.options.fps} fps; choose a mode it supports")
        md = sensor.get_metadata()
        self.intrinsics = intrinsics_from_metadata(md)
        self.color_format = str(md.color_format) or "RGB8"
        self.depth_scale = float(md.depth_scale)
        self._sensor = sensor

    def _stop(self) -> None:
        if self._sensor is not None:
            try:
                self._sensor.stop_capture()
            except RuntimeError:
                pass   # already stopped by the disconnect
            self._sensor = None

    def _grab(self) -> Frame | None:
        try:
            image = self._sensor.capture_frame(True, self.options.align)
        except RuntimeError as exc:
            raise SourceDisconnected(str(exc)) from exc
        if image.is_empty():
            raise SourceDisconnected("Open3D returned an empty frame")
        rgb, depth = rgbd_to_arrays(image, self.color_format, self.depth_scale)
        meta = {"source": self.name, "depth_registered": bool(self.options.align)}
        frame = Frame(rgb=rgb, depth=depth, timestamp=self._sensor.get_timestamp() / 1e6,
                      intrinsics=self.intrinsics, index=self._count, meta=meta)
        self._count += 1
        return frame

    def _open(self) -> None:
        self.o3d = _open3d()
        self._start_device()
        self._start_capture()
