"""The frame-source interface: one `FrameSource` shape for every camera.

Every source (RealSense live, RealSense recordings, ROS bags, dataset folders, the
synthetic scenes) yields the same aligned `Frame` (`frame.py`, docs/architecture.md
"Cameras"). The runtime never needs to know which source it reads. Camera specs and
`open_source` are in `sources.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

from edgefuse.cameras.frame import (  # noqa: F401 - the frame types, with the interface that yields them
    Frame,
    FrameDecodeError,
    FrameError,
    Intrinsics,
    SourceDisconnected,
)
from edgefuse.errors import ConfigError


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
