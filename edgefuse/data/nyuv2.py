"""Convert the official NYUv2 labeled file into the ESANet folder layout.

`nyu_depth_v2_labeled.mat` is MATLAB v7.3, i.e. HDF5 (read with h5py), and its arrays come
transposed (docs/models-and-training.md "ESANet"): `images` N x 3 x W x H uint8, `depths` / `rawDepths` N x W x H
float32 metres, `labels` N x W x H uint16 over 894 classes (0 = void). Output (ESANet's
prepare_dataset.py layout, plus dataset.json):

    OUT/<split>/rgb/NNNN.png, depth/ (refined, mm), depth_raw/ (mm), labels_894/, labels_40/, labels_13/
    OUT/train.txt, OUT/test.txt   (1-based frame numbers, 4 digits, as ESANet)

Depth is rounded to the nearest millimetre (ESANet truncates; they differ by < 1 mm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from edgefuse.data import layout
from edgefuse.data.classes import (class_names, default_palette, lookup_40_to_13, lookup_894_to_40,
                                   nyuv2_mapping)
from edgefuse.errors import EdgefuseError, require

REQUIRED_KEYS = ("images", "depths", "rawDepths", "labels")


def read_splits(path: str | Path | None) -> tuple[list[int], list[int]]:
    """1-based train / test frame numbers: from splits.mat (trainNdxs, testNdxs) or the shipped split."""
    if path is None:
        m = nyuv2_mapping()
        return list(m["split_train_1based"]), list(m["split_test_1based"])
    path = Path(path)
    if not path.is_file():
        raise EdgefuseError(f"splits file {path} not found")
    h5py = require("h5py", "train", "NYUv2 .mat files are HDF5")
    if h5py.is_hdf5(path):  # MATLAB v7.3
        with h5py.File(path, "r") as f:
            arrays = {k: np.asarray(f[k]) for k in ("trainNdxs", "testNdxs") if k in f}
    else:  # MATLAB v5 (the usual splits.mat)
        sio = require("scipy.io", "train", "splits.mat is a MATLAB v5 file")
        arrays = {k: v for k, v in sio.loadmat(str(path)).items() if k in ("trainNdxs", "testNdxs")}
    if set(arrays) != {"trainNdxs", "testNdxs"}:
        raise EdgefuseError(f"{path} must hold 'trainNdxs' and 'testNdxs' (the NYUv2 splits.mat); found {sorted(arrays)}")
    return ([int(i) for i in arrays["trainNdxs"].ravel()], [int(i) for i in arrays["testNdxs"].ravel()])


def prepare_nyuv2(mat_path: str | Path, out_dir: str | Path, splits: str | Path | None = None,
                  progress: Callable[[int, int], None] | None = None) -> dict:
    """Convert `mat_path` into `out_dir`; returns the dataset.json written (40 classes by default;
    load with labels="labels_13" for the 13-class benchmark)."""
    mat_path, out = Path(mat_path), Path(out_dir)
    h5py = require("h5py", "train", "NYUv2's labeled .mat is MATLAB v7.3 (HDF5)")
    if not mat_path.is_file():
        raise EdgefuseError(f"{mat_path} not found; download nyu_depth_v2_labeled.mat from the NYU Depth V2 page")
    if not h5py.is_hdf5(mat_path):
        raise EdgefuseError(f"{mat_path} is not an HDF5 (MATLAB v7.3) file; expected nyu_depth_v2_labeled.mat")
    train_idx, test_idx = read_splits(splits)
    lut40, lut13 = lookup_894_to_40(), lookup_40_to_13()
    stats = layout.DepthStats()
    with h5py.File(mat_path, "r") as f:
        missing = [k for k in REQUIRED_KEYS if k not in f]
        if missing:
            raise EdgefuseError(f"{mat_path} lacks {missing}: is it the *labeled* NYUv2 file? found keys {sorted(f.keys())}")
        images, depths, raw, labels = (f[k] for k in REQUIRED_KEYS)
        n = images.shape[0]
        if images.ndim != 4 or images.shape[1] != 3 or depths.shape != (n, *images.shape[2:]) \
                or raw.shape != depths.shape or labels.shape != depths.shape:
            raise EdgefuseError(f"{mat_path}: unexpected shapes images {images.shape}, depths {depths.shape}, "
                                f"rawDepths {raw.shape}, labels {labels.shape} (expected N x 3 x W x H and N x W x H)")
        bad = [i for i in (*train_idx, *test_idx) if not 1 <= i <= n]
        if bad:
            raise EdgefuseError(f"the split names frame {bad[0]} but {mat_path} has {n} frames; pass the matching "
                                "--splits file")
        total = len(train_idx) + len(test_idx)
        done = 0
        for split, idxs in (("train", train_idx), ("test", test_idx)):
            base = out / split
            for idx in idxs:
                i = idx - 1  # MATLAB numbering
                stem = f"{idx:04d}"
                rgb = np.asarray(images[i]).transpose(2, 1, 0)           # 3 x W x H -> H x W x 3
                depth = _to_mm(np.asarray(depths[i]).T)
                depth_raw = _to_mm(np.asarray(raw[i]).T)
                lab894 = np.asarray(labels[i]).T.astype(np.int64)
                if lab894.max(initial=0) >= len(lut40):
                    raise EdgefuseError(f"frame {idx}: label {lab894.max()} is outside the 894 NYUv2 classes")
                lab40 = lut40[lab894]
                layout.write_png(base / layout.RGB_DIR / f"{stem}.png", np.ascontiguousarray(rgb, dtype=np.uint8))
                layout.write_png(base / layout.DEPTH_DIR / f"{stem}.png", depth)
                layout.write_png(base / layout.DEPTH_RAW_DIR / f"{stem}.png", depth_raw)
                layout.write_png(base / "labels_894" / f"{stem}.png", lab894.astype(np.uint16))
                layout.write_png(base / "labels_40" / f"{stem}.png", lab40)
                layout.write_png(base / "labels_13" / f"{stem}.png", lut13[lab40])
                if split == "train":
                    stats.add(depth)
                done += 1
                if progress:
                    progress(done, total)
            layout.write_split(out, split, [f"{i:04d}" for i in idxs])
    info = {"name": "nyuv2", "num_classes": 40, "classes": list(class_names(40)), "label_dir": "labels_40",
            "depth_unit": "mm", "depth_mean": round(stats.mean, 3), "depth_std": round(stats.std, 3),
            "palette": default_palette(40), "splits": {"train": len(train_idx), "test": len(test_idx)},
            "source": str(mat_path.name)}
    layout.write_info(out, info)
    return info


def _to_mm(metres: np.ndarray) -> np.ndarray:
    mm = np.round(np.nan_to_num(metres.astype(np.float64), nan=0.0) * 1000.0)
    return np.clip(mm, 0, 65535).astype(np.uint16)
