"""`synthetic[:SEED]`: procedural RGB-D rooms from the synthetic benchmark's renderer.

The embedded default camera: it needs no hardware and is deterministic in (seed, index),
so a run on it is reproducible. Ray casting a frame costs far more than running the tiny
model on it (docs/results.md, capture share), so by default the camera plays a loop of `loop`
scenes rendered once - in worker processes when the source opens, before any frame is
timed - and cached on disk by seed, size and renderer code (data/synth/cache.py): frame i
shows scene `start + i % loop`. A run then measures the runtime, not the renderer (issue
10). With `frames` <= `loop` every frame is a distinct scene. `loop=0` renders every frame
on demand instead (distinct scenes for ever, at the renderer's pace). `live=True` delivers
frames from a capture thread at `fps` through `LiveCapture`, so the drop-oldest path of a
real camera can be exercised without one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterator

import logging

from edgefuse.cameras.base import Frame, FrameSource, Intrinsics, SourceOptions, SourceSpec
from edgefuse.cameras.live import EndOfStream, LiveCapture
from edgefuse.errors import ConfigError

log = logging.getLogger(__name__)

DEFAULT_SEED = 0
DEFAULT_SIZE = (192, 256)
DEFAULT_LOOP = 100


@dataclass
class SyntheticOptions(SourceOptions):
    """size: (H, W) rendered; fps: the rate `realtime` / `live` pace to; start: first scene index;
    loop: scenes pre-rendered (and cached) and played in a loop, 0 = render every frame on
    demand; live: deliver from a capture thread (drop-oldest queue of `queue_size`)."""

    size: tuple[int, int] = DEFAULT_SIZE
    fps: float = 30.0
    start: int = 0
    loop: int = DEFAULT_LOOP
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
        if opts.loop < 0:
            raise ConfigError(f"synthetic camera: loop must be >= 0 (0: render every frame), got {opts.loop}")
        self.seed = int(seed)
        self.options = opts
        self.is_live = opts.live
        self._renderer = None
        self._cache = None      # FrameCache when the loop is served from disk
        self._loop_len = 0      # scenes in the loop (0: render on demand)
        self._intrinsics: dict[tuple, Intrinsics] = {}
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
        self._t0 = time.monotonic()
        self._next = self.options.start  # a re-opened camera starts over, like the others
        self._loop_len = self._loop_length()
        if self._loop_len:
            self._prepare_loop()
        if self.options.live:
            self._capture = LiveCapture(self._grab_paced, name=self.name,
                                        queue_size=self.options.queue_size, on_status=self.on_status).start()

    def _loop_length(self) -> int:
        loop, frames = self.options.loop, self.options.frames
        return loop if frames is None else min(loop, frames)

    def _prepare_loop(self) -> None:
        """Render the loop's missing scenes into the cache (worker processes, before any
        frame is timed); without a writable cache, fall back to rendering on demand."""
        from edgefuse.data.synth.cache import CACHE_ENV, FrameCache

        cache = FrameCache(self.seed, tuple(self.options.size))
        scenes = range(self.options.start, self.options.start + self._loop_len)
        missing = len(cache.missing(scenes))
        if missing:
            self._say(f"{self.name}: rendering {missing} of {self._loop_len} looped scenes at "
                      f"{self.options.size[0]}x{self.options.size[1]} once into {cache.folder} "
                      "(later runs read them back)")
        try:
            cache.ensure(scenes)
        except OSError as exc:
            log.warning("%s: cannot use the frame cache %s (%s); rendering every frame on demand "
                        "(set %s to a writable folder)", self.name, cache.folder, exc, CACHE_ENV)
            return
        self._cache = cache

    def _say(self, message: str) -> None:
        log.info("%s", message)
        if self.on_status is not None:
            self.on_status(message)

    def _close(self) -> None:
        if self._capture is not None:
            self._capture.stop()
            self._capture = None
        self._renderer = None
        self._cache = None

    def render(self, index: int) -> Frame:
        """Scene `index` of this seed (deterministic), from the loop's cache when it holds it."""
        scene = self._cache.load(index) if self._cache is not None else None
        if scene is None:
            if self._renderer is None:
                from edgefuse.data.synth import SceneRenderer  # open3d loads here

                # One ray-casting thread: a frame rendered on demand shares the cores with inference.
                self._renderer = SceneRenderer(self.seed, tuple(self.options.size), threads=1)
            scene = self._renderer.render(index)
        return self._frame(index, scene.rgb, scene.depth, scene.intrinsics, scene.meta)

    def _frame(self, index: int, rgb, depth, intrinsics: dict, meta: dict) -> Frame:
        meta = dict(meta)
        meta["source"] = self.name
        key = tuple(sorted(intrinsics.items()))
        if key not in self._intrinsics:   # one camera: parse (and check) its intrinsics once
            self._intrinsics[key] = Intrinsics.from_dict(intrinsics)
        return Frame(rgb=rgb, depth=depth, timestamp=index / self.options.fps,
                     intrinsics=self._intrinsics[key], index=index, meta=meta)

    def frame(self, i: int) -> Frame:
        """The i-th frame the camera delivers: scene `start + (i - start) % loop`, index i."""
        start = self.options.start
        scene = start + (i - start) % self._loop_len if self._loop_len else i
        f = self.render(scene)
        if scene != i:
            f.index, f.timestamp = i, i / self.options.fps
        return f

    def _grab_paced(self) -> Frame:
        if self.options.frames is not None and self._next - self.options.start >= self.options.frames:
            raise EndOfStream
        # Pace to the camera clock: frame i is "exposed" at t0 + i / fps.
        due = self._t0 + (self._next - self.options.start) / self.options.fps
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        frame = self.frame(self._next)
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
                frame = self.frame(self._next)
                self._next += 1
                yield frame
