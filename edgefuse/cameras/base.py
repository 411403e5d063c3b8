"""The frame-source interface: one `Frame` type and one `FrameSource` shape for every camera.

Every source (RealSense live, RealSense recordings, ROS bags, dataset folders, the
synthetic scenes) yields the same aligned frame (docs/architecture.md "Cameras"): rgb uint8 HxWx3 in
RGB order, depth uint16 HxW in millimetres aligned to the colour image (0 = no
measurement; None when the depth stream gave nothing), a timestamp in seconds and the
colour camera's intrinsics. The runtime never needs to know which source it reads.

`open_source("realsense:1234", ...)` parses a camera spec and dispatches through a dict
of (module, class) pairs, so that pyrealsense2 / rosbags / open3d are imported only by the
source that needs them.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ClassVar, Iterator

import numpy as np

from edgefuse.config import from_dict
from edgefuse.errors import ConfigError, EdgefuseError


# --- errors -----------------------------------------------------------------------------

class FrameError(EdgefuseError):
    """A frame source failed in a way the user can act on (unplugged camera, bad file)."""


class SourceDisconnected(FrameError):
    """The device stopped delivering frames (unplugged, USB reset, driver timeout).

    Live sources raise it from their grab function; `LiveCapture` catches it and
    reconnects with backoff, so it reaches the caller only when retrying gives up.
    """


class FrameDecodeError(FrameError):
    """One frame could not be decoded (corrupt PNG, bad message encoding)."""


# --- the frame ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the colour stream (depth is aligned to it), in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Intrinsics":
        """From the dataset meta.jsonl / SynthFrame form {"fx","fy","cx","cy","width","height"}."""
        return from_dict(cls, {k: data[k] for k in ("fx", "fy", "cx", "cy", "width", "height") if k in data},
                         where="intrinsics")

    def to_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)

    def scaled(self, size: tuple[int, int]) -> "Intrinsics":
        """The intrinsics of the image resized to `size` (H, W)."""
        h, w = size
        sx, sy = w / self.width, h / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(w), int(h))


@dataclass
class Frame:
    """One aligned RGB-D frame.

    `rgb`: HxWx3 uint8, RGB order. `depth`: HxW uint16 millimetres aligned to `rgb`, 0 = no
    measurement, None when the source delivered no depth for this frame. `timestamp`:
    seconds (device clock for cameras and recordings, so differences are meaningful).
    `intrinsics`: the colour camera's, None when the source does not know them (a plain
    image folder, a bag without camera_info). `index`: the source's frame counter (for a
    live camera it counts captured frames, so dropped frames show as gaps).
    `error`: set instead of raising when the frame could not be decoded; `validate_frame`
    turns it into a health verdict so the runtime skips the frame and goes on.
    `meta`: source-specific extras (file stem, serial number, message topics...).
    `stamp_ns` / `frame_id`: the ROS header of the colour image, when the frame came from
    one (ROS bag, live node): integer nanoseconds, so outputs carry the input's stamp exactly
    (a float of seconds since 1970 keeps only ~0.2 us); `timestamp` stays the float for
    everything else.
    """

    rgb: np.ndarray
    depth: np.ndarray | None
    timestamp: float
    intrinsics: Intrinsics | None = None
    index: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    stamp_ns: int | None = None
    frame_id: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the colour image."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])


# --- the source interface -------------------------------------------------------------------

@dataclass
class SourceOptions:
    """Options every source accepts (each source's Options dataclass extends these).

    `frames`: stop after this many frames (None: until the source ends; live sources never
    end). `realtime`: pace playback like the camera recorded it; live sources are real-time
    by nature and accept the flag so a CLI can pass it to any source.
    """

    frames: int | None = None
    realtime: bool = False


class FrameSource:
    """Base class of every camera / recording / folder source.

    Use as a context manager and iterate::

        with open_source("bag:run.db3") as src:
            for frame in src:
                ...

    Subclasses implement `_open()`, `_close()` and `_frames()` (a generator of Frames).
    The base class enforces the `frames` limit and opens lazily on first iteration.
    `is_live`: frames come from a running device whether or not we read them (a
    `LiveCapture` thread drops the oldest when inference falls behind; `dropped` counts
    them). Playback sources (recordings, folders) are not live: they wait for the reader,
    drop nothing, and pace themselves like the camera only with `realtime=True`.

    Playback sources set `read_ahead` > 0: their frames are then decoded that many ahead in
    a thread (`readahead.ReadAhead`, a bounded queue: nothing dropped, order and errors as
    without it), and `realtime` pacing (`paced`) is applied here, on the consumer's side,
    from the frame timestamps.
    """

    #: The options dataclass of this source (unknown keys are rejected by `open_source`).
    Options: ClassVar[type] = SourceOptions
    is_live: bool = False
    #: Frames decoded ahead in a thread (0: decoded in the caller's thread, on demand).
    read_ahead: int = 0

    def __init__(self, name: str, frames: int | None = None, realtime: bool = False) -> None:
        if frames is not None and frames < 0:
            raise ConfigError(f"frames must be >= 0 (or None for all), got {frames}")
        self.name = name
        self.max_frames = frames
        #: Called with a human-readable line on disconnect / retry / recovery (live sources);
        #: set it before `open()`, e.g. `src.on_status = console.print`. Also logged.
        self.on_status: Callable[[str], None] | None = None
        #: Release frames at the spacing of their timestamps (playback with `realtime=True`).
        self.paced = bool(realtime)
        self._opened = False
        self._delivered = 0
        self._readers: list[Any] = []   # running ReadAhead threads (one per live iteration)

    # --- to implement ---
    def _open(self) -> None:
        """Acquire the device / file."""

    def _close(self) -> None:
        """Release it; must be safe to call after a failed or partial `_open`."""

    def _frames(self) -> Iterator[Frame]:
        raise NotImplementedError

    def _wake_reader(self) -> None:
        """Called when a read-ahead thread is told to stop: unblock it if `_frames` can wait
        on something other than its own work (a device queue). Default: nothing to do."""

    # --- public ---
    @property
    def dropped(self) -> int:
        """Frames the source discarded because the reader was too slow (live sources only)."""
        return 0

    def __len__(self) -> int:
        """Frames this source will yield when known (playback); TypeError for endless sources."""
        raise TypeError(f"{type(self).__name__} has no known length")

    def open(self) -> "FrameSource":
        if not self._opened:
            self._delivered = 0  # a re-opened source starts over (recordings rewind)
            try:
                self._open()
            except BaseException:
                self._close()
                raise
            self._opened = True
        return self

    def close(self) -> None:
        if self._opened:
            self._opened = False
            self._stop_readers()   # before _close: the reader thread may be using the device
            self._close()

    def _stop_readers(self) -> None:
        readers, self._readers = self._readers, []
        for reader in readers:
            reader.close()

    def __enter__(self) -> "FrameSource":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        self.open()
        if self.max_frames is not None and self._delivered >= self.max_frames:
            return
        frames: Iterator[Frame] = self._frames()
        if self.max_frames is not None:   # the reader never reads past the limit
            frames = _first(frames, self.max_frames - self._delivered)
        reader = None
        if self.read_ahead > 0:
            from edgefuse.cameras.readahead import ReadAhead

            reader = ReadAhead(frames, self.read_ahead, self.name, self._wake_reader)
            self._readers.append(reader)
            frames = reader
        pacer = None
        if self.paced:
            from edgefuse.cameras.readahead import Pacer

            pacer = Pacer()
        try:
            for frame in frames:
                if pacer is not None:
                    pacer.wait(frame.timestamp)
                yield frame
                self._delivered += 1
                if self.max_frames is not None and self._delivered >= self.max_frames:
                    return
        finally:
            if reader is not None:
                reader.close()
                if reader in self._readers:
                    self._readers.remove(reader)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


def _first(frames: Iterator[Frame], n: int) -> Iterator[Frame]:
    """The first `n` frames, never asking for the next one; closes `frames` when done (in
    the thread that iterates, which for a read-ahead is its reader thread)."""
    try:
        for count, frame in enumerate(frames, 1):
            yield frame
            if count >= n:
                return
    finally:
        close = getattr(frames, "close", None)
        if close is not None:
            close()


# --- specs ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourceSpec:
    """A parsed camera spec: `kind` and its one positional argument (serial, file, dir, seed)."""

    kind: str
    target: str | None = None
    split: str | None = None


# kind -> (module, class, usage). Modules are imported only when that kind is opened.
SOURCES: dict[str, tuple[str, str, str]] = {
    "synthetic": ("edgefuse.cameras.synthetic", "SyntheticSource", "synthetic[:SEED]"),
    "folder": ("edgefuse.cameras.folder", "FolderSource", "folder:DIR[:SPLIT]"),
    "realsense": ("edgefuse.cameras.realsense", "RealSenseSource", "realsense[:SERIAL]"),
    "bag": ("edgefuse.cameras.bag", "BagSource", "bag:FILE (.db3 or .bag RealSense recording)"),
    "rosbag": ("edgefuse.cameras.rosbag", "RosbagSource", "rosbag:FILE (ROS 1 .bag or ROS 2 bag folder/.db3/.mcap)"),
    "opencv": ("edgefuse.cameras.opencv", "OpenCVSource", "opencv:INDEX|DEVICE|FILE|URL (colour only)"),
    "openni": ("edgefuse.cameras.openni", "OpenNISource", "openni[:INDEX|FILE.oni] (OpenCV's OpenNI2 backend)"),
    "open3d-realsense": ("edgefuse.cameras.open3d_rs", "Open3DRealSenseSource", "open3d-realsense[:SERIAL]"),
    "open3d-bag": ("edgefuse.cameras.open3d_rs", "Open3DBagSource", "open3d-bag:FILE (.bag, through Open3D)"),
}

# Kinds whose argument is required.
_NEEDS_TARGET = {"folder", "bag", "rosbag", "opencv", "open3d-bag"}


def valid_specs() -> str:
    return ", ".join(usage for _, _, usage in SOURCES.values())


def parse_spec(spec: str) -> SourceSpec:
    """'bag:/data/run.db3' -> SourceSpec('bag', '/data/run.db3'); errors list the valid specs."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"empty camera spec; valid specs: {valid_specs()}")
    kind, sep, rest = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in SOURCES:
        raise ConfigError(f"unknown camera {spec!r}; valid specs: {valid_specs()}")
    target = rest if sep and rest else None
    if kind in _NEEDS_TARGET and target is None:
        raise ConfigError(f"camera {spec!r} needs an argument: {SOURCES[kind][2]}")
    split = None
    if kind == "folder" and target is not None and not Path(target).exists():
        # folder:DIR:SPLIT - split off the last ':' only when DIR itself does not exist,
        # so a directory whose name contains ':' still works.
        head, sep2, tail = target.rpartition(":")
        if sep2 and head and tail and "/" not in tail:
            target, split = head, tail
    if kind == "synthetic" and target is not None:
        try:
            int(target)
        except ValueError:
            raise ConfigError(f"camera {spec!r}: the synthetic seed must be an integer, e.g. synthetic:7") from None
    return SourceSpec(kind, target, split)


def source_class(kind: str) -> type[FrameSource]:
    """The FrameSource class for `kind` (imports its module)."""
    if kind not in SOURCES:
        raise ConfigError(f"unknown camera kind {kind!r}; valid specs: {valid_specs()}")
    module, cls, _ = SOURCES[kind]
    return getattr(importlib.import_module(module), cls)


def open_source(spec: str, calibration: Any = None, **options: Any) -> FrameSource:
    """Build the frame source for a camera spec (not yet opened: use `with` or `.open()`).

    Specs: see `valid_specs()` (realsense[:SERIAL], bag:FILE, rosbag:FILE, folder:DIR[:SPLIT],
    synthetic[:SEED], opencv:..., openni[:...], open3d-realsense[:SERIAL], open3d-bag:FILE).
    `options` are the source's Options fields (e.g. frames=, realtime=, width=, fps=);
    an unknown option raises ConfigError listing the valid ones. Options set to None are
    treated as not given, so a CLI can pass its flags through unchanged.

    `calibration`: a camera_info YAML path or a `CameraCalibration` (`--calibration`): its
    intrinsics replace the device's, and when it holds the depth-to-colour extrinsics,
    depth is registered with them (the device's own alignment is turned off where the
    source has an `align` option).
    """
    parsed = parse_spec(spec)
    cls = source_class(parsed.kind)
    given = {k: v for k, v in options.items() if v is not None}
    cal = None
    raw_depth = False
    if calibration is not None:
        from edgefuse.cameras.camera_info import CameraCalibration, load_camera_calibration

        cal = calibration if isinstance(calibration, CameraCalibration) else load_camera_calibration(calibration)
        names = {f.name for f in dataclasses.fields(cls.Options)}
        if cal.registers_depth and "align" in names:
            given.setdefault("align", False)
            raw_depth = not given["align"]
    opts = from_dict(cls.Options, given, where=f"options of camera {parsed.kind!r}")
    source = cls.from_spec(parsed, opts)  # type: ignore[attr-defined]
    if cal is None:
        return source
    from edgefuse.cameras.calibrated import CalibratedSource

    return CalibratedSource(source, cal, raw_depth=raw_depth)
