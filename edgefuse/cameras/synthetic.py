"""`synthetic[:SEED]`: procedural RGB-D rooms from the synthetic benchmark's renderer.

The embedded default camera: it needs no hardware and is deterministic in (seed, index),
so a run on it is reproducible. By default frames are rendered on demand (nothing
dropped, like a recording); `live=True` renders in a capture thread at `fps` through
`LiveCapture`, so the drop-oldest path of a real camera can be exercised without one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

from edgefuse.cameras.base import Frame, FrameSource, Intrinsics, SourceOptions, SourceSpec
from edgefuse.cameras.live import EndOfStream, LiveCapture
from edgefuse.errors import ConfigError

DEFAULT_SEED = 0
DEFAULT_SIZE = (192, 256)


@dataclass
class SyntheticOptions(SourceOptions):
    """size: (H, W) rendered; fps: the rate `realtime` / `live` pace to; start: first scene index;
    live: render in a capture thread (drop-oldest queue of `queue_size`)."""

    size: tuple[int, int] = DEFAULT_SIZE
    fps: float = 30.0
    start: int = 0
    live: bool = False
    queue_size: int = 2


class SyntheticSource(FrameSource):
    Options = SyntheticOptions

    def __init__(self, seed: int = DEFAULT_SEED, options: SyntheticOptions | None = None) -> None:
        opts = options or SyntheticOptions()
        super().__init__(f"synthetic:{seed}", frames=opts.frames)
        if opts.fps <= 0:
            raise ConfigError(f"synthetic camera: fps must be > 0, got {opts.fps}")
        if opts.start < 0:
            raise ConfigError(f"synthetic camera: start must be >= 0, got {opts.start}")
        self.seed = int(seed)
        self.options = opts
        self.is_live = opts.live
        self._renderer = None
        self._capture: LiveCapture | None = None
        self._next = opts.start

    @classmethod
    def from_spec(cls, spec: SourceSpec, options: SyntheticOptions) -> "SyntheticSource":
        return cls(int(spec.target) if spec.target is not None else DEFAULT_SEED, options)

    @property
    def dropped(self) -> int:
        return self._capture.dropped if self._capture is not None else 0

    def __len__(self) -> int:
        if self.options.frames is None:
            raise TypeError("the synthetic camera is endless unless frames= is given")
        return self.options.frames

    def _open(self) -> None:
        from edgefuse.data.synth import SceneRenderer  # open3d loads here

        # One ray-casting thread: the capture must leave the cores to inference.
        self._renderer = SceneRenderer(self.seed, tuple(self.options.size), threads=1)
        self._t0 = time.monotonic()
        self._next = self.options.start  # a re-opened camera starts over, like the others
        if self.options.live:
            self._capture = LiveCapture(self._grab_paced, name=self.name,
                                        queue_size=self.options.queue_size, on_status=self.on_status).start()

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        self._renderer = None

    def render(self, index: int) -> Frame:
        """Frame `index` of this seed (deterministic)."""
        if self._renderer is None:
            self.open()
        s = self._renderer.render(index)
        meta = dict(s.meta)
        meta["source"] = self.name
        return Frame(rgb=s.rgb, depth=s.depth, timestamp=index / self.options.fps,
                     intrinsics=Intrinsics.from_dict(s.intrinsics), index=index, meta=meta)

    def _grab_paced(self) -> Frame:
        if self.options.frames is not None and self._next - self.options.start >= self.options.frames:
            raise EndOfStream
        # Pace to the camera clock: frame i is "exposed" at t0 + i / fps.
        due = self._t0 + (self._next - self.options.start) / self.options.fps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        frame = self.render(self._next)
        self._next += 1
        return frame

    def _frames(self) -> Iterator[Frame]:
        if self._capture is not None:
            yield from self._capture
            return
        while True:
            if self.options.realtime:
                yield self._grab_paced()
            else:
                frame = self.render(self._next)
                self._next += 1
                yield frame
