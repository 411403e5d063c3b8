"""The per-frame pipeline behind `edgefuse run` (docs/architecture.md "The per-frame step"):

    capture -> validate -> stem/gate -> choose path -> path engine -> labels -> sinks

By default the step is pipelined (`stages.py`: the source is read and frames prepared in one
thread, the engines run in another, sinks are written in the caller's), so a frame's
preparing and writing overlap the next / previous frame's inference; `--no-pipeline` runs
them one after the other. A live source or `--realtime` playback keeps only the newest
frame (the others are counted as dropped: `stages.Intake`); a recording played as fast as
possible loses none and keeps their order.

Per-stage latency is measured with `time.perf_counter`. A robot runs all day, so the loop
never dies on a bad frame (the frame policy in `frames.py` resizes, zeroes or skips it,
and it is logged), a source that raises is re-opened with backoff, and Ctrl-C stops
cleanly: every sink is closed (files flushed) and the summary printed.

Camera status lines - a live source's disconnect / retry / recovery (`FrameSource.on_status`,
set before the source is opened) and the pipeline's own re-open attempts - go to
`RunConfig.on_status` (the CLI prints them) or, without one, to the log; `Pipeline.status_events`
counts them.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.runtime.setup import RuntimeConfig, open_runtime
from edgefuse.runtime.sinks import JsonlSink, MaskSink, Sink, StopRequested, VideoSink, WindowSink
from edgefuse.runtime.stages import Intake, PipelinedStep, StageConfig
from edgefuse.runtime.summary import RunSummary

log = logging.getLogger(__name__)


@dataclass
class RunConfig(RuntimeConfig):
    """Everything `edgefuse run` takes besides what the edge builds itself (flags map 1:1 onto
    fields): the runtime set-up (`RuntimeConfig`: bundle, backend and its options, budget),
    the frame source and the sinks the runtime owns. Sinks of an edge (the bag of ROS
    messages) are added by the caller (`Pipeline.add_sink`)."""

    camera: str = "synthetic"
    frames: int | None = None
    realtime: bool = False
    show: bool = False
    save_video: str | None = None
    save_masks: str | None = None
    log: str | None = None
    max_source_errors: int = 10       # consecutive source failures before giving up
    retry_backoff_s: float = 0.2      # first wait before re-opening a failed source
    # Called with each camera status line (disconnect / retry / recovery), possibly from the
    # capture thread; None: the lines are logged. The CLI passes a printer.
    on_status: Callable[[str], None] | None = None
    # A ROS camera_info YAML (`edgefuse calibrate`): its intrinsics replace the device's and,
    # with depth_to_color in it, depth is registered with it (edgefuse.cameras.camera_info).
    calibration: str | None = None
    # Live RealSense sources: also record the stream to this file (replay with bag:FILE).
    record: str | None = None
    pipeline: bool = True             # overlap pre / infer / post (stages.py); False: in sequence
    opencv_threads: int = 1           # OpenCV's pool while pipelined (0: its default)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frames is not None and self.frames < 0:
            raise ConfigError(f"--frames must be >= 0, got {self.frames}")
        self.stage_config()

    def stage_config(self) -> StageConfig:
        return StageConfig(pipeline=self.pipeline, ort_threads=self.threads, opencv_threads=self.opencv_threads)


def open_camera(spec: str, bundle: Any, frames: int | None, realtime: bool, calibration: Any = None,
                record: str | None = None) -> Any:
    """The frame source; the synthetic camera renders at the bundle's input size.

    calibration: a camera_info YAML path or CameraCalibration (`--calibration`); record: a
    file the live RealSense sources record to (`--record`)."""
    from edgefuse.cameras import open_source, parse_spec
    from edgefuse.cameras.sources import source_class

    kind = parse_spec(spec).kind
    options: dict[str, Any] = {"frames": frames, "realtime": realtime or None}
    if kind == "synthetic":
        options["size"] = tuple(bundle.manifest.input_size)
    if record is not None:
        if "record" not in {f.name for f in dataclasses.fields(source_class(kind).Options)}:
            raise ConfigError(f"--record works with the live RealSense cameras (realsense[:SERIAL], "
                              f"open3d-realsense[:SERIAL]), not {kind!r}")
        options["record"] = record
    return open_source(spec, calibration=calibration, **options)


# --- frames with retry -----------------------------------------------------------------------------
def resilient_frames(source: Any, max_errors: int, backoff_s: float,
                     on_error: Callable[[Exception], None] | None = None,
                     on_status: Callable[[str], None] | None = None) -> Iterator[Any]:
    """Iterate `source`, re-opening its iterator after an exception (a camera that
    disconnects, a flaky file system) with exponential backoff; give up after `max_errors`
    consecutive failures with a message saying what failed. `on_status` gets one line per
    retry ("... retrying in 0.4 s (attempt 2 of 9)") and one when frames flow again."""
    name = getattr(source, "name", source)
    errors = 0
    it = iter(source)
    while True:
        try:
            frame = next(it)
        except StopIteration:
            return
        except (KeyboardInterrupt, StopRequested):
            raise
        except Exception as exc:  # noqa: BLE001 - any source failure is retried, then reported
            errors += 1
            if on_error is not None:
                on_error(exc)
            if errors >= max_errors:
                raise EdgefuseError(f"camera {name!r} failed {errors} times "
                                    f"in a row, last: {exc}; check the cable / file and retry") from exc
            delay = min(backoff_s * 2 ** (errors - 1), 5.0)
            if on_status is not None:
                on_status(f"camera {name!r} failed ({exc}); retrying in {delay:.1f} s "
                          f"(attempt {errors} of {max_errors - 1})")
            time.sleep(delay)
            it = iter(source)
            continue
        if errors and on_status is not None:
            on_status(f"camera {name!r} recovered after {errors} failed attempt{'s' if errors != 1 else ''}")
        errors = 0
        yield frame


# --- the loop -------------------------------------------------------------------------------------
class Pipeline:
    """One run: the runtime (bundle + runner + policy, `open_runtime`) + source + sinks.
    `run()` returns the summary. `sinks` replaces the sinks the config names; an edge adds
    its own with `add_sink` (the CLI's bag of ROS messages)."""

    def __init__(self, config: RunConfig, bundle: Any = None, runner: Any = None,
                 source: Any = None, sinks: list[Sink] | None = None) -> None:
        self.config = config
        self.runtime = open_runtime(config, bundle=bundle, runner=runner)
        self.bundle, self.runner, self.policy = self.runtime.bundle, self.runtime.runner, self.runtime.policy
        m = self.bundle.manifest
        self.input_size = self.runtime.input_size
        self.palette = self.runtime.palette
        self.source = source if source is not None else open_camera(
            config.camera, self.bundle, config.frames, config.realtime, config.calibration, config.record)
        self.status_events = 0            # camera status lines seen (disconnect / retry / recovery)
        self._status_lock = threading.Lock()
        self._attach_status(self.source)  # before the source is opened (run() opens it)
        self.sinks = sinks if sinks is not None else self._make_sinks()
        self.summary = RunSummary(paths=[p.index for p in m.paths])

    def _make_sinks(self) -> list[Sink]:
        c = self.config
        sinks: list[Sink] = []
        if c.log:
            sinks.append(JsonlSink(c.log))
        if c.save_masks:
            sinks.append(MaskSink(c.save_masks, self.palette))
        if c.save_video:
            sinks.append(VideoSink(c.save_video, self.palette))
        if c.show:
            sinks.append(WindowSink(self.palette))
        return sinks

    def add_sink(self, sink: Sink) -> None:
        """One more sink, built by the caller (closed with the others at the end of the run)."""
        self.sinks.append(sink)

    # --- camera status ------------------------------------------------------------------------
    def _attach_status(self, source: Any) -> None:
        """Route the source's status lines (`FrameSource.on_status`, read when it opens) to
        this run; a callback the caller already set on the source is still called."""
        previous = getattr(source, "on_status", None)

        def on_status(message: str) -> None:
            if previous is not None:
                previous(message)
            self._camera_status(message, logged=True)

        try:
            source.on_status = on_status
        except AttributeError:   # a source without the attribute (and no room for it)
            log.debug("source %r takes no status callback", source)

    def _camera_status(self, message: str, logged: bool = False) -> None:
        """Count a status line and hand it to RunConfig.on_status; without one it is logged
        (unless the source logged it already). May run on the capture thread."""
        with self._status_lock:
            self.status_events += 1
        callback = self.config.on_status
        if callback is None:
            if not logged:
                log.warning("%s", message)
            return
        if not logged:
            log.info("%s", message)
        try:
            callback(message)
        except Exception:  # noqa: BLE001 - a broken printer must not stop the run
            log.exception("camera status callback failed")

    def _source_error(self, exc: Exception) -> None:
        self.summary.source_errors += 1
        log.debug("camera error: %s", exc)

    def _failed(self, stage: str, exc: Exception) -> None:
        """A frame raised (a sink that failed once, ...): counted, logged, skipped. An
        EdgefuseError (a set-up the user must fix: no display for --show) ends the run
        instead. Called from the stage threads too."""
        with self._status_lock:
            self.summary.failed += 1
        log.warning("frame failed in %s: %s: %s", stage, type(exc).__name__, exc)

    def _account(self, result: Any) -> None:
        s = self.summary
        if result.skipped:
            s.skipped += 1
            frame = result.frame
            log.warning("frame %s skipped: %s%s", frame.index, result.health.describe(),
                        f" ({frame.error})" if frame.error else "")
            return
        s.add(result.output.path, result.latency_ms, result.output.record["reason"])
        if result.note:   # an infeasible budget, said once, in this front end's words
            log.warning("%s", result.note.message("--budget-ms"))

    def _feed(self, frames: Iterator[Any]) -> Callable[[], tuple[Any, float, int]]:
        """The next frame with when its capture began and the source's drops before it."""
        seen = 0

        def feed() -> tuple[Any, float, int]:
            nonlocal seen
            t0 = time.perf_counter()
            frame = next(frames)   # StopIteration: the source ended
            now = int(getattr(self.source, "dropped", 0))
            dropped, seen = now - seen, now
            self.summary.dropped += dropped
            return frame, t0, dropped

        return feed

    def _run_sequential(self, processor: Any, feed: Callable[[], tuple[Any, float, int]]) -> None:
        """`--no-pipeline`: the same three stages, one after the other, in this thread."""
        while True:
            try:
                frame, t0, dropped = feed()
            except StopIteration:
                return
            try:
                result = processor.process(frame, t_start=t0, dropped=dropped)
            except (StopRequested, EdgefuseError):   # a stop, or a set-up the user must fix
                raise
            except Exception as exc:  # noqa: BLE001 - one failing frame must not stop the run
                self._failed("the per-frame step", exc)
                continue
            self._account(result)

    @property
    def intake(self) -> Intake:
        """A live camera keeps its newest frames itself: take one just in time for the engines.
        --realtime playback drops nothing itself: prepare each, keep the newest. A recording
        played as fast as possible: every frame, in order."""
        if getattr(self.source, "is_live", False):
            return Intake.JUST_IN_TIME
        return Intake.NEWEST if self.config.realtime else Intake.EVERY

    def run(self) -> RunSummary:
        s = self.summary
        start = time.perf_counter()
        processor = self.runtime.processor(self.sinks)
        stages = self.config.stage_config()
        s.step = stages.describe(self.intake if stages.pipeline else None)
        try:
            with self.runner, self.source:
                start = time.perf_counter()   # FPS counts frames, not engine loading
                frames = resilient_frames(self.source, self.config.max_source_errors,
                                          self.config.retry_backoff_s, self._source_error,
                                          self._camera_status)
                feed = self._feed(frames)
                if stages.pipeline:
                    stages.apply()
                    step = PipelinedStep(processor, feed, self.intake, on_error=self._failed,
                                         wake=getattr(self.source, "close", None), fatal=(EdgefuseError,),
                                         name="edgefuse-run")
                    try:
                        with step:
                            for result in step.results():
                                self._account(result)
                    finally:
                        s.pipeline = step.report()
                        s.dropped += step.to_infer.dropped
                else:
                    self._run_sequential(processor, feed)
        except (KeyboardInterrupt, StopRequested):
            s.interrupted = True
        finally:
            s.wall_s = time.perf_counter() - start
            s.budget = self.policy.budget_report()
            processor.close_sinks(lambda sink, exc: log.warning("closing %s failed: %s", type(sink).__name__, exc))
        return s


def run(config: RunConfig) -> RunSummary:
    """`edgefuse run`: open the bundle (refusing a tampered one), run, return the summary."""
    return Pipeline(config).run()
