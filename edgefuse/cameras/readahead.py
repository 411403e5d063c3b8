"""Playback off the critical path: frames decoded ahead in a thread, released on time.

A recording or a folder is read frame by frame: PNG decoding, bag message decoding and
RealSense alignment take milliseconds per frame that the inference loop would otherwise
wait for (issue 10, "A demo that shows the runtime"). `ReadAhead` runs the source's frame
generator in a thread that fills a bounded queue - nothing is dropped: when the queue is
full the reader waits, so memory stays bounded and the order is the generator's. An
exception the generator raises reaches the consumer at the position it happened, after
the frames before it, exactly as without the thread. `close()` stops the thread and
closes the generator in it (its `finally` blocks run there); no thread outlives it.

`Pacer` releases frames at the spacing of their timestamps (`realtime` playback); it runs
on the consumer's side so a frame decoded ahead is handed over on time, not late by its
decoding time.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# Queue items: (kind, value).
_ITEM, _ERROR, _END = 0, 1, 2
# How often a blocked reader or consumer re-checks for a stop (seconds): the bound on how
# long close() waits for a reader that sits in a full queue.
_POLL_S = 0.05


class ReadAhead(Generic[T]):
    """Iterate `frames` in a thread, `depth` items ahead of the consumer.

    name: for the thread name and messages. on_stop: called (from `close()`, before joining)
    to wake a producer blocked inside the generator, e.g. on a device queue.
    """

    def __init__(self, frames: Iterator[T], depth: int, name: str = "source",
                 on_stop: Callable[[], None] | None = None) -> None:
        if depth < 1:
            raise ValueError(f"read-ahead depth must be >= 1, got {depth}")
        self.name = name
        self._frames = frames
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._on_stop = on_stop
        self._done = False
        self._thread = threading.Thread(target=self._run, name=f"edgefuse-readahead-{name}", daemon=True)
        self._thread.start()

    # --- producer (reader thread) ---
    def _put(self, item: tuple[int, object]) -> bool:
        """Blocking put that gives up when stopped; False if it gave up."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _run(self) -> None:
        try:
            for frame in self._frames:
                if not self._put((_ITEM, frame)):
                    return
            self._put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, raised there
            self._put((_ERROR, exc))
        finally:
            close = getattr(self._frames, "close", None)
            if close is not None:
                try:
                    close()   # the generator's finally blocks run here, in its own thread
                except Exception:  # noqa: BLE001 - a failing cleanup must not hide the stop
                    log.exception("closing the reader of %s failed", self.name)

    # --- consumer ---
    def __iter__(self) -> ReadAhead[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        while True:
            try:
                kind, value = self._queue.get(timeout=0.5)   # wakes for Ctrl-C on every platform
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    self._done = True
                    raise StopIteration from None
        if kind == _ITEM:
            return value  # type: ignore[return-value]
        self._done = True
        if kind == _ERROR:
            raise value  # type: ignore[misc]
        raise StopIteration

    def close(self, timeout: float = 5.0) -> None:
        """Stop the reader and wait for it; frames still queued are discarded."""
        self._done = True
        self._stop.set()
        if self._on_stop is not None:
            self._on_stop()
        while True:   # unblock a reader waiting on a full queue
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.warning("the reader of %s did not stop within %.1f s", self.name, timeout)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()


class Pacer:
    """Hold each frame until its timestamp's offset from the first frame has passed on the
    wall clock (`realtime` playback). A reader slower than the recording is never held."""

    def __init__(self) -> None:
        self._clock: tuple[float, float] | None = None   # (first timestamp, wall time then)

    def wait(self, timestamp: float) -> None:
        if self._clock is None:
            self._clock = (timestamp, time.monotonic())
            return
        delay = self._clock[1] + (timestamp - self._clock[0]) - time.monotonic()
        if delay > 0:
            time.sleep(delay)
