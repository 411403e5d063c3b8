"""Test helpers for the runtime: plain RGB-D frames with injected faults, and a list
source that raises where the list holds an exception (then continues)."""

from __future__ import annotations

import numpy as np

from edgefuse.cameras import Frame

SIZE = (64, 128)


def make_frame(index: int, size=SIZE, depth="ok", error=None, seed=0) -> Frame:
    """A plain RGB-D frame; depth: 'ok' | 'missing' | 'zero' | 'nan' | 'sparse'."""
    rng = np.random.default_rng(seed + index)
    h, w = size
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    d: np.ndarray | None = rng.integers(500, 4000, (h, w)).astype(np.uint16)
    if depth == "missing":
        d = None
    elif depth == "zero":
        d = np.zeros((h, w), np.uint16)
    elif depth == "nan":
        d = d.astype(np.float32)
        d[: h // 2] = np.nan
    elif depth == "sparse":
        d[rng.random((h, w)) < 0.9] = 0
    return Frame(rgb=rgb, depth=d, timestamp=index / 30.0, index=index, error=error)


class ListSource:
    """A frame source over a list; an Exception instance in the list is raised when
    reached (then the source continues with the next item, like a camera that comes back)."""

    name = "list"
    is_live = False
    dropped = 0

    def __init__(self, items):
        self.items = list(items)
        self.pos = 0
        self.closed = False

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    def __iter__(self):
        while self.pos < len(self.items):
            item = self.items[self.pos]
            self.pos += 1
            if isinstance(item, BaseException):
                raise item
            yield item
