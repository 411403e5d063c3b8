"""Live inputs: colour + depth paired by header stamp, and a newest-only slot to the worker.

Pairing reuses the bag players' `NearestPairer` (exact stamps are the nearest; pairs further
apart than `sync_slop` get no depth). What is live-only: depth may stop. Without depth for
`depth_timeout` seconds (or with no depth topic at all) colour images pass straight through
with no depth, so the depth-health rule routes them to the RGB-only path and the robot keeps
seeing; a strict synchroniser would stop firing instead (docs/ros.md "Behaviour").

The slot holds one pair: a newer pair replaces an older one not yet taken and counts a drop,
so when inference is slower than the camera latency never builds up.
"""

from __future__ import annotations

import enum
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgefuse.cameras.pairing import NearestPairer


class DepthState(str, enum.Enum):
    PAIRED = "paired"
    UNPAIRED = "depth_unpaired"      # no depth within sync_slop of this colour image
    TIMEOUT = "depth_timeout"        # no depth message for depth_timeout seconds
    DISABLED = "depth_disabled"      # no depth topic configured


@dataclass
class Pair:
    stamp_ns: int
    color: Any                       # the colour message
    depth: Any | None                # the depth message paired with it
    state: DepthState
    received: float                  # perf_counter when the colour message arrived


class StampSync:
    """Feed messages as they arrive (any thread); each call returns the pairs now complete."""

    def __init__(self, slop_s: float, depth_timeout_s: float, use_depth: bool,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.use_depth = use_depth
        self.depth_timeout = depth_timeout_s
        self.clock = clock
        self._pairer: NearestPairer = NearestPairer(max_gap=slop_s)
        # Arrival of the last depth message; the first colour image starts the clock, so a
        # node started long before its camera still waits depth_timeout for the first depth.
        self._last_depth: float | None = None
        self._lock = threading.Lock()

    def reconfigure(self, slop_s: float, depth_timeout_s: float) -> None:
        with self._lock:
            self._pairer.max_gap = slop_s
            self.depth_timeout = depth_timeout_s

    def depth_live(self) -> bool:
        if not self.use_depth:
            return False
        if self._last_depth is None:
            self._last_depth = self.clock()
        return self.clock() - self._last_depth <= self.depth_timeout

    def add_color(self, stamp_ns: int, msg: Any) -> list[Pair]:
        now = time.perf_counter()
        with self._lock:
            if not self.use_depth:
                return [Pair(stamp_ns, msg, None, DepthState.DISABLED, now)]
            if not self.depth_live():
                # Release whatever waited for depth, then pass this image straight through.
                return self._pairs(self._pairer.flush()) + [Pair(stamp_ns, msg, None, DepthState.TIMEOUT, now)]
            return self._pairs(self._pairer.add_color(stamp_ns * 1e-9, (stamp_ns, msg, now)))

    def add_depth(self, stamp_ns: int, msg: Any) -> list[Pair]:
        if not self.use_depth:
            return []
        with self._lock:
            self._last_depth = self.clock()
            return self._pairs(self._pairer.add_depth(stamp_ns * 1e-9, msg))

    @staticmethod
    def _pairs(found: list) -> list[Pair]:
        return [Pair(ns, color, depth, DepthState.PAIRED if depth is not None else DepthState.UNPAIRED, received)
                for _, (ns, color, received), depth in found]


class NewestSlot:
    """A queue of one between the callbacks and the worker; `dropped` counts replaced items."""

    def __init__(self) -> None:
        self._item: Any = None
        self._cond = threading.Condition()
        self.dropped = 0
        self._closed = False

    def put(self, item: Any) -> bool:
        """Store `item`; True when it replaced one the worker never took (a drop)."""
        with self._cond:
            replaced = self._item is not None
            if replaced:
                self.dropped += 1
            self._item = item
            self._cond.notify()
            return replaced

    def take(self, timeout: float | None = None) -> Any:
        """The newest item (None after `timeout` seconds or once closed)."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
