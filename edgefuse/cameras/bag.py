"""`bag:FILE`: RealSense recordings (`.db3` from librealsense >= 2.58, older `.bag`) via pyrealsense2.

Played back frame by frame with nothing dropped, as fast as the reader consumes frames
(`realtime=True` paces them by their timestamps, like the camera delivered them; the SDK's
own real-time mode is not used because it drops frames), depth aligned to colour with
`rs.align` and converted to millimetres with the recording's depth scale.

Why not `rs.pipeline` + `config.enable_device_from_file` (the usual recipe): the pipeline
starts playback in real time before `set_real_time(False)` can be called, and its syncer
repeats or skips frames when one stream runs ahead, so short recordings lost their first
frames and frame counts varied from run to run. Here the playback device is paused
before its sensors start (so no stream misses the beginning), frames go to our own queue,
colour is paired with the nearest depth (`pairing.py`), and the pair is made into a
frameset with a processing block so that `rs.align` aligns it exactly as it would live.
Back-pressure: when the reader falls behind, playback is paused rather than frames dropped.
"""

from __future__ import annotations

import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from edgefuse.cameras.base import Frame, FrameError, FrameSource, Intrinsics, SourceOptions, SourceSpec
from edgefuse.cameras.pairing import NearestPairer
from edgefuse.cameras.rs_frames import frameset_to_frame, intrinsics_of
from edgefuse.errors import ConfigError, EdgefuseError, require

_END = object()
# Queue levels (frames) at which playback is paused / resumed: bounded memory, nothing dropped.
_HIGH_WATER = 16
_LOW_WATER = 2
# Seconds without any frame or status change before we call the file stuck.
_STALL_TIMEOUT = 10.0


@dataclass
class BagOptions(SourceOptions):
    """depth_scale: metres per depth unit, only for recordings that lack it (software
    devices without a depth_units option); align: align depth to colour (off: depth stays in
    its own resolution and viewpoint)."""

    depth_scale: float | None = None
    align: bool = True


class BagSource(FrameSource):
    Options = BagOptions
    read_ahead = 4   # alignment and conversion off the inference loop (base.FrameSource)

    def __init__(self, path: str | Path, options: BagOptions | None = None) -> None:
        opts = options or BagOptions()
        if opts.depth_scale is not None and opts.depth_scale <= 0:
            raise ConfigError(f"bag camera: depth_scale must be > 0 (metres per unit), got {opts.depth_scale}")
        path = Path(path).expanduser()
        super().__init__(f"bag:{path}", frames=opts.frames, realtime=opts.realtime)
        self.path = path
        self.options = opts
        self._sensors: list[Any] = []
        self._queue: queue.Queue = queue.Queue()
        self._paused = False
        self._resumed = threading.Event()

    @classmethod
    def from_spec(cls, spec: SourceSpec, options: BagOptions) -> "BagSource":
        return cls(spec.target or "", options)

    # --- open / close ---
    def _open(self) -> None:
        if not self.path.is_file():
            raise EdgefuseError(f"bag camera: recording {self.path} not found")
        rs = self.rs = require("pyrealsense2", "realsense", "RealSense recordings are read with pyrealsense2")
        self._ctx = rs.context()
        try:
            self._device = self._ctx.load_device(str(self.path))
        except RuntimeError as exc:
            raise EdgefuseError(f"bag camera: {self.path} is not a RealSense recording librealsense "
                                f"{rs.__version__} can read (.db3 or .bag): {exc}") from exc
        self._playback = self._device.as_playback()
        # Always as fast as we read: the SDK's real-time mode drops frames the reader is late
        # for; `realtime` pacing is done in `_frames` from the frame timestamps instead.
        self._playback.set_real_time(False)
        self._paused = False
        color, depth = self._pick_profiles()
        self.color_profile, self.depth_profile = color, depth
        self.intrinsics: Intrinsics = intrinsics_of(color)
        self.depth_scale = self._depth_scale() if depth is not None else None
        fps = color.fps() or 30
        self._pairer: NearestPairer = NearestPairer(max_gap=1.5 / fps)
        self._align = rs.align(rs.stream.color) if (self.options.align and depth is not None) else None
        self._pair: dict[str, Any] = {}
        self._composer = rs.processing_block(self._compose)
        self._composed = rs.frame_queue(2)
        self._composer.start(self._composed)

        # Pause first: the first sensor to start would otherwise start playback, and a short
        # file could end before the second sensor is listening.
        self._playback.pause()
        self._playback.set_status_changed_callback(self._on_status)
        by_sensor: dict[int, tuple[Any, list[Any]]] = {}
        for sensor, profile in ((self._sensor_of[p.unique_id()], p) for p in (color, depth) if p is not None):
            by_sensor.setdefault(id(sensor), (sensor, []))[1].append(profile)
        for sensor, profiles in by_sensor.values():
            sensor.open(profiles)
            self._sensors.append(sensor)
            sensor.start(self._on_frame)
        self._resumed.set()
        self._playback.resume()

    def _close(self) -> None:
        self._resumed.clear()
        for sensor in self._sensors:
            for step in (sensor.stop, sensor.close):
                try:
                    step()
                except RuntimeError:
                    pass  # already stopped by the end of the file
        self._sensors = []
        self._queue = queue.Queue()
        self._device = self._playback = self._ctx = None

    def _pick_profiles(self) -> tuple[Any, Any]:
        rs = self.rs
        self._sensor_of: dict[int, Any] = {}
        color = depth = None
        for sensor in self._device.query_sensors():
            for p in sensor.get_stream_profiles():
                self._sensor_of[p.unique_id()] = sensor
                st, fmt = p.stream_type(), p.format()
                if st == rs.stream.color and color is None and fmt.name in ("rgb8", "bgr8", "rgba8", "bgra8"):
                    color = p
                elif st == rs.stream.depth and depth is None and fmt == rs.format.z16:
                    depth = p
        if color is None:
            raise EdgefuseError(f"bag camera: {self.path} has no colour stream in rgb8/bgr8/rgba8/bgra8; "
                                f"edgefuse needs colour (and depth) to segment")
        return color, depth

    def _depth_scale(self) -> float:
        if self.options.depth_scale is not None:
            return float(self.options.depth_scale)
        sensor = self._sensor_of[self.depth_profile.unique_id()]
        try:
            return float(sensor.as_depth_sensor().get_depth_scale())
        except RuntimeError as exc:
            raise EdgefuseError(
                f"bag camera: {self.path} does not record the depth scale (depth_units); pass "
                f"depth_scale=<metres per unit>, e.g. 0.001 for a D400 camera") from exc

    # --- SDK callbacks (playback thread) ---
    def _on_frame(self, frame: Any) -> None:
        frame.keep()  # outlive the callback: the reader thread consumes it later
        self._queue.put(frame)

    def _on_status(self, status: Any) -> None:
        if status == self.rs.playback_status.stopped and self._resumed.is_set():
            self._queue.put(_END)

    def _compose(self, frame: Any, source: Any) -> None:
        source.frame_ready(source.allocate_composite_frame([self._pair["depth"], frame]))

    def _wake_reader(self) -> None:
        # A read-ahead thread told to stop may be waiting on the SDK queue (up to the stall
        # timeout): end its playback now.
        self._queue.put(_END)

    # --- reading ---
    def __len__(self) -> int:
        raise TypeError("a recording's frame count is known only after playing it")

    def _next_raw(self) -> Any:
        """The next SDK frame or _END; pauses playback while the reader is behind."""
        if not self._paused and self._queue.qsize() > _HIGH_WATER:
            self._playback.pause()
            self._paused = True
        elif self._paused and self._queue.qsize() <= _LOW_WATER:
            self._playback.resume()
            self._paused = False
        try:
            return self._queue.get(timeout=_STALL_TIMEOUT)
        except queue.Empty:
            if self._paused:
                self._playback.resume()
                self._paused = False
                return self._next_raw()
            raise FrameError(f"bag camera: no frame from {self.path} for {_STALL_TIMEOUT:g} s and playback "
                             f"did not end; the file may be truncated") from None

    def _to_frame(self, t: float, color: Any, depth: Any, index: int) -> Frame:
        meta = {"source": self.name}
        if depth is None:
            meta["depth_missing"] = "no depth frame within 1.5 frame periods"
        if depth is not None and self._align is not None:
            self._pair["depth"] = depth
            self._composer.invoke(color)
            frameset = self._align.process(self._composed.wait_for_frame(5000).as_frameset())
        elif depth is not None:
            self._pair["depth"] = depth
            self._composer.invoke(color)
            frameset = self._composed.wait_for_frame(5000).as_frameset()
        else:
            frameset = _ColorOnly(color)
        return frameset_to_frame(frameset, self.depth_scale or 0.001, self.intrinsics, index, meta)

    def _frames(self) -> Iterator[Frame]:
        color_uid = self.color_profile.unique_id()
        index = 0
        while True:
            f = self._next_raw()
            if f is _END:
                pairs = self._pairer.flush()
            else:
                t = f.get_timestamp() / 1000.0
                is_color = f.get_profile().unique_id() == color_uid
                pairs = self._pairer.add_color(t, f) if is_color else self._pairer.add_depth(t, f)
            for t, color, depth in pairs:
                try:
                    frame = self._to_frame(t, color, depth, index)
                except (RuntimeError, FrameError) as exc:  # one bad frame must not end playback
                    frame = Frame(rgb=_empty_rgb(), depth=None, timestamp=t, intrinsics=self.intrinsics,
                                  index=index, meta={"source": self.name}, error=str(exc))
                index += 1
                yield frame   # `realtime` pacing by the frame timestamps is FrameSource's
            if f is _END:
                return


class _ColorOnly:
    """Frameset look-alike for a colour frame with no depth partner."""

    def __init__(self, color: Any) -> None:
        self._color = color

    def get_color_frame(self) -> Any:
        return self._color

    def get_depth_frame(self) -> None:
        return None


def _empty_rgb():
    import numpy as np

    return np.zeros((0, 0, 3), np.uint8)
