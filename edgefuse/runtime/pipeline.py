"""The per-frame pipeline behind `edgefuse run` (DESIGN.md "Per-frame runtime"):

    capture -> validate -> stem/gate -> choose path -> path engine -> labels -> sinks

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

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.runtime.policy import PathCostInfo, PathPolicy, PolicyConfig
from edgefuse.runtime.sinks import FrameOutput, JsonlSink, MaskSink, Sink, StopRequested, VideoSink, WindowSink
from edgefuse.runtime.summary import RunSummary

log = logging.getLogger(__name__)


@dataclass
class RunConfig:
    """Everything `edgefuse run` takes (flags map 1:1 onto fields)."""

    bundle: str
    camera: str = "synthetic"
    frames: int | None = None
    backend: str = "ort"
    budget_ms: float | None = None
    min_depth_valid: float = 0.5
    realtime: bool = False
    show: bool = False
    save_video: str | None = None
    save_masks: str | None = None
    log: str | None = None
    threads: int = 0
    backend_options: dict[str, Any] = field(default_factory=dict)
    max_source_errors: int = 10       # consecutive source failures before giving up
    retry_backoff_s: float = 0.2      # first wait before re-opening a failed source
    # Called with each camera status line (disconnect / retry / recovery), possibly from the
    # capture thread; None: the lines are logged. The CLI passes a printer.
    on_status: Callable[[str], None] | None = None

    def __post_init__(self) -> None:
        if self.frames is not None and self.frames < 0:
            raise ConfigError(f"--frames must be >= 0, got {self.frames}")


# --- bundle -> policy ---------------------------------------------------------------------------
def path_costs(manifest: Any) -> tuple[PathCostInfo, ...]:
    from edgefuse.models.paths import PathSet

    return tuple(PathCostInfo(p.index, float(p.madds), float(p.depth_encoder_madds),
                              PathSet.depth_stages(tuple(p.decision))) for p in manifest.paths)


def make_policy(manifest: Any, config: PolicyConfig) -> PathPolicy:
    return PathPolicy(path_costs(manifest), tuple(manifest.gate_to_path), config)


def open_bundle(path: str | Path) -> Any:
    """load_bundle with hash checks: a tampered file is refused with its name."""
    from edgefuse.export.bundle import load_bundle

    return load_bundle(path, check_hashes=True)


def open_camera(spec: str, bundle: Any, frames: int | None, realtime: bool) -> Any:
    """The frame source; the synthetic camera renders at the bundle's input size."""
    from edgefuse.cameras import open_source, parse_spec

    options: dict[str, Any] = {"frames": frames, "realtime": realtime or None}
    if parse_spec(spec).kind == "synthetic":
        options["size"] = tuple(bundle.manifest.input_size)
    return open_source(spec, **options)


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
    """One run: bundle + runner + policy + source + sinks. `run()` returns the summary."""

    def __init__(self, config: RunConfig, bundle: Any = None, runner: Any = None,
                 source: Any = None, sinks: list[Sink] | None = None) -> None:
        from edgefuse.runtime.runners import make_runner

        self.config = config
        self.bundle = bundle if bundle is not None else open_bundle(config.bundle)
        m = self.bundle.manifest
        self.input_size = tuple(int(s) for s in m.input_size)
        self.palette = np.asarray(m.palette, dtype=np.uint8)
        self.policy = make_policy(m, PolicyConfig(budget_ms=config.budget_ms,
                                                  min_depth_valid=config.min_depth_valid))
        options = dict(config.backend_options)
        if config.backend == "ort" and config.threads:
            options.setdefault("threads", config.threads)
        self.runner = runner if runner is not None else make_runner(config.backend, self.bundle, **options)
        self.source = source if source is not None else open_camera(
            config.camera, self.bundle, config.frames, config.realtime)
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

    def run(self) -> RunSummary:
        from edgefuse.cameras import validate_frame
        from edgefuse.runtime.frames import prepare

        s = self.summary
        start = time.perf_counter()
        dropped_seen = 0
        try:
            with self.runner, self.source:
                start = time.perf_counter()   # FPS counts frames, not engine loading
                frames = resilient_frames(self.source, self.config.max_source_errors,
                                          self.config.retry_backoff_s, self._source_error,
                                          self._camera_status)
                t_prev = time.perf_counter()
                while True:
                    t0 = time.perf_counter()
                    frame = next(frames, None)
                    if frame is None:
                        break
                    health = validate_frame(frame, self.input_size, self.config.min_depth_valid)
                    prepared = prepare(frame, health, self.input_size)
                    t1 = time.perf_counter()
                    dropped_now = int(getattr(self.source, "dropped", 0))
                    dropped, dropped_seen = dropped_now - dropped_seen, dropped_now
                    s.dropped += dropped
                    if prepared is None:
                        s.skipped += 1
                        log.warning("frame %s skipped: %s%s", frame.index, health.describe(),
                                    f" ({frame.error})" if frame.error else "")
                        continue
                    stem = self.runner.stem_gate(prepared.rgb, prepared.depth)
                    logits = None if stem.gate_logits is None else stem.gate_logits[0]
                    choice = self.policy.choose(logits, prepared.depth_valid_fraction)
                    t2 = time.perf_counter()
                    labels = self.runner.run_path(choice.path, stem.features)
                    t3 = time.perf_counter()
                    labels = np.asarray(labels)[0]
                    fps = 1.0 / max(t3 - t_prev, 1e-9)
                    t_prev = t3
                    record = {
                        "frame": int(frame.index),
                        "timestamp": float(frame.timestamp),
                        "path": int(choice.path),
                        "depth_valid_fraction": round(prepared.depth_valid_fraction, 6),
                        "dropped": int(dropped),
                        "latency_ms": {},
                        "gate_choice": int(choice.gate_choice),
                        "reason": choice.reason.value,
                        "events": prepared.events,
                    }
                    if self.policy.controller is not None:
                        record["budget_bias"] = round(self.policy.controller.strength, 4)
                    out = FrameOutput(int(frame.index), prepared.image, labels, choice.path, record, fps)
                    for sink in self.sinks:
                        if not isinstance(sink, JsonlSink):
                            sink.write(out)
                    t4 = time.perf_counter()
                    lat = {"capture": (t1 - t0) * 1e3, "gate": (t2 - t1) * 1e3, "path": (t3 - t2) * 1e3,
                           "post": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3}
                    record["latency_ms"] = {k: round(v, 4) for k, v in lat.items()}
                    # The budget holds what the path choice controls: stem/gate + path.
                    note = self.policy.observe(lat["gate"] + lat["path"], choice.path)
                    if note:   # an infeasible budget, said once
                        log.warning("%s", note)
                    for sink in self.sinks:
                        if isinstance(sink, JsonlSink):   # last, so the record has the post time
                            sink.write(out)
                    s.add(choice.path, lat, choice.reason.value)
        except (KeyboardInterrupt, StopRequested):
            s.interrupted = True
        finally:
            s.wall_s = time.perf_counter() - start
            s.budget = self.policy.budget_report()
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as exc:  # noqa: BLE001 - close the others anyway
                    log.warning("closing %s failed: %s", type(sink).__name__, exc)
        return s


def run(config: RunConfig) -> RunSummary:
    """`edgefuse run`: open the bundle (refusing a tampered one), run, return the summary."""
    return Pipeline(config).run()
