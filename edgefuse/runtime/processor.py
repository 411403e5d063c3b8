"""The per-frame step, one for every caller (issue 12): `edgefuse run` pulls frames from a
source, the ROS node is pushed them by callbacks, the bag sink rides on `edgefuse run`;
all three call `FrameProcessor.process(frame)`:

    pre:   validate -> prepare                                  (input tensors)
    infer: stem/gate -> choose path -> path engine -> record    (the output)
    post:  sinks                                                 (publish / write)

`process` is the three stage functions back to back; `stages.PipelinedStep` runs the same
three functions in their own threads so they overlap (docs/architecture.md "The per-frame
step").

Sinks are written in two rounds: the ordinary ones right after the path engine (their time
is the `post` stage), then those that need the finished record (`final_record = True`: the
JSON lines log, the node's frame_info), so the record they get has every stage's latency.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefuse.cameras import Frame, FrameHealth, validate_frame
from edgefuse.runtime.frames import Prepared, prepare
from edgefuse.runtime.policy import BudgetNotice, PathPolicy
from edgefuse.runtime.sinks import FrameOutput, Sink


@dataclass
class FrameResult:
    """What one frame gave: `output` None when it was skipped (colour unusable)."""

    frame: Frame
    health: FrameHealth
    output: FrameOutput | None
    latency_ms: dict[str, float] = field(default_factory=dict)
    # Once per run: the budget is infeasible (policy.BudgetCheck); the front end words it
    # with its own flag name (`note.message("--budget-ms")`).
    note: BudgetNotice | None = None

    @property
    def skipped(self) -> bool:
        return self.output is None

    @property
    def record(self) -> dict[str, Any] | None:
        return None if self.output is None else self.output.record


@dataclass
class Staged:
    """A frame between the stages: what `pre` prepared, then what `infer` produced, with
    the perf_counter marks each stage's latency is computed from."""

    frame: Frame
    health: FrameHealth
    prepared: Prepared | None          # None: the frame is skipped (colour unusable)
    dropped: int
    t0: float                          # capture began
    t_prepared: float                  # pre done
    t_infer: float = 0.0               # infer began
    t_path: float = 0.0                # path engine done
    gate_ms: float = 0.0
    path_ms: float = 0.0
    output: FrameOutput | None = None
    note: BudgetNotice | None = None


class FrameProcessor:
    """Runner + policy + sinks for one frame at a time (the runner must be activated).

    `input_size`: the bundle's (H, W); frames of another size are resized (frames.py).
    `min_depth_valid`: the depth-health threshold, as `PolicyConfig.min_depth_valid`.
    """

    def __init__(self, input_size: tuple[int, int], runner: Any, policy: PathPolicy,
                 sinks: Sequence[Sink] = (), min_depth_valid: float | None = None) -> None:
        self.input_size = tuple(int(s) for s in input_size)
        self.runner = runner
        self.policy = policy
        self.sinks = list(sinks)
        self.min_depth_valid = policy.config.min_depth_valid if min_depth_valid is None else min_depth_valid
        self._t_prev: float | None = None

    def process(self, frame: Frame, t_start: float | None = None, dropped: int = 0) -> FrameResult:
        """Run one frame. `t_start` (perf_counter): when its capture began (the `capture`
        stage runs from there to the prepared tensors); `dropped`: frames the source
        discarded before this one (recorded). The three stages back to back: the pipelined
        executor (stages.py) runs the same three functions, each in its own thread."""
        return self.post(self.infer(self.pre(frame, t_start, dropped)))

    # --- the three stages (each a function of the previous one's Staged) ----------------------
    def pre(self, frame: Frame, t_start: float | None = None, dropped: int = 0) -> Staged:
        """validate -> prepare: the frame's input tensors (None when it must be skipped)."""
        t0 = time.perf_counter() if t_start is None else t_start
        health = validate_frame(frame, self.input_size, self.min_depth_valid)
        prepared = prepare(frame, health, self.input_size)
        return Staged(frame, health, prepared, dropped, t0, time.perf_counter())

    def infer(self, staged: Staged, dropped: int = 0) -> Staged:
        """stem/gate -> choose path -> path engine -> the frame's output and record.
        `dropped`: frames discarded between `pre` and here (the pipelined executor's
        newest-only queue), added to the record's count. The policy's choice and its
        latency feedback both run here, so one thread owns the policy's state."""
        staged.dropped += dropped
        staged.t_infer = time.perf_counter()
        prepared, frame = staged.prepared, staged.frame
        if prepared is None:
            return staged
        stem = self.runner.stem_gate(prepared.rgb, prepared.depth)
        logits = None if stem.gate_logits is None else stem.gate_logits[0]
        choice = self.policy.choose(logits, prepared.depth_valid_fraction)
        t2 = time.perf_counter()
        labels = np.asarray(self.runner.run_path(choice.path, stem.features))[0]
        t3 = staged.t_path = time.perf_counter()
        staged.gate_ms, staged.path_ms = (t2 - staged.t_infer) * 1e3, (t3 - t2) * 1e3
        fps = 1.0 / max(t3 - (self._t_prev if self._t_prev is not None else staged.t0), 1e-9)
        self._t_prev = t3
        record: dict[str, Any] = {
            "frame": int(frame.index),
            "timestamp": float(frame.timestamp),
            "path": int(choice.path),
            "depth_valid_fraction": round(prepared.depth_valid_fraction, 6),
            "dropped": int(staged.dropped),
            "latency_ms": {},
            "gate_choice": int(choice.gate_choice),
            "reason": choice.reason.value,
            # Source-side events (the node's depth_timeout, ...) lead the frame policy's own.
            "events": [*frame.meta.get("events", ()), *prepared.events],
        }
        record.update(frame.meta.get("record", {}))   # source-side fields (the node's queue_ms)
        if frame.stamp_ns is not None:   # a ROS header: exact integer stamp and its frame
            record["stamp_ns"] = int(frame.stamp_ns)
            record["frame_id"] = frame.frame_id
        if self.policy.controller is not None:
            record["budget_bias"] = round(self.policy.controller.strength, 4)
        staged.output = FrameOutput(int(frame.index), prepared.image, labels, choice.path, record, fps, frame=frame)
        # The budget holds what the path choice controls: stem/gate + path.
        staged.note = self.policy.observe(staged.gate_ms + staged.path_ms, choice.path)
        return staged

    def post(self, staged: Staged) -> FrameResult:
        """record -> sinks: the ordinary sinks, then those that need the finished record."""
        out = staged.output
        if out is None:
            return FrameResult(staged.frame, staged.health, None)
        t_post = time.perf_counter()
        for sink in self.sinks:
            if not getattr(sink, "final_record", False):
                sink.write(out)
        t4 = time.perf_counter()
        s = staged
        # `wait`: time in the executor's queues (before infer, before post); 0 run in sequence.
        lat = {"capture": (s.t_prepared - s.t0) * 1e3,
               "wait": ((s.t_infer - s.t_prepared) + (t_post - s.t_path)) * 1e3,
               "gate": s.gate_ms, "path": s.path_ms, "post": (t4 - t_post) * 1e3, "total": (t4 - s.t0) * 1e3}
        out.record["latency_ms"] = {k: round(v, 4) for k, v in lat.items()}
        for sink in self.sinks:
            if getattr(sink, "final_record", False):   # last, so the record has the post time
                sink.write(out)
        return FrameResult(s.frame, s.health, out, lat, s.note)

    def close_sinks(self, on_error: Any = None) -> None:
        """Close every sink (files flushed) even when one fails; `on_error(sink, exc)`."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - close the others anyway
                if on_error is not None:
                    on_error(sink, exc)
