"""A montage of dataset frames (RGB | depth | labels per row) for a quick look at any dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgefuse.data import layout


def colorize_depth(depth_mm: np.ndarray, max_mm: float = 8000.0) -> np.ndarray:
    """Depth as grey (near = dark), invalid pixels (0) in magenta so holes stand out."""
    grey = np.clip(depth_mm.astype(np.float32) / max_mm * 255.0, 0, 255).astype(np.uint8)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    rgb[depth_mm == 0] = (255, 0, 255)
    return rgb


def colorize_labels(labels: np.ndarray, palette: list[list[int]]) -> np.ndarray:
    pal = np.zeros((max(256, len(palette)), 3), dtype=np.uint8)
    pal[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    return pal[np.clip(labels, 0, len(pal) - 1)]


def preview(root: str | Path, out: str | Path, split: str = "test", count: int = 8, start: int = 0) -> Path:
    """Write a PNG montage of `count` frames of `split`; returns its path."""
    from edgefuse.data.dataset import SegmentationDataset

    ds = SegmentationDataset(root, split)
    rows = []
    for i in range(start, min(start + count, len(ds))):
        s = ds.load(i)
        rows.append(np.concatenate([s["rgb"], colorize_depth(s["depth"]),
                                    colorize_labels(s["label"], ds.palette)], axis=1))
    if not rows:
        from edgefuse.errors import EdgefuseError

        raise EdgefuseError(f"split {split!r} of {root} has no frames from index {start}")
    shape = rows[0].shape
    rows = [r for r in rows if r.shape == shape]  # real datasets may mix sizes: keep the first size
    layout.write_png(Path(out), np.concatenate(rows, axis=0))
    return Path(out)
