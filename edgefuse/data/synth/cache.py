"""Rendered synthetic frames cached on disk, keyed by seed, size and the renderer's code.

Ray casting a frame takes ~40 ms at 192x256 and ~300 ms at 480x640 on one core: a camera
that renders while inference waits measures the renderer, not the runtime (issue 10). The
synthetic camera therefore plays a loop of frames rendered once - in worker processes, at
open, before any frame is timed - and stored here; later runs read them back in well under
a millisecond.

Layout: `<cache root>/synthetic/seed<S>-<H>x<W>-<digest>/<index>.rgbd` (the rgb bytes, H x W
x 3 uint8, then the depth, H x W little-endian uint16) and `<index>.json` (intrinsics and
per-frame meta). Raw bytes, not .npy: a frame is read with one `readinto` into a writable
buffer (an .npy header parse costs more than the read at 192x256), and a file of the wrong
length is refused. The digest hashes the renderer's source files and this format, so a
changed renderer never serves stale frames. Files are written to a temporary name and
renamed, so concurrent runs and interrupted renders leave only whole frames. The root is
`$EDGEFUSE_CACHE_DIR`, else `$XDG_CACHE_HOME/edgefuse`, else `~/.cache/edgefuse`.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import multiprocessing
import os
import tempfile
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "EDGEFUSE_CACHE_DIR"
FORMAT = "rgbd-u8-u16le-1"   # part of the digest: a new layout never reads an old one
# Worker processes start in ~2 s each (importing Open3D); a frame costs ~1 us per pixel on
# one core. Below this many pixels to render (~8 s of work) one process is as fast.
POOL_MIN_PIXELS = 8_000_000


@dataclass
class CachedFrame:
    rgb: np.ndarray          # H x W x 3 uint8
    depth: np.ndarray        # H x W uint16 mm
    intrinsics: dict[str, Any]
    meta: dict[str, Any]


def cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "edgefuse"


@functools.cache
def renderer_digest() -> str:
    """sha256 (12 hex digits) of the renderer package's source files."""
    h = hashlib.sha256(FORMAT.encode())
    for f in sorted(Path(__file__).parent.glob("*.py")):
        if f.name != "cache.py":
            h.update(f.name.encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:12]


def _render_into(args: tuple[str, int, tuple[int, int], int, int]) -> int:
    """Worker: render frame `index` and store it (module level so a process pool can run it)."""
    folder, seed, size, index, threads = args
    from edgefuse.data.synth.render import SceneRenderer

    renderer = _renderers.get((seed, size))
    if renderer is None:
        _renderers.clear()
        renderer = _renderers[(seed, size)] = SceneRenderer(seed, size, threads=threads)
    FrameCache.store(Path(folder), index, renderer.render(index))
    return index


_renderers: dict = {}


class FrameCache:
    """The cached frames of one (seed, size) under `root` (default: `cache_root()`)."""

    def __init__(self, seed: int, size: tuple[int, int], root: str | Path | None = None) -> None:
        self.seed = int(seed)
        self.size = (int(size[0]), int(size[1]))
        base = Path(root) if root is not None else cache_root()
        self.folder = base / "synthetic" / f"seed{self.seed}-{self.size[0]}x{self.size[1]}-{renderer_digest()}"

    # --- files ---
    def _paths(self, index: int) -> tuple[Path, Path]:
        stem = self.folder / f"{int(index):06d}"
        return stem.with_suffix(".rgbd"), stem.with_suffix(".json")

    def missing(self, indices: Sequence[int]) -> list[int]:
        """The indices with no cached frame of the right size (checked without reading it;
        `load` still refuses a damaged one)."""
        h, w = self.size
        out = []
        for i in indices:
            data_p, meta_p = self._paths(int(i))
            try:
                whole = data_p.stat().st_size == h * w * 5 and meta_p.stat().st_size > 0
            except OSError:
                whole = False
            if not whole:
                out.append(int(i))
        return out

    def load(self, index: int) -> CachedFrame | None:
        """The cached frame, or None when it is missing or unreadable (then render it again)."""
        data_p, meta_p = self._paths(index)
        h, w = self.size
        n_rgb = h * w * 3
        buf = bytearray(n_rgb + h * w * 2)
        try:
            with open(data_p, "rb") as f:
                if f.readinto(buf) != len(buf) or f.read(1):
                    return None          # truncated or too long: not this size's frame
            record = json.loads(meta_p.read_text())
            intrinsics, meta = record["intrinsics"], record["meta"]
        except (OSError, ValueError, KeyError, TypeError):
            return None
        rgb = np.frombuffer(buf, np.uint8, n_rgb).reshape(h, w, 3)
        depth = np.frombuffer(buf, "<u2", h * w, offset=n_rgb).reshape(h, w).astype(np.uint16, copy=False)
        return CachedFrame(rgb, depth, intrinsics, meta)

    @staticmethod
    def store(folder: Path, index: int, frame: Any) -> None:
        """Write a rendered frame (SynthFrame) atomically: temporary files, then renames."""
        folder.mkdir(parents=True, exist_ok=True)
        stem = folder / f"{int(index):06d}"
        rgb = np.ascontiguousarray(frame.rgb, np.uint8)
        depth = np.ascontiguousarray(frame.depth, "<u2")
        items = ((stem.with_suffix(".rgbd"), lambda f: (f.write(rgb.tobytes()), f.write(depth.tobytes()))),
                 (stem.with_suffix(".json"), lambda f: f.write(json.dumps(
                     {"intrinsics": frame.intrinsics, "meta": frame.meta}).encode())))
        for path, write in items:   # the .json last: a frame counts once both are there
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.")
            try:
                with os.fdopen(fd, "wb") as f:
                    write(f)
                os.replace(tmp, path)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise

    # --- rendering ---
    def ensure(self, indices: Sequence[int], workers: int = 0,
               progress: Callable[[int, int], None] | None = None) -> list[int]:
        """Render and store every index not cached yet; returns those rendered. `workers`:
        rendering processes; 0 = one per core when there is enough work to pay for starting
        them (POOL_MIN_PIXELS), else this process."""
        missing = self.missing(indices)
        if not missing:
            return []
        if workers == 0:
            enough = len(missing) * self.size[0] * self.size[1] >= POOL_MIN_PIXELS
            workers = (os.cpu_count() or 1) if enough else 1
        workers = min(workers, len(missing))
        use_pool = workers > 1
        # Each worker ray-casts with one thread: the processes already fill the cores.
        jobs = [(str(self.folder), self.seed, self.size, i, 1 if use_pool else 0) for i in missing]
        done = 0
        if use_pool:
            # spawn, not fork: the parent may hold ONNX Runtime / OpenMP thread pools, which a
            # forked child would inherit in a broken state.
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for _ in pool.map(_render_into, jobs, chunksize=max(1, len(jobs) // (4 * workers))):
                    done += 1
                    if progress:
                        progress(done, len(jobs))
        else:
            for job in jobs:
                _render_into(job)
                done += 1
                if progress:
                    progress(done, len(jobs))
        return missing
