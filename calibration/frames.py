"""Frames for export-time verification and INT8 calibration.

Sources, by name:
  - "synthetic" (default): the synthetic benchmark, `edgefuse.data.synth.SceneRenderer`
    (needs the `synth` extra, Open3D);
  - "procedural": simple structured rooms drawn with numpy (no extra; planes and boxes with
    matching labels and depth), for machines without Open3D and for fast tests;
  - a dataset folder in the shared layout (dataset.json, <split>/rgb, depth, labels_*).

Frames are picked deterministically (evenly spaced over a dataset split; fixed seeds for
generated ones), so that verification and calibration - and so the exported bundle - are
reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefuse.errors import EdgefuseError

# Different seeds for the frames a bundle is calibrated on and the frames it is verified
# on: INT8 accuracy is measured on frames calibration never saw.
CALIB_SEED = 1001
EVAL_SEED = 2002


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray               # H x W x 3 uint8, RGB
    depth: np.ndarray             # H x W uint16 millimetres, 0 = no measurement
    labels: np.ndarray | None     # H x W uint8/int64, 0 = void, 1..C (None: unlabelled)
    name: str

    def inputs(self) -> dict[str, np.ndarray]:
        """The stem graph's feeds: rgb float32 1x3xHxW (0..255), depth float32 1x1xHxW (mm)."""
        rgb = np.ascontiguousarray(self.rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        depth = np.ascontiguousarray(self.depth[None, None], dtype=np.float32)
        return {"rgb": rgb, "depth": depth}


def synthetic_frames(count: int, size: tuple[int, int], seed: int) -> list[Frame]:
    from edgefuse.data.synth import SceneRenderer

    renderer = SceneRenderer(seed, size, threads=1)  # threads=1: identical pixels everywhere
    out = []
    for i in range(count):
        f = renderer.render(i)
        out.append(Frame(f.rgb, f.depth, f.labels, f"synthetic-{seed}-{i}"))
    return out


def procedural_frames(count: int, size: tuple[int, int], seed: int) -> list[Frame]:
    """Rooms of planes and boxes: floor, wall, ceiling, and a few furniture boxes nearer the
    camera, with labels (NYU13 ids) and depth that agree, mild noise and missing depth."""
    h, w = size
    out = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        horizon = h * rng.uniform(0.35, 0.6)
        ceiling = h * rng.uniform(0.05, 0.2)
        labels = np.full((h, w), 12, np.uint8)                      # wall
        depth = np.full((h, w), rng.uniform(2500, 4500), np.float32)
        floor = yy > horizon
        labels[floor] = 5                                             # floor
        depth[floor] = 1500.0 * h / np.maximum(yy[floor] - horizon + 8.0, 1.0) + 600.0
        labels[yy < ceiling] = 3                                      # ceiling
        for _ in range(rng.integers(2, 5)):
            cls = int(rng.choice([1, 4, 6, 9, 10, 11, 13, 8]))        # bed chair furniture sofa table tv window picture
            y0, x0 = rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0, 0.8 * w)
            bh, bw = rng.uniform(0.15 * h, 0.45 * h), rng.uniform(0.1 * w, 0.35 * w)
            box = (yy >= y0) & (yy < min(y0 + bh, h)) & (xx >= x0) & (xx < min(x0 + bw, w))
            labels[box] = cls
            depth[box] = rng.uniform(900, 2400) + 0.5 * (yy[box] - y0)
        base = rng.uniform(40, 220, size=(14, 3))
        rgb = base[labels] * (0.8 + 0.2 * np.sin(xx / rng.uniform(3, 9)))[..., None]
        rgb += rng.normal(0, 6, size=rgb.shape)
        depth *= 1 + rng.normal(0, 0.01, size=depth.shape)
        depth[rng.random((h, w)) < 0.03] = 0                          # sensor holes
        out.append(Frame(np.clip(rgb, 0, 255).astype(np.uint8), np.clip(depth, 0, 65535).astype(np.uint16),
                         labels, f"procedural-{seed}-{i}"))
    return out


def dataset_frames(root: str | Path, split: str, count: int, size: tuple[int, int]) -> list[Frame]:
    """`count` frames evenly spaced over a split of a dataset folder, resized to `size`
    (bilinear for RGB, nearest for depth and labels) when they differ."""
    from edgefuse.data.dataset import SegmentationDataset

    ds = SegmentationDataset(root, split)
    if len(ds) == 0:
        raise EdgefuseError(f"{root}: split {split!r} has no frames")
    idx = np.unique(np.linspace(0, len(ds) - 1, num=min(count, len(ds))).round().astype(int))
    out = []
    for i in idx:
        s = ds.load(int(i))
        rgb, depth, labels = s["rgb"], np.asarray(s["depth"]), np.asarray(s["label"])
        if rgb.shape[:2] != tuple(size):
            rgb, depth, labels = _resize(rgb, depth, labels, size)
        out.append(Frame(rgb.astype(np.uint8), np.clip(depth, 0, 65535).astype(np.uint16),
                         labels.astype(np.int64), f"{split}/{ds.stems[int(i)]}"))
    return out


def _resize(rgb: np.ndarray, depth: np.ndarray, labels: np.ndarray, size: tuple[int, int]):
    from PIL import Image

    h, w = size
    r = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
    d = np.asarray(Image.fromarray(depth.astype(np.float32)).resize((w, h), Image.NEAREST))
    lab = np.asarray(Image.fromarray(labels.astype(np.int32)).resize((w, h), Image.NEAREST))
    return r, d, lab


FRAME_SOURCES = {"synthetic": synthetic_frames, "procedural": procedural_frames}


def load_frames(source: str | Path | None, count: int, size: tuple[int, int], *, seed: int,
                split: str = "test") -> list[Frame]:
    """`count` frames of `size` from a named source or a dataset folder (see module doc)."""
    if count < 1:
        raise EdgefuseError(f"need at least one frame, got {count}")
    name = "synthetic" if source is None else str(source)
    if name in FRAME_SOURCES:
        return FRAME_SOURCES[name](count, size, seed)
    path = Path(name)
    if not path.is_dir():
        raise EdgefuseError(f"frames source {name!r} is neither {' nor '.join(FRAME_SOURCES)} nor a dataset "
                            "folder (create one with `edgefuse data synth --out DIR`)")
    return dataset_frames(path, split, count, size)
