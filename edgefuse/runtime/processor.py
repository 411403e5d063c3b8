"""The per-frame step, one for every caller (issue 12): `edgefuse run` pulls frames from a
source, the ROS node is pushed them by callbacks, the bag sink rides on `edgefuse run`;
all three call `FrameProcessor.process(frame)`:

    validate -> prepare -> stem/gate -> choose path -> path engine -> record -> sinks

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
from edgefuse.runtime.frames import prepare
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
        discarded before this one (recorded)."""
        t0 = time.perf_counter() if t_start is None else t_start
        health = validate_frame(frame, self.input_size, self.min_depth_valid)
        prepared = prepare(frame, health, self.input_size)
        t1 = time.perf_counter()
        if prepared is None:
            return FrameResult(frame, health, None)
        stem = self.runner.stem_gate(prepared.rgb, prepared.depth)
        logits = None if stem.gate_logits is None else stem.gate_logits[0]
        choice = self.policy.choose(logits, prepared.depth_valid_fraction)
        t2 = time.perf_counter()
        labels = np.asarray(self.runner.run_path(choice.path, stem.features))[0]
        t3 = time.perf_counter()
        fps = 1.0 / max(t3 - (self._t_prev if self._t_prev is not None else t0), 1e-9)
        self._t_prev = t3
        record: dict[str, Any] = {
            "frame": int(frame.index),
            "timestamp": float(frame.timestamp),
            "path": int(choice.path),
            "depth_valid_fraction": round(prepared.depth_valid_fraction, 6),
            "dropped": int(dropped),
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
        out = FrameOutput(int(frame.index), prepared.image, labels, choice.path, record, fps, frame=frame)
        for sink in self.sinks:
            if not getattr(sink, "final_record", False):
                sink.write(out)
        t4 = time.perf_counter()
        lat = {"capture": (t1 - t0) * 1e3, "gate": (t2 - t1) * 1e3, "path": (t3 - t2) * 1e3,
               "post": (t4 - t3) * 1e3, "total": (t4 - t0) * 1e3}
        record["latency_ms"] = {k: round(v, 4) for k, v in lat.items()}
        # The budget holds what the path choice controls: stem/gate + path.
        note = self.policy.observe(lat["gate"] + lat["path"], choice.path)
        for sink in self.sinks:
            if getattr(sink, "final_record", False):   # last, so the record has the post time
                sink.write(out)
        return FrameResult(frame, health, out, lat, note)

    def close_sinks(self, on_error: Any = None) -> None:
        """Close every sink (files flushed) even when one fails; `on_error(sink, exc)`."""
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # noqa: BLE001 - close the others anyway
                if on_error is not None:
                    on_error(sink, exc)
