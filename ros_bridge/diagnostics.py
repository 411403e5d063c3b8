"""What the node tells the robot about itself: a /diagnostics status about once a second
(rates, drops, latency p50/p99, path mix, depth fallbacks, bad inputs) and warnings that
are throttled per cause, so a camera sending garbage at 30 Hz gives one line per few
seconds naming the topic and the problem, not a flood."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable

import numpy as np

from edgefuse.ros_bridge.messages import KeyValues

OK, WARN, ERROR = 0, 1, 2
# Per-frame stage means reported: row -> the frame record's latency_ms keys summed into it.
STAGE_ROWS = {"capture": ("capture",), "wait": ("wait",), "inference": ("gate", "path"), "post": ("post",)}


class WarnThrottle:
    """`text = throttle(cause, text)`: the text to log now, or None while `cause` was logged
    less than `period_s` ago; the next line says how many were held back."""

    def __init__(self, period_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.period = period_s
        self.clock = clock
        self._last: dict[str, float] = {}
        self._held: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, cause: str, text: str) -> str | None:
        now = self.clock()
        with self._lock:
            last = self._last.get(cause)
            if last is not None and now - last < self.period:
                self._held[cause] += 1
                return None
            self._last[cause] = now
            held = self._held.pop(cause, 0)
        return text if not held else f"{text} ({held} more like this in the last {self.period:g} s)"


class Diagnostics:
    """Counters between two reports (rates) and since start (totals); thread-safe.

    Level: ERROR when no colour image arrived for `no_input_s`; WARN when, since the last
    report, frames were dropped, inputs were bad, frames failed, or depth was missing
    (depth fallbacks); OK otherwise.
    """

    def __init__(self, name: str, hardware_id: str, rgb_topic: str, no_input_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.hardware_id = hardware_id
        self.rgb_topic = rgb_topic
        self.no_input_s = no_input_s
        self.clock = clock
        self._lock = threading.Lock()
        self._started = self._window_start = clock()
        self._last_color: float | None = None
        self.totals: Counter[str] = Counter()
        self._reset()

    def _reset(self) -> None:
        self._window: Counter[str] = Counter()
        self._bad: Counter[str] = Counter()
        self._paths: Counter[int] = Counter()
        self._latency: list[float] = []
        self._delay: list[float] = []
        self._stages: dict[str, list[float]] = {k: [] for k in STAGE_ROWS}

    # --- events (any thread) ---
    def count(self, key: str, n: int = 1) -> None:
        """color_in, depth_in, info_in, dropped, lost, skipped, failed, depth_fallbacks, ..."""
        with self._lock:
            if key == "color_in":
                self._last_color = self.clock()
            self._window[key] += n
            self.totals[key] += n

    def bad_input(self, cause: str) -> None:
        with self._lock:
            self._bad[cause] += 1
            self._window["bad_input"] += 1
            self.totals["bad_input"] += 1

    def frame(self, path: int, total_ms: float, delay_ms: float | None, depth_fallback: bool,
              stages: dict[str, float] | None = None) -> None:
        """One output; `stages`: its latency_ms (capture, wait, gate, path, post, ...)."""
        with self._lock:
            if stages is not None:
                for k, parts in STAGE_ROWS.items():
                    self._stages[k].append(sum(stages.get(p, 0.0) for p in parts))
            self._window["frames_out"] += 1
            self.totals["frames_out"] += 1
            self._paths[path] += 1
            self._latency.append(total_ms)
            if delay_ms is not None:
                self._delay.append(delay_ms)
            if depth_fallback:
                self._window["depth_fallbacks"] += 1
                self.totals["depth_fallbacks"] += 1

    # --- report (timer thread) ---
    def report(self) -> KeyValues:
        """The status since the last report; starts a new window."""
        with self._lock:
            now = self.clock()
            span = max(now - self._window_start, 1e-6)
            w, bad, paths = self._window, self._bad, self._paths
            lat = np.percentile(self._latency, [50, 99]) if self._latency else None
            delay = np.percentile(self._delay, [50, 99]) if self._delay else None
            silent = now - (self._last_color if self._last_color is not None else self._started)
            level, message = self._level(w, bad, silent)
            out = sum(paths.values())
            means = {k: float(np.mean(v)) if v else None for k, v in self._stages.items()}
            inference = means["inference"]
            # Output rate against what the engines alone could give (1 / mean inference):
            # near 1 when the pipelined step keeps the engines busy and the camera is faster.
            ratio = (w["frames_out"] / span) * inference / 1e3 if inference else None
            values = [
                ("input rate (Hz)", f"{w['color_in'] / span:.2f}"),
                ("depth rate (Hz)", f"{w['depth_in'] / span:.2f}"),
                ("output rate (Hz)", f"{w['frames_out'] / span:.2f}"),
                ("dropped", str(w["dropped"])),
                ("lost in transport", str(w["lost"])),
                ("bad inputs", ", ".join(f"{k}: {v}" for k, v in sorted(bad.items())) or "0"),
                ("skipped", str(w["skipped"])),
                ("failed", str(w["failed"])),
                ("depth fallbacks", str(w["depth_fallbacks"])),
                ("latency p50 (ms)", "-" if lat is None else f"{lat[0]:.2f}"),
                ("latency p99 (ms)", "-" if lat is None else f"{lat[1]:.2f}"),
                ("stamp to publish p50 (ms)", "-" if delay is None else f"{delay[0]:.2f}"),
                ("stamp to publish p99 (ms)", "-" if delay is None else f"{delay[1]:.2f}"),
                ("mean ms: capture / wait / inference / post",
                 " / ".join("-" if means[k] is None else f"{means[k]:.2f}" for k in STAGE_ROWS)),
                ("output rate / (1 / mean inference)", "-" if ratio is None else f"{ratio:.2f}"),
                ("path mix", ", ".join(f"{k}: {v / out:.0%}" for k, v in sorted(paths.items())) or "-"),
                ("seconds since last image", f"{silent:.1f}"),
                ("frames out (total)", str(self.totals["frames_out"])),
                ("dropped (total)", str(self.totals["dropped"])),
                ("lost in transport (total)", str(self.totals["lost"])),
                ("bad inputs (total)", str(self.totals["bad_input"])),
                ("depth fallbacks (total)", str(self.totals["depth_fallbacks"])),
            ]
            self._window_start = now
            self._reset()
        return KeyValues(level, self.name, message, self.hardware_id, values)

    def _level(self, w: Counter[str], bad: Counter[str], silent: float) -> tuple[int, str]:
        if silent > self.no_input_s:
            return ERROR, f"no image on {self.rgb_topic} for {silent:.1f} s"
        problems = []
        if w["dropped"]:
            problems.append(f"{w['dropped']} frames dropped (inference slower than the camera)")
        if w["lost"]:
            problems.append(f"{w['lost']} images lost before reaching the node (ROS 2 middleware: the reader fell "
                            "behind a best-effort stream)")
        if bad:
            problems.append(f"{sum(bad.values())} bad input messages")
        if w["failed"]:
            problems.append(f"{w['failed']} frames failed")
        if w["skipped"]:
            problems.append(f"{w['skipped']} frames skipped")
        if w["depth_fallbacks"]:
            problems.append(f"depth missing or invalid on {w['depth_fallbacks']} frames (RGB-only path)")
        if problems:
            return WARN, "; ".join(problems)
        return OK, f"segmenting at {w['frames_out'] / max(self.clock() - self._window_start, 1e-6):.1f} Hz"
