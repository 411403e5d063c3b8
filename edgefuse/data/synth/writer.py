"""Write the synthetic benchmark to disk in the shared dataset layout (edgefuse.data.layout)."""

from __future__ import annotations

import json
import math
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Callable


from edgefuse.data import layout
from edgefuse.data.classes import NYU13, NYU13_PALETTE
from edgefuse.data.synth.config import SynthConfig
from edgefuse.errors import EdgefuseError

ProgressFn = Callable[[int, int], None]


def split_of(index: int, frames: int, test_fraction: float) -> str:
    """The last round(frames * test_fraction) indices form the test split."""
    n_test = int(round(frames * test_fraction))
    return "test" if index >= frames - n_test else "train"


def stem_of(index: int) -> str:
    return f"{index:06d}"


def _render_and_write(args) -> tuple[int, str, dict, tuple[int, float, float]]:
    out_dir, seed, size, config, index, split, threads = args
    from edgefuse.data.synth.render import SceneRenderer

    renderer = _renderer_cache.get((seed, size, config))
    if renderer is None:
        renderer = SceneRenderer(seed, size, config, threads=threads)
        _renderer_cache.clear()
        _renderer_cache[(seed, size, config)] = renderer
    frame = renderer.render(index)
    stem = stem_of(index)
    base = Path(out_dir) / split
    layout.write_png(base / layout.RGB_DIR / f"{stem}.png", frame.rgb)
    layout.write_png(base / layout.DEPTH_DIR / f"{stem}.png", frame.depth)
    layout.write_png(base / "labels_13" / f"{stem}.png", frame.labels)
    record = {"stem": stem, "intrinsics": frame.intrinsics, **frame.meta}
    stats = layout.DepthStats()
    stats.add(frame.depth)
    return index, split, record, (stats.count, stats.total, stats.total_sq)


_renderer_cache: dict = {}


def _remove_dataset(out: Path) -> None:
    """Delete what write_dataset writes (and nothing else), so no stale frame survives."""
    import shutil

    for split in layout.SPLITS:
        if (out / split).is_dir():
            shutil.rmtree(out / split)
        (out / f"{split}.txt").unlink(missing_ok=True)
    (out / layout.INFO_FILE).unlink()


def write_dataset(out_dir: str | Path, frames: int, seed: int, size: tuple[int, int] = (192, 256),
                  test_fraction: float = 0.2, config: SynthConfig | None = None, workers: int = 1,
                  progress: ProgressFn | None = None, overwrite: bool = False) -> dict:
    """Render `frames` frames (indices 0..frames-1 of `seed`) into `out_dir`; return dataset.json.

    The output is identical whatever `workers` is: every frame has its own random stream and
    files are written in index order into meta.jsonl and the split lists. `overwrite` replaces
    an earlier edgefuse dataset in `out_dir` (never a folder without dataset.json).
    """
    if frames < 1:
        raise EdgefuseError(f"--frames must be at least 1, got {frames}")
    if not 0.0 <= test_fraction < 1.0:
        raise EdgefuseError(f"test fraction must be in [0, 1), got {test_fraction}")
    out = Path(out_dir)
    if out.exists() and any(out.iterdir()):
        if not (out / layout.INFO_FILE).is_file():
            raise EdgefuseError(f"{out} exists and is not an edgefuse dataset; choose an empty or new folder")
        if not overwrite:
            raise EdgefuseError(f"{out} already holds a dataset; pass --overwrite to replace it")
        _remove_dataset(out)
    config = config or SynthConfig()
    size = (int(size[0]), int(size[1]))
    jobs = [(str(out), seed, size, config, i, split_of(i, frames, test_fraction), 1 if workers > 1 else 0)
            for i in range(frames)]
    results: list = [None] * frames
    done = 0
    if workers > 1:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            for res in pool.map(_render_and_write, jobs, chunksize=4):
                results[res[0]] = res
                done += 1
                if progress:
                    progress(done, frames)
    else:
        for job in jobs:
            res = _render_and_write(job)
            results[res[0]] = res
            done += 1
            if progress:
                progress(done, frames)

    stats = layout.DepthStats()
    by_split: dict[str, list] = {s: [] for s in layout.SPLITS}
    for index, split, record, (count, total, total_sq) in results:
        by_split[split].append(record)
        if split == "train" or not any(r[1] == "train" for r in results):
            stats.count += count
            stats.total += total
            stats.total_sq += total_sq
    for split, records in by_split.items():
        layout.write_split(out, split, [r["stem"] for r in records])
        (out / split).mkdir(parents=True, exist_ok=True)
        (out / split / layout.META_FILE).write_text("".join(json.dumps(r) + "\n" for r in records))
    from edgefuse import __version__

    info = {
        "name": "edgefuse-synth",
        "num_classes": len(NYU13),
        "classes": list(NYU13),
        "label_dir": "labels_13",
        "depth_unit": "mm",
        # statistics of the valid (non-zero) depth of the train split, as ESANet computes them
        "depth_mean": round(stats.mean, 3),
        "depth_std": round(stats.std, 3),
        "palette": [list(c) for c in NYU13_PALETTE],
        "splits": {s: len(r) for s, r in by_split.items()},
        "hard_fraction": {s: (sum(r["hard"] for r in recs) / len(recs) if recs else math.nan)
                          for s, recs in by_split.items()},
        "generator": {"seed": int(seed), "frames": int(frames), "size": list(size),
                      "test_fraction": test_fraction, "config": asdict(config),
                      "edgefuse_version": __version__},
    }
    info["hard_fraction"] = {k: (None if isinstance(v, float) and math.isnan(v) else round(v, 4))
                             for k, v in info["hard_fraction"].items()}
    layout.write_info(out, info)
    return info
