"""The dataset folder layout shared by real and synthetic data (ESANet / nicr style).

```
DIR/dataset.json                 name, classes, label_dir, depth unit and statistics, palette
DIR/<split>/rgb/<stem>.png       uint8 RGB (nicr's SUN RGB-D: .jpg)
DIR/<split>/depth/<stem>.png     uint16 millimetres, 0 = no measurement
DIR/<split>/labels_13/<stem>.png 0 = void, 1..C   (nicr: semantic_13 / semantic_40 / semantic)
DIR/<split>/meta.jsonl           one JSON object per frame (synthetic data)
DIR/<split>.txt                  stems, one a line
```
Stems may contain '/' (nicr's SUN RGB-D: `kv1/NYUdata/NYU0001`); they must stay inside DIR.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterable

import numpy as np
from PIL import Image

from edgefuse.errors import EdgefuseError

SPLITS = ("train", "test")
RGB_DIR = "rgb"
DEPTH_DIR = "depth"
DEPTH_RAW_DIR = "depth_raw"
META_FILE = "meta.jsonl"
INFO_FILE = "dataset.json"
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")


def write_png(path: Path, array: np.ndarray) -> None:
    """Write uint8 (HxW or HxWx3) or uint16 (HxW) as a lossless PNG, creating folders."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if array.dtype not in (np.uint8, np.uint16) or (array.dtype == np.uint16 and array.ndim != 2):
        raise TypeError(f"PNG arrays must be uint8 (HxW, HxWx3) or uint16 (HxW), got {array.dtype} {array.shape}")
    img = Image.fromarray(np.ascontiguousarray(array))  # uint16 -> mode I;16 (16-bit grey PNG)
    # compress_level 1: ~3x faster than the default and only slightly larger files.
    img.save(path, format="PNG", compress_level=1)


def read_image(path: Path) -> np.ndarray:
    """Read a PNG/JPEG: RGB images as HxWx3 uint8, single-channel 16-bit as uint16, else uint8."""
    with Image.open(path) as img:
        if img.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(img).astype(np.uint16)
        if img.mode in ("L", "P"):
            return np.asarray(img)  # P: palette indices are the labels (ESANet's colored PNGs aside)
        return np.asarray(img.convert("RGB"))


def find_image(folder: Path, stem: str) -> Path:
    """The file for `stem` in `folder`, whatever its image extension."""
    for ext in IMAGE_EXTENSIONS:
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    raise EdgefuseError(f"no image for frame {stem!r} in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)})")


def safe_stem(root: Path, stem: str) -> str:
    """Reject stems that would escape the dataset folder (absolute, '..')."""
    parts = Path(stem).parts
    if not stem or Path(stem).is_absolute() or ".." in parts:
        raise EdgefuseError(f"invalid frame name {stem!r} in {root}: it must be a relative path inside the dataset")
    return stem


def read_split(root: Path, split: str) -> list[str]:
    """Stems listed in DIR/<split>.txt."""
    path = root / f"{split}.txt"
    if not path.is_file():
        have = sorted(p.stem for p in root.glob("*.txt"))
        raise EdgefuseError(f"{path} not found: is {root} a dataset folder? splits found: {have or 'none'}")
    stems = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    return [safe_stem(root, s) for s in stems]


def write_split(root: Path, split: str, stems: Iterable[str]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{split}.txt").write_text("".join(f"{s}\n" for s in stems))


def read_meta(root: Path, split: str) -> dict[str, dict[str, Any]]:
    """Per-frame metadata from DIR/<split>/meta.jsonl, by stem ({} when absent: real data)."""
    path = root / split / META_FILE
    if not path.is_file():
        return {}
    out = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            out[rec["stem"]] = rec
    return out


def read_info(root: Path) -> dict[str, Any] | None:
    path = root / INFO_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def write_info(root: Path, info: dict[str, Any]) -> None:
    root.mkdir(parents=True, exist_ok=True)
    (root / INFO_FILE).write_text(json.dumps(info, indent=2) + "\n")


class DepthStats:
    """Running mean / std of valid (non-zero) depth values, in float64 to avoid overflow."""

    def __init__(self) -> None:
        self.count = 0
        self.total = 0.0
        self.total_sq = 0.0

    def add(self, depth: np.ndarray) -> None:
        v = depth[depth > 0].astype(np.float64)
        self.count += v.size
        self.total += float(v.sum())
        self.total_sq += float((v * v).sum())

    def merge(self, other: "DepthStats") -> None:
        self.count += other.count
        self.total += other.total
        self.total_sq += other.total_sq

    @property
    def mean(self) -> float:
        return self.total / max(self.count, 1)

    @property
    def std(self) -> float:
        var = self.total_sq / max(self.count, 1) - self.mean ** 2
        return float(np.sqrt(max(var, 0.0)))
