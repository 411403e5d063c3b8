"""Live capture: a grab thread feeding a bounded queue that drops the OLDEST frame.

A camera delivers frames whether or not inference keeps up. Reading it synchronously
would make the driver queue stale frames (latency grows without bound) or drop the newest
ones; instead a thread grabs continuously and keeps only the newest `queue_size` frames,
so the robot always acts on the freshest view, and every discarded frame is counted.

Disconnects (USB unplugged, driver timeouts) are retried with exponential backoff and a
clear message; when the device returns the run goes on (issue 5, "Faults"). The class is
generic over a `grab()` callable so all of this is testable without a camera.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Any, Callable, Iterator

from edgefuse.cameras.base import Frame, FrameError, FrameSource, SourceDisconnected
from edgefuse.errors import EdgefuseError

log = logging.getLogger(__name__)


class EndOfStream(Exception):
    """Raised by a grab function when its source has no more frames (not an error)."""


class LiveCapture:
    """Run `grab()` in a thread; consumers `get()` the oldest kept frame.

    grab: returns a Frame, None when no frame arrived this time (poll again), raises
        `SourceDisconnected` when the device is gone, `EndOfStream` when finished.
    reconnect: called (with backoff) after a disconnect until it returns without raising;
        None means just try `grab` again.
    queue_size: frames kept; when full, the oldest is discarded and `dropped` incremented.
    backoff: (first, max) seconds between reconnection attempts; doubles each failure.
    give_up_after: seconds of continuous disconnection after which the consumer gets
        `SourceDisconnected`; None retries for ever (a robot keeps waiting for its camera).
    on_status: called with a human-readable line on disconnect / each retry / recovery
        (the CLI prints it); the same lines go to the `logging` module.
    """

    def __init__(self, grab: Callable[[], Frame | None], *, name: str = "camera",
                 queue_size: int = 2, reconnect: Callable[[], None] | None = None,
                 backoff: tuple[float, float] = (0.5, 5.0), give_up_after: float | None = None,
                 on_status: Callable[[str], None] | None = None) -> None:
        if queue_size < 1:
            raise FrameError(f"queue_size must be >= 1, got {queue_size}")
        self.name = name
        self._grab = grab
        self._reconnect = reconnect
        self._backoff = backoff
        self._give_up_after = give_up_after
        self._on_status = on_status
        self._queue: deque[Frame] = deque()
        self._queue_size = queue_size
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._ended = False
        self.dropped = 0
        self.captured = 0
        self.disconnects = 0

    # --- lifecycle ---
    def start(self) -> "LiveCapture":
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name=f"edgefuse-capture-{self.name}", daemon=True)
            self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def __enter__(self) -> "LiveCapture":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # --- consumer side ---
    def get(self, timeout: float | None = None) -> Frame | None:
        """The oldest kept frame; blocks until one arrives. None at end of stream or on
        timeout. Re-raises a failure of the capture thread (e.g. giving up on a disconnect)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._queue:
                if self._error is not None:
                    raise self._error
                if self._ended or self._stop.is_set():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                # Wake at least every 0.5 s so Ctrl-C in the main thread is handled promptly.
                self._cond.wait(0.5 if remaining is None else min(0.5, remaining))
            return self._queue.popleft()

    def __iter__(self) -> Iterator[Frame]:
        self.start()
        while True:
            frame = self.get()
            if frame is None:
                return
            yield frame

    # --- producer side ---
    def _put(self, frame: Frame) -> None:
        with self._cond:
            if len(self._queue) >= self._queue_size:
                self._queue.popleft()  # the oldest: the consumer should see the freshest view
                self.dropped += 1
            self._queue.append(frame)
            self.captured += 1
            self._cond.notify()

    def _status(self, msg: str, level: int = logging.WARNING) -> None:
        log.log(level, msg)
        if self._on_status is not None:
            try:
                self._on_status(msg)
            except Exception:  # a broken printer must not kill capture
                log.exception("status callback failed")

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                try:
                    frame = self._grab()
                except SourceDisconnected as exc:
                    if not self._recover(exc):
                        return
                    continue
                except EndOfStream:
                    return
                if frame is not None:
                    self._put(frame)
                else:
                    self._stop.wait(0.001)  # a grab that returns at once must not spin a core
        except BaseException as exc:  # surface bugs in the consumer, with their traceback
            self._error = exc
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _recover(self, exc: SourceDisconnected) -> bool:
        """Retry until the device is back (True), or give up / stop (False)."""
        self.disconnects += 1
        started = time.monotonic()
        delay, max_delay = self._backoff
        attempt = 0
        self._status(f"{self.name}: disconnected ({exc}); retrying every {delay:g}-{max_delay:g} s "
                     f"(check the cable; Ctrl-C to stop)")
        while not self._stop.is_set():
            if self._give_up_after is not None and time.monotonic() - started >= self._give_up_after:
                self._error = SourceDisconnected(
                    f"{self.name}: still disconnected after {self._give_up_after:g} s ({attempt} attempts); "
                    f"last error: {exc}. Check the cable and the device, then start again.")
                return False
            if self._stop.wait(delay):
                return False
            attempt += 1
            try:
                if self._reconnect is not None:
                    self._reconnect()
                else:
                    # No reconnect hook: the next successful grab is the proof of life.
                    frame = self._grab()
                    if frame is not None:
                        self._put(frame)
            except SourceDisconnected as again:
                exc = again
                delay = min(delay * 2.0, max_delay)
                self._status(f"{self.name}: reconnect attempt {attempt} failed ({again}); next in {delay:g} s",
                             logging.INFO)
                continue
            except EndOfStream:
                return False
            self._status(f"{self.name}: reconnected after {time.monotonic() - started:.1f} s "
                         f"({attempt} attempt{'s' if attempt != 1 else ''})")
            return True
        return False


def start_capture(source: "Any", grab: Callable[[], Frame | None], reconnect: Callable[[], None] | None,
                  options: "Any") -> LiveCapture:
    """The running capture thread of a live source, from its options (queue_size,
    retry_backoff, give_up_after) and its status callback."""
    return LiveCapture(grab, name=source.name, queue_size=options.queue_size, reconnect=reconnect,
                       backoff=tuple(options.retry_backoff), give_up_after=options.give_up_after,
                       on_status=source.on_status).start()


class DeviceSource(FrameSource):
    """A camera read by a `LiveCapture` thread (RealSense, Open3D's RealSense, OpenCV).

    Subclasses open and close the device (`_start`, raising SourceDisconnected when it is
    absent; `_stop`, safe to call twice) and read one frame (`_grab`). This class does the
    rest, the same for every camera: a device missing at start-up is a one-line error naming
    the source, a disconnect is recovered by stopping and starting again, and closing stops
    the thread before the device."""

    _capture: LiveCapture | None = None

    @property
    def dropped(self) -> int:
        return self._capture.dropped if self._capture is not None else 0

    def _start(self) -> None:
        raise NotImplementedError

    def _stop(self) -> None:
        raise NotImplementedError

    def _grab(self) -> Frame | None:
        raise NotImplementedError

    def _reconnect(self) -> None:
        self._stop()
        self._start()

    def _start_device(self) -> None:
        try:
            self._start()
        except SourceDisconnected as exc:
            raise EdgefuseError(f"{self.name}: {exc}") from exc

    def _start_capture(self) -> None:
        self._capture = start_capture(self, self._grab, self._reconnect, self.options)  # type: ignore[attr-defined]

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        self._stop()

    def _frames(self) -> Iterator[Frame]:
        assert self._capture is not None
        yield from self._capture
