"""The node without ROS: message fields in, the per-frame step of `edgefuse run`, message
fields out (docs/ros.md: a pure core and thin adapters).

    callbacks (any thread)              stage threads (parameter `pipeline`, default on)
    on_color / on_depth -> StampSync -> NewestSlot -> decode + pre | infer | post
                                                      -> TopicSink, FrameInfoSink -> Transport
    on_info (latest camera_info)       tick() -> /diagnostics

Callbacks only pair and store message references: decoding and inference run in the stage
threads (runtime/stages.py: decoding and preparing of the next pair and publishing of the
previous frame overlap inference; with `pipeline` off, one worker runs them in sequence),
never in a subscription callback. The slot keeps only the newest pair, and the pre stage
takes it just in time for the engines (stages.Intake.JUST_IN_TIME), so latency never builds
up; each replaced pair is a counted drop. A bad message
(unsupported encoding, short buffer, sizes that do not match) is a throttled warning and a
diagnostics count; the node goes on with the next frame.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from edgefuse.cameras import Frame
from edgefuse.cameras.ros_messages import (ImageFormatError, check_same_size, decode_color, decode_depth, header_of,
                                           info_fields, intrinsics_of)
from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.ros_bridge.config import NodeConfig
from edgefuse.ros_bridge.diagnostics import Diagnostics, WarnThrottle
from edgefuse.ros_bridge.messages import DiagnosticsMessage, MaskEncoder, Topic, classes_json
from edgefuse.ros_bridge.outputs import FrameInfoSink, Outlet, TopicSink
from edgefuse.ros_bridge.sync import DepthState, NewestSlot, Pair, StampSync
from edgefuse.runtime.processor import FrameResult
from edgefuse.runtime.setup import make_policy, open_runtime
from edgefuse.runtime.stages import Intake, PipelinedStep

# Why a frame ran without depth, for the warning (the health rule's own verdicts otherwise).
_NO_DEPTH_WHY = {DepthState.TIMEOUT: "no depth message for {timeout:g} s",
                 DepthState.UNPAIRED: "no depth image within sync_slop {slop:g} s of the colour stamp"}


class Transport(Outlet, Protocol):
    def log(self, level: str, text: str) -> None:
        """level: info, warn or error (the adapter's logger: rospy.logwarn, node.get_logger())."""


class NodeCore:
    """One node's state. `start()` activates the runner and the worker; `stop()` ends both.

    The bundle is opened in the constructor, so a bundle that cannot load is an error before
    anything subscribes. `bundle` / `runner` can be given (tests).
    """

    def __init__(self, config: NodeConfig, transport: Transport, name: str = "edgefuse",
                 bundle: Any = None, runner: Any = None) -> None:
        if bundle is None and not config.bundle:
            raise ConfigError("no bundle: pass --bundle DIR (or set the node's `bundle` parameter) "
                              "to a folder written by `edgefuse export`")
        self.config = config
        self.transport = transport
        self.name = name
        # The same set-up as `edgefuse run` / `edgefuse bench` (edgefuse.runtime.setup).
        runtime = open_runtime(config.runtime_config(), bundle=bundle, runner=runner)
        m = self._manifest = runtime.manifest
        self.runner = runtime.runner
        self.encoder = MaskEncoder(m.palette, config.mask_size, config.overlay_alpha)
        self.processor = runtime.processor([TopicSink(self.encoder, transport), FrameInfoSink(transport)])
        self.classes = ["void", *m.classes]
        self.classes_json = classes_json(m.classes, m.palette)
        # Depth timeouts run on ROS time, so a bag played with use_sim_time times out in
        # simulated seconds (issue 16); without a ROS clock, on the monotonic one.
        self.sync = StampSync(config.sync_slop, config.depth_timeout, config.use_depth, clock=self._ros_seconds)
        self.slot = NewestSlot()
        self.diagnostics = Diagnostics(f"{name.lstrip('/')}: segmentation", str(m.model.get("name", "")),
                                       config.rgb_topic, config.no_input_error)
        self.throttle = WarnThrottle(config.warn_period)
        self.calibrator = self._calibrator(config)
        self._info: dict[str, Any] | None = None
        self._index = 0
        self._dropped_seen = 0
        self._got_color = threading.Event()
        self._worker: threading.Thread | None = None
        self.step: PipelinedStep | None = None
        self.stages = config.stage_config()
        self._running = False

    def _calibrator(self, config: NodeConfig) -> Any:
        """The calibration file's frame step (None without one); refused at start-up when
        register_depth asks for extrinsics the file does not have."""
        if not config.calibration:
            return None
        from edgefuse.cameras.calibrated import FrameCalibrator
        from edgefuse.cameras.camera_info import load_camera_calibration

        calibration = load_camera_calibration(config.calibration)
        if config.register_depth and not calibration.registers_depth:
            raise ConfigError(f"{config.calibration} has no depth camera / depth_to_color, so register_depth cannot "
                              "register depth; calibrate with `edgefuse calibrate ... --depth-images DIR`")
        return FrameCalibrator(calibration, raw_depth=config.register_depth, name=config.rgb_topic,
                               say=lambda text: self.transport.log("warn", text))

    def _ros_seconds(self) -> float:
        now = self.transport.now_ns()
        return time.monotonic() if now is None else now * 1e-9

    def reconfigure(self, config: NodeConfig) -> None:
        """Take a config whose live options (config.LIVE) changed: the next frame uses them.
        Each is one attribute the worker reads per frame, so no lock is needed."""
        old, self.config = self.config, config
        if (config.budget_ms, config.min_depth_valid) != (old.budget_ms, old.min_depth_valid):
            self.processor.policy = make_policy(self._manifest, config.runtime_config().policy_config())
            self.processor.min_depth_valid = config.min_depth_valid
        self.sync.reconfigure(config.sync_slop, config.depth_timeout)
        self.encoder.alpha = MaskEncoder.alpha_of(config.overlay_alpha)

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self, worker: bool = True) -> None:
        """Activate the runner (engines load here, before any frame), latch the classes and
        start the worker (`worker=False`: the caller runs `handle()` itself, as tests do)."""
        self.runner.__enter__()
        self.transport.publish(Topic.CLASSES, self.classes_json)
        self._running = True
        if not worker:
            return
        target, name = self._work, "edgefuse-inference"
        if self.stages.pipeline:
            self.stages.apply()
            self.step = PipelinedStep(self.processor, self._feed, Intake.JUST_IN_TIME, on_error=self._failed,
                                      on_drop=lambda: self.diagnostics.count("dropped"),
                                      name="edgefuse").start()
            target, name = self._post_loop, "edgefuse-post"
        # The worker runs the sequential step, or the pipelined step's post stage.
        self._worker = threading.Thread(target=target, name=name, daemon=True)
        self._worker.start()

    def stop(self) -> None:
        self._running = False
        self.slot.close()
        if self.step is not None:   # before the runner closes: the infer thread uses it
            self.step.stop()
            self.step = None
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            self._worker = None
        self.runner.__exit__(None, None, None)

    @property
    def step_line(self) -> str:
        """How frames are processed (pipelined or not, the thread split), for the start-up line."""
        return self.stages.describe(Intake.JUST_IN_TIME if self.stages.pipeline else None)

    def wait_for_input(self, timeout_s: float) -> bool:
        """True once a colour image arrived (within `timeout_s`; 0 waits forever)."""
        return self._got_color.wait(None if timeout_s <= 0 else timeout_s)

    def missing_input_message(self, image_topics: list[str]) -> str:
        c = self.config
        own = f"/{self.name.strip('/')}/"    # the node's own outputs are no camera
        seen = ", ".join(sorted(t for t in image_topics if not t.startswith(own))) or "none"
        return (f"no image arrived on {c.rgb_topic} within {c.input_timeout:g} s (image topics now: {seen}); "
                "start the camera driver, or set rgb_topic (remap or parameter) to its colour topic")

    # --- callbacks (any thread; cheap) -----------------------------------------------------------
    def on_color(self, msg: Any) -> None:
        self.diagnostics.count("color_in")
        self._got_color.set()
        for pair in self.sync.add_color(header_of(msg)[0], msg):
            self._offer(pair)

    def on_depth(self, msg: Any) -> None:
        self.diagnostics.count("depth_in")
        for pair in self.sync.add_depth(header_of(msg)[0], msg):
            self._offer(pair)

    def on_info(self, msg: Any) -> None:
        try:
            self._info = info_fields(msg)
        except (AttributeError, TypeError, ValueError) as exc:
            self._bad("camera_info", self.config.camera_info_topic, f"unreadable camera_info ({exc})")

    def _offer(self, pair: Pair) -> None:
        if self.slot.put(pair):
            self.diagnostics.count("dropped")

    def tick(self) -> DiagnosticsMessage:
        """Publish one /diagnostics message (the adapters call it every diagnostics_period)."""
        now = self.transport.now_ns()
        msg = DiagnosticsMessage(int(now if now is not None else time.time_ns()), [self.diagnostics.report()])
        self.transport.publish(Topic.DIAGNOSTICS, msg)
        return msg

    # --- worker ----------------------------------------------------------------------------------
    def _work(self) -> None:
        while self._running:
            pair = self.slot.take(timeout=0.2)
            if pair is not None:
                self.handle(pair)

    def _post_loop(self) -> None:
        """The pipelined step's post stage (publishing), then what the node does per output."""
        assert self.step is not None
        for result in self.step.results():
            self._after(result)

    def _feed(self) -> tuple[Frame, float, int] | None:
        """The pipelined step's input: the newest pair, decoded (None: nothing yet or a bad
        message, already reported); StopIteration once the node stops."""
        if not self._running:
            raise StopIteration
        pair = self.slot.take(timeout=0.2)
        return None if pair is None else self._decode(pair)

    def _decode(self, pair: Pair) -> tuple[Frame, float, int] | None:
        """The pair as a Frame, when its decoding began, and the slot's drops before it."""
        t_start = time.perf_counter()
        frame = self._frame(pair)
        if frame is None:
            return None
        # Time in the slot (what the newest-only slot bounds) and the message decoding, which
        # `capture` includes with the preparing: the benchmark tells conversion from both.
        frame.meta["record"] = {"queue_ms": round((t_start - pair.received) * 1e3, 4),
                                "decode_ms": round((time.perf_counter() - t_start) * 1e3, 4)}
        frame.meta["depth_state"] = pair.state
        dropped, self._dropped_seen = self.slot.dropped - self._dropped_seen, self.slot.dropped
        return frame, t_start, dropped

    def handle(self, pair: Pair) -> FrameResult | None:
        """Decode, run and publish one pair in sequence; None when it produced no output.
        Never raises for a bad frame: it warns (throttled) and counts instead."""
        decoded = self._decode(pair)
        if decoded is None:
            return None
        frame, t_start, dropped = decoded
        try:
            result = self.processor.process(frame, t_start=t_start, dropped=dropped)
        except Exception as exc:  # noqa: BLE001 - one failing frame must not stop the node
            self._failed("the per-frame step", exc, frame)
            return None
        return self._after(result)

    def _failed(self, stage: str, exc: Exception, frame: Frame | None = None) -> None:
        self.diagnostics.count("failed")
        at = f"frame at stamp {frame.stamp_ns}" if frame is not None else "a frame"
        self._warn("inference", f"{at} failed in {stage}: {type(exc).__name__}: {exc}")

    def _after(self, result: FrameResult) -> FrameResult:
        """What the node does with each result: diagnostics and throttled warnings."""
        if result.skipped:
            self.diagnostics.count("skipped")
            self._warn("skipped", f"{self.config.rgb_topic}: frame skipped ({result.health.describe()})")
            return result
        if result.note:   # an infeasible budget, said once (policy.BudgetCheck), named as the node's parameter
            self.transport.log("warn", result.note.message("budget_ms"))
        record = result.record
        state = result.frame.meta.get("depth_state", DepthState.PAIRED)
        fallback = record["reason"] == "depth_fallback" and state is not DepthState.DISABLED
        self.diagnostics.frame(record["path"], result.latency_ms["total"], record.get("publish_delay_ms"), fallback,
                               stages=result.latency_ms)
        if fallback:
            why = _NO_DEPTH_WHY.get(state, "depth {issues} ({fraction:.0%} valid pixels; 0/NaN = no measurement)")
            self._warn(f"depth_fallback:{state.value}", f"{self.config.depth_topic}: " + why.format(
                timeout=self.config.depth_timeout, slop=self.config.sync_slop, issues=result.health.describe(),
                fraction=record["depth_valid_fraction"]) + "; running the RGB-only path")
        return result

    def _frame(self, pair: Pair) -> Frame | None:
        c = self.config
        try:
            rgb = decode_color(pair.color)
        except ImageFormatError as exc:
            self._bad(exc.cause, c.rgb_topic, f"{exc}; frame skipped")
            return None
        events = [] if pair.state is DepthState.PAIRED else [pair.state.value]
        depth = None
        if pair.depth is not None:
            try:
                depth = decode_depth(pair.depth)
                if not c.register_depth:   # raw depth has the depth camera's size
                    check_same_size(rgb, depth)
            except ImageFormatError as exc:
                self._bad(exc.cause, c.depth_topic, f"{exc}; RGB-only path for this frame")
                depth = None
                events.append(f"depth_{exc.cause}")
        info = self._info
        meta: dict[str, Any] = {"events": events}
        intrinsics = None
        if info is not None and (info["height"], info["width"]) == rgb.shape[:2]:
            meta["camera_info"] = info
            intrinsics = intrinsics_of(info)
        frame = Frame(rgb=rgb, depth=depth, timestamp=pair.stamp_ns * 1e-9, intrinsics=intrinsics, index=self._index,
                      meta=meta, stamp_ns=pair.stamp_ns, frame_id=str(pair.color.header.frame_id))
        self._index += 1   # numbered where decoded: one thread decodes, in arrival order
        return frame if self.calibrator is None else self.calibrator(frame)

    # --- warnings --------------------------------------------------------------------------------
    def _bad(self, cause: str, topic: str, text: str) -> None:
        self.diagnostics.bad_input(cause)
        self._warn(f"{topic}:{cause}", f"bad message on {topic}: {text}")

    def _warn(self, cause: str, text: str) -> None:
        line = self.throttle(cause, text)
        if line is not None:
            self.transport.log("warn", line)


def check_startup(core: NodeCore, image_topics: Callable[[], list[str]],
                  alive: Callable[[], bool] = lambda: True, step: Callable[[], None] | None = None) -> bool:
    """Wait for the first colour image; raise the one-line start-up error when none comes
    within input_timeout. `image_topics()` lists the image topics that do exist (for the
    message); `alive()` False (Ctrl-C during the wait) returns False; `step()` runs between
    checks (ROS 2 spins its executor there)."""
    timeout = core.config.input_timeout
    deadline = None if timeout <= 0 else time.monotonic() + timeout
    while not core.wait_for_input(0.05 if step is not None else 0.1):
        if not alive():
            return False
        if deadline is not None and time.monotonic() > deadline:
            raise EdgefuseError(core.missing_input_message(list(image_topics())))
        if step is not None:
            step()
    return True
