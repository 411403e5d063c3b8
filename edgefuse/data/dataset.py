"""SegmentationDataset: one torch Dataset for every folder in the shared layout.

Reads edgefuse's own datasets (synthetic, and NYUv2 converted by `edgefuse data
prepare-nyuv2`) through their dataset.json, and folders prepared by ESANet (NYUv2:
`labels_13` / `labels_40`) or nicr-scene-analysis-datasets (NYUv2: `semantic_13` /
`semantic_40`; SUN RGB-D: `semantic`, 37 classes, depth PNG = mm << 3) without one.

Item: {"rgb": float32 3xHxW 0..255, "depth": float32 1xHxW mm (0 = invalid),
"label": int64 HxW (0 void, 1..C), "hard": bool, "stem": str}. Training uses
target = label - 1 with ignore_index = -1.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from edgefuse.data import layout
from edgefuse.data.classes import NYU13, SUNRGBD37, class_names, default_palette
from edgefuse.errors import EdgefuseError

# A transform maps a numpy sample {"rgb" HxWx3 uint8, "depth" HxW float32 mm, "label" HxW
# int64} and a Generator (its only randomness) to a new numpy sample.
Transform = Callable[[dict[str, np.ndarray], np.random.Generator], dict[str, np.ndarray]]

# Published statistics for folders without dataset.json (valid depth, millimetres).
NYUV2_DEPTH_STATS = (2841.95, 1417.26)         # ESANet, refined depth of the train split
SUNRGBD_DEPTH_STATS = (19025.149 / 8, 9880.916 / 8)  # nicr, raw units mm << 3 -> mm


def decode_sunrgbd_depth(raw: np.ndarray) -> np.ndarray:
    """SUN RGB-D depth PNG -> mm: the toolbox stores mm with its bits rotated left by 3
    (read_3d_pts.m: bitor(bitshift(d, -3), bitshift(d, 16 - 3))); for depths < 8.19 m this is
    simply value >> 3."""
    d = raw.astype(np.uint32)
    return (((d >> 3) | (d << 13)) & 0xFFFF).astype(np.uint16)


DEPTH_DECODERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "mm": lambda d: d.astype(np.uint16),
    "sunrgbd": decode_sunrgbd_depth,
}


def infer_info(root: Path, split: str) -> dict[str, Any]:
    """dataset.json for an ESANet / nicr folder that has none, from its label folders."""
    base = root / split
    for folder, n in (("labels_40", 40), ("semantic_40", 40), ("labels_13", 13), ("semantic_13", 13)):
        if (base / folder).is_dir():
            names = NYU13 if n == 13 else class_names(40)
            mean, std = NYUV2_DEPTH_STATS
            return {"name": "nyuv2", "num_classes": n, "classes": list(names), "label_dir": folder,
                    "depth_unit": "mm", "depth_mean": mean, "depth_std": std, "palette": default_palette(n)}
    if (base / "semantic").is_dir():
        mean, std = SUNRGBD_DEPTH_STATS
        return {"name": "sunrgbd", "num_classes": 37, "classes": list(SUNRGBD37), "label_dir": "semantic",
                "depth_unit": "sunrgbd", "depth_mean": mean, "depth_std": std, "palette": default_palette(37)}
    have = sorted(p.name for p in base.iterdir()) if base.is_dir() else []
    raise EdgefuseError(f"{base} has no label folder (labels_13/40, semantic_13/40, semantic); found: {have}. "
                        "Is this a dataset prepared with `edgefuse data synth` / `prepare-nyuv2`?")


class SegmentationDataset(torch.utils.data.Dataset):
    """Frames of one split of a dataset folder (see edgefuse.data.layout).

    labels: label folder to use instead of dataset.json's (e.g. "labels_13" on NYUv2);
    depth: "refined" (folder depth/) or "raw" (depth_raw/, NYUv2 and SUN RGB-D);
    seed: with set_epoch(), makes every random transform a function of (seed, epoch, index),
    whatever the number of DataLoader workers or DDP ranks.
    """

    def __init__(self, root: str | Path, split: str, transform: Transform | None = None, *,
                 labels: str | None = None, depth: str = "refined", seed: int = 0) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise EdgefuseError(f"dataset folder {self.root} does not exist; create one with "
                                "`edgefuse data synth --out DIR` or `edgefuse data prepare-nyuv2`")
        self.split = split
        self.info: dict[str, Any] = layout.read_info(self.root) or infer_info(self.root, split)
        if labels is not None:
            self._switch_labels(labels)
        self.label_dir = self.info.get("label_dir", "labels_13")
        depth_dirs = {"refined": layout.DEPTH_DIR, "raw": layout.DEPTH_RAW_DIR}
        if depth not in depth_dirs:
            raise EdgefuseError(f"depth must be one of {sorted(depth_dirs)}, got {depth!r}")
        self.depth_dir = depth_dirs[depth]
        unit = self.info.get("depth_unit", "mm")
        if unit not in DEPTH_DECODERS:
            raise EdgefuseError(f"{self.root}/dataset.json: unknown depth_unit {unit!r}; known: {sorted(DEPTH_DECODERS)}")
        self._decode_depth = DEPTH_DECODERS[unit]
        self.stems = layout.read_split(self.root, split)
        self.meta = layout.read_meta(self.root, split)
        self.transform = transform
        self.seed = int(seed)
        self.epoch = 0
        for sub in (layout.RGB_DIR, self.depth_dir, self.label_dir):
            if not (self.root / split / sub).is_dir():
                raise EdgefuseError(f"{self.root / split / sub} is missing: the dataset is incomplete")

    def _switch_labels(self, labels: str) -> None:
        n = int(labels.rsplit("_", 1)[-1]) if labels.rsplit("_", 1)[-1].isdigit() else None
        if n is None or n not in (13, 40):
            raise EdgefuseError(f"labels must be a folder like labels_13, labels_40, semantic_13, semantic_40; "
                                f"got {labels!r}")
        names = NYU13 if n == 13 else class_names(40)
        self.info = {**self.info, "label_dir": labels, "num_classes": n, "classes": list(names),
                     "palette": default_palette(n)}

    # --- attributes others use ----------------------------------------------------------------
    @property
    def classes(self) -> list[str]:
        return list(self.info["classes"])

    @property
    def num_classes(self) -> int:
        return int(self.info["num_classes"])

    @property
    def palette(self) -> list[list[int]]:
        return self.info.get("palette") or default_palette(self.num_classes)

    @property
    def depth_stats(self) -> tuple[float, float]:
        return float(self.info["depth_mean"]), float(self.info["depth_std"])

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.stems)

    # --- loading ------------------------------------------------------------------------------
    def load(self, index: int) -> dict[str, np.ndarray]:
        """The raw numpy sample (rgb HxWx3 uint8, depth HxW float32 mm, label HxW int64)."""
        stem = self.stems[index]
        base = self.root / self.split
        rgb = layout.read_image(layout.find_image(base / layout.RGB_DIR, stem))
        depth = self._decode_depth(layout.read_image(layout.find_image(base / self.depth_dir, stem)))
        label = layout.read_image(layout.find_image(base / self.label_dir, stem))
        if rgb.ndim != 3 or depth.ndim != 2 or label.ndim != 2:
            raise EdgefuseError(f"frame {stem!r}: expected RGB, single-channel depth and labels; got shapes "
                                f"{rgb.shape}, {depth.shape}, {label.shape}")
        if not (rgb.shape[:2] == depth.shape == label.shape):
            raise EdgefuseError(f"frame {stem!r}: rgb {rgb.shape[:2]}, depth {depth.shape} and labels "
                                f"{label.shape} differ in size")
        return {"rgb": rgb, "depth": depth.astype(np.float32), "label": label.astype(np.int64)}

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.load(index)
        if self.transform is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            sample = self.transform(sample, rng)
        stem = self.stems[index]
        meta = self.meta.get(stem, {})
        return {
            "rgb": torch.from_numpy(np.ascontiguousarray(sample["rgb"].transpose(2, 0, 1), dtype=np.float32)),
            "depth": torch.from_numpy(np.ascontiguousarray(sample["depth"], dtype=np.float32)[None]),
            "label": torch.from_numpy(np.ascontiguousarray(sample["label"], dtype=np.int64)),
            "hard": bool(meta.get("hard", False)),
            "stem": stem,
        }

    def class_pixel_counts(self) -> np.ndarray:
        """Pixels per label value 0..C over the split (for median-frequency class weights)."""
        counts = np.zeros(self.num_classes + 1, dtype=np.int64)
        for stem in self.stems:
            lab = layout.read_image(layout.find_image(self.root / self.split / self.label_dir, stem))
            counts += np.bincount(lab.ravel(), minlength=self.num_classes + 1)[: self.num_classes + 1]
        return counts
