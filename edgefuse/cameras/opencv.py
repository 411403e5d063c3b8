"""`opencv:INDEX|DEVICE|FILE|URL`: any camera or stream `cv2.VideoCapture` opens.

A UVC webcam (`opencv:0`, `opencv:/dev/video2`), a video file (`opencv:run.mp4`), an RTSP /
HTTP stream (`opencv:rtsp://10.0.0.5/stream`) or a GStreamer pipeline when the OpenCV build
has GStreamer. Colour only: a robot with just a webcam still runs the model, every frame
going to the path that relies least on depth through the ordinary depth-health rule
(DEPTH_MISSING; the frame is marked in the per-frame record). The source says so once
when it opens.

Cameras and streams are live: a `LiveCapture` thread grabs continuously and keeps the
newest frames, and a stream that stops delivering is re-opened with backoff. Files are
playback: every frame, as fast as the reader consumes them (`realtime=True` paces them by
their timestamps). `OpenNISource` (openni.py) reuses this class for depth cameras.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgefuse.cameras.base import (
    Frame,
    Intrinsics,
    SourceDisconnected,
    SourceOptions,
    SourceSpec,
)
from edgefuse.cameras.live import DeviceSource, LiveCapture
from edgefuse.errors import ConfigError, require

log = logging.getLogger(__name__)

#: `backend=` names -> cv2 CAP_* constant names (resolved when cv2 is imported).
BACKENDS = {"any": "CAP_ANY", "v4l2": "CAP_V4L2", "ffmpeg": "CAP_FFMPEG", "gstreamer": "CAP_GSTREAMER",
            "dshow": "CAP_DSHOW", "msmf": "CAP_MSMF", "avfoundation": "CAP_AVFOUNDATION"}


@dataclass
class OpenCVOptions(SourceOptions):
    """width/height/fps: requested from a camera (the driver may pick the nearest mode; the
    frames say what it chose); backend: which VideoCapture backend (any, v4l2, ffmpeg,
    gstreamer, ...); queue_size: frames kept for a slow reader (live); timeout_s: no frame
    for this long means disconnected; retry_backoff / give_up_after: as for realsense."""

    width: int | None = None
    height: int | None = None
    fps: float | None = None
    backend: str = "any"
    queue_size: int = 2
    timeout_s: float = 2.0
    retry_backoff: tuple[float, float] = (0.5, 5.0)
    give_up_after: float | None = None


def _parse_target(target: str) -> tuple[Any, bool]:
    """'0' -> (0, live); '/dev/video0' or a URL -> (str, live); an existing file -> (str, playback)."""
    if target.isdigit():
        return int(target), True
    if "://" in target or "!" in target or target.startswith("/dev/"):
        return target, True      # URL, GStreamer pipeline, V4L2 device node
    path = Path(target).expanduser()
    if path.is_file():
        return str(path), False
    raise ConfigError(f"opencv:{target}: not a camera index, /dev node, URL or existing video file; "
                      f"e.g. opencv:0, opencv:/dev/video2, opencv:run.mp4, opencv:rtsp://host/stream")


class OpenCVSource(DeviceSource):
    Options = OpenCVOptions
    #: Said once when the source opens (and why the run takes the RGB-only path).
    COLOUR_ONLY = "colour-only camera: no depth, every frame takes the RGB-only path (depth_missing)"

    def __init__(self, target: str, options: OpenCVOptions | None = None, kind: str = "opencv") -> None:
        opts = options or OpenCVOptions()
        if opts.backend not in BACKENDS:
            raise ConfigError(f"{kind} camera: backend {opts.backend!r} is unknown; valid: {', '.join(BACKENDS)}")
        for key in ("width", "height", "fps"):
            if getattr(opts, key) is not None and getattr(opts, key) <= 0:
                raise ConfigError(f"{kind} camera: {key} must be > 0, got {getattr(opts, key)}")
        if opts.queue_size < 1 or opts.timeout_s <= 0:
            raise ConfigError(f"{kind} camera: queue_size must be >= 1 and timeout_s > 0")
        super().__init__(f"{kind}:{target}", frames=opts.frames)
        self.options = opts
        self.device, self.is_live = self._target(target)
        self._cap: Any = None
        self._capture: LiveCapture | None = None
        self._count = 0

    @classmethod
    def from_spec(cls, spec: SourceSpec, options: OpenCVOptions) -> "OpenCVSource":
        return cls(spec.target or "", options)

    @staticmethod
    def _target(target: str) -> tuple[Any, bool]:
        return _parse_target(target)

    # --- the capture device ---
    def _api(self) -> int:
        return int(getattr(self.cv2, BACKENDS[self.options.backend]))

    def _make_capture(self) -> Any:
        return self.cv2.VideoCapture(self.device, self._api())

    def _configure(self, cap: Any) -> None:
        """Ask a camera for the requested mode (set() is a request; drivers round it)."""
        cv2, o = self.cv2, self.options
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, o.width), (cv2.CAP_PROP_FRAME_HEIGHT, o.height),
                            (cv2.CAP_PROP_FPS, o.fps)):
            if value is not None:
                cap.set(prop, float(value))

    def _start(self) -> None:
        cap = self._make_capture()
        if not cap.isOpened():
            cap.release()
            raise SourceDisconnected(self._not_opened())
        if self.is_live:
            self._configure(cap)
        self._cap = cap

    def _not_opened(self) -> str:
        return (f"OpenCV could not open {self.device!r} (backend {self.options.backend}): check the index / "
                f"device node / URL, that no other program holds the camera, and that this OpenCV build has "
                f"the backend (cv2.getBuildInformation(), 'Video I/O')")

    def _stop(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None

    def _read(self) -> tuple[np.ndarray, np.ndarray | None, dict[str, Any]] | None:
        """One (rgb, depth, meta) from the open capture; None at the end of a file."""
        ok, bgr = self._cap.read()
        if not ok or bgr is None:
            return None
        return self.to_rgb(bgr), None, {"depth_missing": self.COLOUR_ONLY}

    @staticmethod
    def to_rgb(image: np.ndarray) -> np.ndarray:
        """VideoCapture's BGR (or grey / BGRA) -> HxWx3 uint8 RGB."""
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        elif image.shape[2] == 4:
            image = image[..., :3]
        if image.dtype != np.uint8:   # 16-bit video (IR): scale to 8 bits
            image = (image.astype(np.float32) / max(float(image.max()), 1.0) * 255.0).astype(np.uint8)
        return np.ascontiguousarray(image[..., ::-1])

    def _intrinsics(self, rgb: np.ndarray) -> Intrinsics | None:
        """A plain camera does not know its intrinsics (`--calibration` supplies them)."""
        return None

    def _frame(self, read: tuple[np.ndarray, np.ndarray | None, dict[str, Any]], timestamp: float) -> Frame:
        rgb, depth, extra = read
        meta = {"source": self.name, **extra}
        frame = Frame(rgb=rgb, depth=depth, timestamp=timestamp, intrinsics=self._intrinsics(rgb),
                      index=self._count, meta=meta)
        self._count += 1
        return frame

    # --- live: grab thread ---
    def _grab(self) -> Frame | None:
        t0 = time.monotonic()
        while True:
            try:
                read = self._read()
            except self.cv2.error as exc:
                raise SourceDisconnected(f"OpenCV read failed: {exc}") from exc
            if read is not None:
                return self._frame(read, time.time())
            if time.monotonic() - t0 > self.options.timeout_s:
                raise SourceDisconnected(f"no frame for {self.options.timeout_s:g} s")
            time.sleep(0.005)

    # --- FrameSource ---
    def _open(self) -> None:
        self.cv2 = require("cv2", "viz", "the opencv / openni cameras read through OpenCV's VideoCapture")
        self._check_build()
        self._count = 0
        self._start_device()
        self._announce()
        if self.is_live:
            self._start_capture()

    def _check_build(self) -> None:
        """Sources that need a particular OpenCV backend refuse a build without it."""

    def _announce(self) -> None:
        msg = f"{self.name}: {self.COLOUR_ONLY}"
        log.warning("%s", msg)
        if self.on_status is not None:
            self.on_status(msg)

    def _frames(self) -> Iterator[Frame]:
        if self._capture is not None:
            yield from self._capture
            return
        clock: tuple[float, float] | None = None
        fps = float(self._cap.get(self.cv2.CAP_PROP_FPS) or 0.0) or 30.0
        while True:
            read = self._read()
            if read is None:
                return
            # A file's own clock: the decoded frame's position, or the frame count at its rate.
            pos_ms = float(self._cap.get(self.cv2.CAP_PROP_POS_MSEC) or 0.0)
            t = pos_ms / 1000.0 if pos_ms > 0 or self._count == 0 else self._count / fps
            if self.options.realtime:
                clock = clock or (t, time.monotonic())
                delay = clock[1] + (t - clock[0]) - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            yield self._frame(read, t)
