"""`realsense[:SERIAL]`: a live Intel RealSense camera through pyrealsense2.

Colour (rgb8) and depth (z16) at the chosen resolution and rate, depth aligned to colour
with `rs.align(rs.stream.color)` and converted to millimetres with the device's depth scale,
intrinsics from the colour stream. Capture and alignment run in a `LiveCapture` thread:
alignment costs CPU time per frame (a known FPS killer when done inline, docs/architecture.md "Cameras"), and
in the thread it overlaps inference instead of adding to it. When inference falls behind,
the oldest frame is dropped and counted. A disconnect is retried with backoff: the pipeline
is restarted when the camera (same serial) is back, and the run goes on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgefuse.cameras.base import (
    Frame,
    Intrinsics,
    SourceDisconnected,
    SourceOptions,
    SourceSpec,
)
from edgefuse.cameras.live import DeviceSource, LiveCapture
from edgefuse.cameras.rs_frames import frameset_to_frame, intrinsics_of
from edgefuse.errors import ConfigError, EdgefuseError, require

log = logging.getLogger(__name__)


@dataclass
class RealSenseOptions(SourceOptions):
    """width/height/fps: a mode the camera supports for both colour and depth (D435: 640x480,
    848x480, 1280x720 at 6/15/30 fps...); queue_size: frames kept for a slow reader;
    timeout_ms: wait for a frameset before calling the camera disconnected;
    retry_backoff: (first, max) seconds between reconnection attempts;
    give_up_after: seconds of disconnection before the run stops (None: wait for ever);
    align: align depth to colour with `rs.align` (off: depth stays in the depth camera's image,
    for registration with a calibration file's extrinsics); record: also record what the
    camera streams to this file with librealsense's recorder (`.db3` with pyrealsense2 >= 2.58,
    `.bag` before), replayable with `bag:FILE`; after a reconnect recording goes on in
    FILE-1.db3, FILE-2.db3, ... (restarting the pipeline would overwrite the file)."""

    width: int = 640
    height: int = 480
    fps: int = 30
    queue_size: int = 2
    timeout_ms: int = 2000
    retry_backoff: tuple[float, float] = (0.5, 5.0)
    give_up_after: float | None = None
    align: bool = True
    record: str | None = None


class RealSenseSource(DeviceSource):
    Options = RealSenseOptions
    is_live = True

    def __init__(self, serial: str | None = None, options: RealSenseOptions | None = None) -> None:
        opts = options or RealSenseOptions()
        for key in ("width", "height", "fps", "queue_size", "timeout_ms"):
            if getattr(opts, key) <= 0:
                raise ConfigError(f"realsense camera: {key} must be > 0, got {getattr(opts, key)}")
        first, most = opts.retry_backoff
        if not 0 < first <= most:
            raise ConfigError(f"realsense camera: retry_backoff must be (first, max) with 0 < first <= max, "
                              f"got {opts.retry_backoff}")
        super().__init__(f"realsense:{serial}" if serial else "realsense", frames=opts.frames)
        self.serial = serial
        self.options = opts
        self._pipeline: Any = None
        self._capture: LiveCapture | None = None
        self._count = 0
        self._segments = 0

    @classmethod
    def from_spec(cls, spec: SourceSpec, options: RealSenseOptions) -> "RealSenseSource":
        return cls(spec.target, options)

    # --- device ---
    def _connected_serials(self) -> list[str]:
        rs = self.rs
        return [d.get_info(rs.camera_info.serial_number) for d in rs.context().query_devices()]

    def _start(self) -> None:
        rs = self.rs
        serials = self._connected_serials()
        if not serials:
            raise SourceDisconnected("no RealSense camera found (is it plugged into a USB 3 port? "
                                     "on Linux, are librealsense's udev rules installed?)")
        if self.serial is not None and self.serial not in serials:
            raise SourceDisconnected(f"RealSense {self.serial} not found; connected: {', '.join(serials)}")
        o = self.options
        config = rs.config()
        if self.serial is not None:
            config.enable_device(self.serial)
        if o.record is not None:
            config.enable_record_to_file(str(record_segment(o.record, self._segments)))
            self._segments += 1
        config.enable_stream(rs.stream.color, o.width, o.height, rs.format.rgb8, o.fps)
        config.enable_stream(rs.stream.depth, o.width, o.height, rs.format.z16, o.fps)
        pipeline = rs.pipeline()
        try:
            profile = pipeline.start(config)
        except RuntimeError as exc:
            raise EdgefuseError(f"{self.name}: cannot stream colour+depth at {o.width}x{o.height} @ {o.fps} fps "
                                f"({exc}); choose a mode the camera supports, e.g. 640x480 @ 30") from exc
        self._use(pipeline, profile)

    def _use(self, pipeline: Any, profile: Any) -> None:
        """Adopt a started pipeline: depth scale and colour intrinsics of *this* device (after a
        reconnect the camera may be another unit of the same model)."""
        rs = self.rs
        device = profile.get_device()
        self.depth_scale = float(device.first_depth_sensor().get_depth_scale())
        self.intrinsics: Intrinsics = intrinsics_of(profile.get_stream(rs.stream.color))
        self.device_serial = device.get_info(rs.camera_info.serial_number)
        self._pipeline = pipeline

    def _stop(self) -> None:
        if self._pipeline is not None:
            try:
                self._pipeline.stop()
            except RuntimeError:
                pass  # already stopped by the disconnect
            self._pipeline = None

    def _grab(self) -> Frame | None:
        try:
            ok, frames = self._pipeline.try_wait_for_frames(self.options.timeout_ms)
        except RuntimeError as exc:
            raise SourceDisconnected(str(exc)) from exc
        if not ok:
            raise SourceDisconnected(f"no frames for {self.options.timeout_ms} ms")
        meta = {"source": self.name, "serial": self.device_serial, "depth_registered": self._align is not None}
        frame = frameset_to_frame(self._align.process(frames) if self._align is not None else frames,
                                  self.depth_scale, self.intrinsics, self._count, meta)
        self._count += 1
        return frame

    # --- FrameSource ---
    def _open(self) -> None:
        self.rs = require("pyrealsense2", "realsense", "the live RealSense camera")
        self._align = self.rs.align(self.rs.stream.color) if self.options.align else None
        if self.options.record is not None:
            check_record_path(self.options.record, librealsense_record_suffix(self.rs),
                              f"librealsense {getattr(self.rs, '__version__', '')}")
        self._start_device()
        self._start_capture()


def record_segment(path: str | Path, segment: int) -> Path:
    """The file of recording segment `segment` (0: `path` itself; then FILE-1.ext, FILE-2.ext...)."""
    p = Path(path).expanduser()
    return p if segment == 0 else p.with_name(f"{p.stem}-{segment}{p.suffix}")


def check_record_path(path: str | Path, suffix: str, writer: str) -> Path:
    """Refuse a recording path the recorder would reject mid-start (wrong suffix, no folder)
    or that would overwrite a file."""
    p = Path(path).expanduser()
    if p.suffix != suffix:
        raise ConfigError(f"--record {p}: {writer} records to {suffix} files; name it e.g. "
                          f"{p.with_suffix(suffix).name}")
    if not p.parent.is_dir():
        raise ConfigError(f"--record {p}: folder {p.parent} does not exist; create it first")
    if p.exists():
        raise ConfigError(f"--record {p}: the file exists; choose another name (nothing is overwritten)")
    return p


def librealsense_record_suffix(rs: Any) -> str:
    """librealsense >= 2.58 writes only `.db3` (ROS 2 bag) recordings; older releases `.bag`."""
    version = tuple(int(x) for x in str(getattr(rs, "__version__", "0.0")).split(".")[:2] if x.isdigit())
    return ".db3" if version >= (2, 58) else ".bag"
