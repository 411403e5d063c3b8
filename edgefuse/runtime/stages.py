"""The pipelined per-frame step (docs/architecture.md "The per-frame step", issue 19).

`FrameProcessor.process` is three stage functions back to back: `pre` (validate, prepare),
`infer` (stem/gate, path choice, path engine) and `post` (sinks). Run in sequence, a frame
costs their sum; here each runs in its own thread, so while frame N is in the engines,
frame N+1 is decoded and prepared and frame N-1 is written / published, and the output rate
is set by the slowest stage, not by the sum:

    feed + pre (thread) -> [A: one] -> infer (thread) -> [B: one] -> post (caller's thread)

Both queues hold one item. How frames enter (`Intake`):

- EVERY (a recording played as fast as possible): A blocks; no frame is lost, order kept.
- JUST_IN_TIME (a live camera, the ROS node: sources that keep only their newest frames
  themselves): `pre` takes the source's newest frame only when the engines are about to be
  free: after they take a frame it waits `delay`, adapted per frame so the next one is
  ready just before they finish (`_plan`). Preparing every camera frame instead takes a
  core's share from the engines on a small CPU (480x640 frames at 40 Hz on 2 busy cores:
  inference 34 -> 47 ms, benchmarks/pipeline.py), and a frame prepared early waits, which
  adds latency. The camera's buffer (the node's slot) drops and counts the frames not taken.
- NEWEST (`--realtime` playback, whose pacing drops nothing): `pre` prepares each frame; a
  newer one replaces a prepared frame the engines have not taken yet and counts a drop.

B always blocks: every output is written. `post` runs in the caller's thread, so Ctrl-C
lands there and an OpenCV window (`--show`) is drawn from the thread that made it.

A frame that raises in a stage is counted, handed to `on_error` and skipped; the stage goes
on with the next frame (errors the caller names `fatal` end the run instead). What the feed
raises (a camera that gave up, Ctrl-C in a source) reaches the caller after the frames
before it, like `cameras/readahead.py`. `stop()` (or leaving the `with` block) joins every
thread: none outlives the run.

Thread budget: ONNX Runtime's intra-op pool runs inside the infer thread; `pre` and `post`
are one thread each. ORT's workers do not spin after a run (runners/ort.py), so the cores
they leave idle between frames go to the other stages instead of being burnt waiting;
`StageConfig` holds the split and says it in one line.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from edgefuse.errors import ConfigError
from edgefuse.runtime.processor import FrameProcessor, FrameResult
from edgefuse.runtime.sinks import StopRequested

log = logging.getLogger(__name__)

STAGE_NAMES = ("pre", "infer", "post")
# How often a blocked stage re-checks for a stop (seconds): the bound on how long stop() waits
# for a thread that sits in an empty or full queue.
_POLL_S = 0.05
# JUST_IN_TIME planning (PipelinedStep._plan): a prepared frame may wait this long for the
# engines (a margin against jitter); a quarter of any longer wait is added to the delay
# before the next read (slowly: a starved engine costs output rate, a waiting frame only
# latency), while an engine wait is taken off it at once.
_TARGET_S = 0.002
_GAIN = 0.25
_MAX_DELAY_S = 1.0


class Intake(str, enum.Enum):
    """How frames enter the pipelined step (see the module's docstring)."""

    EVERY = "every"                  # blocking: no loss, order kept (offline playback)
    JUST_IN_TIME = "just_in_time"    # the source's newest, when the engines need one (live)
    NEWEST = "newest"                # each frame prepared, newest kept (paced playback)


@dataclass
class StageConfig:
    """How the per-frame step runs. `pipeline`: three overlapping stages (default) or one
    after the other; `ort_threads`: ONNX Runtime's intra-op threads (`--threads`, 0: one per
    core, ORT's default); `opencv_threads`: OpenCV's pool while pipelined (`pre` resizes and
    registers depth with it; one thread leaves the cores to the engines; 0: OpenCV's default)."""

    pipeline: bool = True
    ort_threads: int = 0
    opencv_threads: int = 1

    def __post_init__(self) -> None:
        if self.opencv_threads < 0:
            raise ConfigError(f"--opencv-threads must be >= 0 (0: OpenCV's default), got {self.opencv_threads}")

    def apply(self) -> None:
        """Set OpenCV's thread count (pipelined runs only; process-wide, as OpenCV's is)."""
        if not self.pipeline or not self.opencv_threads:
            return
        try:
            import cv2
        except ImportError:   # no OpenCV: nothing in `pre` uses it
            return
        cv2.setNumThreads(self.opencv_threads)

    def describe(self, intake: Intake | None = None) -> str:
        """The split in one line, for the run summary and the node's start-up line."""
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        ort = f"ORT intra-op {self.ort_threads}" if self.ort_threads else "ORT intra-op default (one per core)"
        if not self.pipeline:
            return f"sequential per-frame step: {ort}, no spinning; {cores} cores"
        queue = "" if intake is None else f", {_INTAKE_WORDS[intake]}"
        cv = f"OpenCV {self.opencv_threads}" if self.opencv_threads else "OpenCV default"
        return f"pipelined per-frame step (pre | infer | post threads{queue}): {ort}, no spinning, {cv}; {cores} cores"


_INTAKE_WORDS = {Intake.EVERY: "every frame, in order", Intake.JUST_IN_TIME: "newest frame, just in time",
                 Intake.NEWEST: "newest prepared frame kept"}


class Handoff:
    """A queue of one between two stages. `newest_only`: `put` never waits; an item not yet
    taken is replaced and counted in `dropped`. Otherwise `put` waits until the slot is free.
    `put(..., last=True)` (end of stream, an error) always waits, so it is never replaced and
    never replaces a frame. `close()` wakes every waiter; later puts are discarded."""

    _EMPTY = object()

    def __init__(self, newest_only: bool, on_drop: Callable[[], None] | None = None) -> None:
        self.newest_only = newest_only
        self.on_drop = on_drop
        self.dropped = 0
        self._unseen = 0        # drops since the last take (the taker records them)
        self._item: Any = self._EMPTY
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: Any, last: bool = False) -> bool:
        """False when the queue was closed before the item could go in."""
        with self._cond:
            if self.newest_only and not last:
                if self._item is not self._EMPTY:
                    self.dropped += 1
                    self._unseen += 1
                    if self.on_drop is not None:
                        self.on_drop()
            else:
                while self._item is not self._EMPTY and not self._closed:
                    self._cond.wait(_POLL_S)
            if self._closed:
                return False
            self._item = item
            self._cond.notify_all()
            return True

    def take(self, timeout: float) -> tuple[Any, int]:
        """(item, frames dropped here since the last take); item is `Handoff._EMPTY` after
        `timeout` seconds or once closed."""
        with self._cond:
            if self._item is self._EMPTY and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, self._EMPTY
            dropped = 0
            if item is not self._EMPTY:
                dropped, self._unseen = self._unseen, 0
                self._cond.notify_all()
            return item, dropped

    def wait_empty(self) -> bool:
        """Wait until the item was taken; False once closed."""
        with self._cond:
            while self._item is not self._EMPTY and not self._closed:
                self._cond.wait(_POLL_S)
            return not self._closed

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()


class _End:
    """The feed is done: `error` None at its end, else what it raised."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error


@dataclass
class StageStats:
    frames: int = 0
    busy_s: float = 0.0
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"frames": self.frames, "failed": self.failed,
                "mean_ms": self.busy_s / self.frames * 1e3 if self.frames else None}


# feed() -> (frame, t_start, frames dropped before it) | None (nothing yet: ask again);
# StopIteration at the end.
Feed = Callable[[], "tuple[Any, float, int] | None"]


class PipelinedStep:
    """Run `processor`'s stages on frames from `feed`, overlapped; iterate `results()` in
    the caller's thread (it runs `post`). `on_error(stage, exc)` hears of each failed frame;
    `on_drop()` of each frame the newest-only queue discarded."""

    def __init__(self, processor: FrameProcessor, feed: Feed, intake: Intake,
                 on_error: Callable[[str, Exception], None] | None = None,
                 on_drop: Callable[[], None] | None = None, wake: Callable[[], None] | None = None,
                 fatal: tuple[type[BaseException], ...] = (), name: str = "edgefuse") -> None:
        self.processor = processor
        self.feed = feed
        self.intake = Intake(intake)
        self.on_error = on_error
        self.wake = wake        # called when a stop finds the feed still blocked (closes the source)
        # Errors that end the run rather than the frame (`edgefuse run`: a sink that cannot
        # work at all, e.g. --show without a display); raised in the caller, in order.
        self.fatal = (StopRequested, *fatal)
        self.name = name
        self.to_infer = Handoff(self.intake is not Intake.EVERY, on_drop)
        self.to_post = Handoff(newest_only=False)
        self.stats = {k: StageStats() for k in STAGE_NAMES}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        # JUST_IN_TIME: how long `pre` waits, after the engines took a frame, before it reads
        # the next one (seconds; adapted per frame by `_plan`).
        self.delay = 0.0

    # --- lifecycle ---
    def start(self) -> PipelinedStep:
        for stage, target in (("pre", self._pre_loop), ("infer", self._infer_loop)):
            t = threading.Thread(target=target, name=f"{self.name}-{stage}", daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop and join the stage threads (frames in flight are discarded)."""
        self._stop.set()
        self.to_infer.close()
        self.to_post.close()
        pre = self._threads[0] if self._threads else None
        if pre is not None:
            pre.join(1.0)
            if pre.is_alive() and self.wake is not None:   # blocked inside the feed
                self.wake()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                log.warning("stage thread %s did not stop within %.0f s", t.name, timeout)
        self._threads = [t for t in self._threads if t.is_alive()]

    def __enter__(self) -> PipelinedStep:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def alive(self) -> list[str]:
        return [t.name for t in self._threads if t.is_alive()]

    # --- stages ---
    def _timed(self, stage: str, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) with its time counted; a failing frame is counted, reported, None."""
        t0 = time.perf_counter()
        try:
            return fn(*args)
        except self.fatal:
            raise
        except Exception as exc:  # noqa: BLE001 - one failing frame must not stop the stage
            self.stats[stage].failed += 1
            if self.on_error is not None:
                self.on_error(stage, exc)
            else:
                log.warning("frame failed in %s: %s: %s", stage, type(exc).__name__, exc)
            return None
        finally:
            self.stats[stage].busy_s += time.perf_counter() - t0
            self.stats[stage].frames += 1

    def _pre_loop(self) -> None:
        while not self._stop.is_set():
            if self.intake is Intake.JUST_IN_TIME and not self._wait_for_the_engines():
                return
            try:
                got = self.feed()
            except StopIteration:
                self.to_infer.put(_End(), last=True)
                return
            except BaseException as exc:  # noqa: BLE001 - raised in the caller, after the frames before it
                self.to_infer.put(_End(exc), last=True)
                return
            if got is None:
                continue
            try:
                staged = self._timed("pre", self.processor.pre, *got)
            except self.fatal as exc:
                self.to_infer.put(_End(exc), last=True)
                return
            if staged is not None:
                self.to_infer.put(staged)

    def _wait_for_the_engines(self) -> bool:
        """JUST_IN_TIME: return once the engines took the last frame and `delay` passed."""
        if not self.to_infer.wait_empty():
            return False
        if self.delay > 0:
            self._stop.wait(self.delay)
        return not self._stop.is_set()

    def _plan(self, idle_since: float, prepared_at: float, taken_at: float) -> None:
        """Adapt `delay` so the next frame is ready just before the engines come free: a frame
        that waited for the engines (older than needed: latency) lengthens it a little; engines
        that waited for a frame (output rate lost) shorten it by that wait at once. Feedback,
        not a prediction from stage means: a dynamic network's paths differ in cost, and on a
        shared CPU so do the stages."""
        starved = max(0.0, prepared_at - idle_since)
        aged = max(0.0, taken_at - prepared_at)
        step = -starved if starved > 0 else _GAIN * (aged - _TARGET_S)
        self.delay = min(max(0.0, self.delay + step), _MAX_DELAY_S)

    def _take(self, handoff: Handoff) -> tuple[Any, int] | None:
        """The next item of `handoff` and the drops before it, waiting; None once stopped."""
        while True:
            item, dropped = handoff.take(_POLL_S)
            if item is not Handoff._EMPTY:
                return item, dropped
            if self._stop.is_set():
                return None

    def _infer_loop(self) -> None:
        carried = 0   # drops before a frame that then failed: recorded with the next one
        idle_since = time.perf_counter()
        while (taken := self._take(self.to_infer)) is not None:
            item, dropped = taken
            if isinstance(item, _End):
                self.to_post.put(item, last=True)
                return
            if self.intake is Intake.JUST_IN_TIME:
                self._plan(idle_since, item.t_prepared, time.perf_counter())
            carried += dropped
            try:
                staged = self._timed("infer", self.processor.infer, item, carried)
            except self.fatal as exc:
                self.to_post.put(_End(exc), last=True)
                return
            idle_since = time.perf_counter()
            if staged is not None:
                carried = 0
                self.to_post.put(staged)

    def results(self) -> Iterator[FrameResult]:
        """Run `post` on each inferred frame, in order; ends with the feed (re-raising what
        it raised) or at `stop()`."""
        while (taken := self._take(self.to_post)) is not None:
            item = taken[0]
            if isinstance(item, _End):
                if item.error is not None:
                    raise item.error
                return
            result = self._timed("post", self.processor.post, item)
            if result is not None:
                yield result

    def report(self) -> dict[str, Any]:
        """Per stage: frames, failures, mean busy time; per queue: drops."""
        return {"intake": self.intake.value, "stages": {k: s.to_dict() for k, s in self.stats.items()},
                "dropped": {"before_infer": self.to_infer.dropped},
                **({"read_delay_ms": round(self.delay * 1e3, 3)} if self.intake is Intake.JUST_IN_TIME else {})}
