"""Pair colour frames with the depth frame nearest in time, from time-ordered streams.

Recordings store colour and depth as separate streams whose timestamps differ slightly (and
whose rates may differ: depth at 15 fps, colour at 30). Every colour frame becomes one output
frame, paired with the nearest depth frame; a colour frame waits until the first depth frame
after it has been seen (the nearest may come later), unless depth has stalled for longer than
`max_gap`, and a pair further apart than `max_gap` gets no depth (the runtime's sensor-health
rule then takes the RGB-only path). Pure Python, used by the RealSense and ROS bag players.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

C = TypeVar("C")
D = TypeVar("D")

Pair = tuple[float, C, "D | None"]


class NearestPairer(Generic[C, D]):
    """Feed frames in arrival (time) order; each call returns the pairs now complete.

    max_gap: largest |t_colour - t_depth| (seconds) accepted as a pair; None accepts any.
    """

    def __init__(self, max_gap: float | None = None, history: int = 8) -> None:
        self.max_gap = max_gap
        self._depth: deque[tuple[float, D]] = deque(maxlen=history)
        self._pending: deque[tuple[float, C]] = deque()
        self._newest_color = float("-inf")

    def add_color(self, t: float, item: C) -> list[tuple[float, C, D | None]]:
        self._pending.append((t, item))
        self._newest_color = max(self._newest_color, t)
        return self._resolve(final=False)

    def add_depth(self, t: float, item: D) -> list[tuple[float, C, D | None]]:
        self._depth.append((t, item))
        return self._resolve(final=False)

    def flush(self) -> list[tuple[float, C, D | None]]:
        """At the end of the streams: pair whatever is still waiting."""
        return self._resolve(final=True)

    def _nearest(self, t: float) -> D | None:
        if not self._depth:
            return None
        td, item = min(self._depth, key=lambda d: abs(d[0] - t))
        if self.max_gap is not None and abs(td - t) > self.max_gap:
            return None
        return item

    def _resolve(self, final: bool) -> list[tuple[float, C, D | None]]:
        out = []
        while self._pending:
            t, item = self._pending[0]
            waiting_for_later_depth = not self._depth or self._depth[-1][0] < t
            depth_stalled = self.max_gap is not None and self._newest_color - t > self.max_gap
            if waiting_for_later_depth and not final and not depth_stalled:
                break
            self._pending.popleft()
            out.append((t, item, self._nearest(t)))
        return out
