"""Real-dataset formats: the official NYUv2 labeled .mat (HDF5, transposed axes, metres, 894
classes), ESANet and nicr folder layouts, and SUN RGB-D in the nicr layout (depth = mm << 3)."""

import json

import numpy as np
import pytest

import h5py

from edgefuse.cli.main import main  # noqa: E402
from edgefuse.data import layout  # noqa: E402
from edgefuse.data.dataset import SegmentationDataset, decode_sunrgbd_depth  # noqa: E402
from edgefuse.data.nyuv2 import prepare_nyuv2  # noqa: E402
from edgefuse.errors import EdgefuseError  # noqa: E402

N, H, W = 5, 6, 8
# 894-class labels with known meanings (classMapping40 / class13Mapping):
# 21 'wall' -> 40: 1 wall -> 13: 12 wall; 11 'floor' -> 2 floor -> 5 floor;
# 5 'chair' -> 5 chair -> 4 chair; 19 'table' -> 7 table -> 10 table; 0 stays void.
KNOWN = {0: (0, 0), 21: (1, 12), 11: (2, 5), 5: (5, 4), 19: (7, 10)}


def _write_mat(path, rng):
    """A labeled .mat as MATLAB v7.3 stores it: arrays transposed to N x (C x) W x H."""
    rgb = rng.integers(0, 256, size=(N, H, W, 3), dtype=np.uint8)          # what we expect back
    depth_m = rng.uniform(0.5, 9.5, size=(N, H, W)).astype(np.float32)
    raw_m = depth_m.copy()
    raw_m[:, 0, :3] = 0.0                                                     # raw Kinect holes
    labels = rng.choice(list(KNOWN), size=(N, H, W)).astype(np.uint16)
    with h5py.File(path, "w") as f:
        f["images"] = rgb.transpose(0, 3, 2, 1)       # N x 3 x W x H
        f["depths"] = depth_m.transpose(0, 2, 1)       # N x W x H
        f["rawDepths"] = raw_m.transpose(0, 2, 1)
        f["labels"] = labels.transpose(0, 2, 1)
    return rgb, depth_m, raw_m, labels


def _write_splits(path, train, test):
    with h5py.File(path, "w") as f:  # MATLAB v7.3 keeps column vectors as 1 x K
        f["trainNdxs"] = np.asarray(train, dtype=np.float64)[None]
        f["testNdxs"] = np.asarray(test, dtype=np.float64)[None]


def test_prepare_nyuv2_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    rgb, depth_m, raw_m, labels = _write_mat(tmp_path / "nyu.mat", rng)
    _write_splits(tmp_path / "splits.mat", [1, 3, 4], [2, 5])
    out = tmp_path / "nyuv2"
    assert main(["data", "prepare-nyuv2", str(tmp_path / "nyu.mat"), "--splits", str(tmp_path / "splits.mat"),
                 "--out", str(out)]) == 0

    assert (out / "train.txt").read_text().split() == ["0001", "0003", "0004"]
    assert (out / "test.txt").read_text().split() == ["0002", "0005"]
    lut40 = {k: v[0] for k, v in KNOWN.items()}
    lut13 = {k: v[1] for k, v in KNOWN.items()}
    for split, frames in (("train", [1, 3, 4]), ("test", [2, 5])):
        for idx in frames:
            i, stem = idx - 1, f"{idx:04d}"
            base = out / split
            np.testing.assert_array_equal(layout.read_image(base / "rgb" / f"{stem}.png"), rgb[i])
            depth = layout.read_image(base / "depth" / f"{stem}.png")
            assert depth.dtype == np.uint16
            np.testing.assert_array_equal(depth, np.round(depth_m[i] * 1000).astype(np.uint16))  # metres -> mm
            raw = layout.read_image(base / "depth_raw" / f"{stem}.png")
            assert (raw[0, :3] == 0).all() and (raw[1:] > 0).all()
            np.testing.assert_array_equal(layout.read_image(base / "labels_894" / f"{stem}.png"), labels[i])
            np.testing.assert_array_equal(layout.read_image(base / "labels_40" / f"{stem}.png"),
                                          np.vectorize(lut40.get)(labels[i]))
            np.testing.assert_array_equal(layout.read_image(base / "labels_13" / f"{stem}.png"),
                                          np.vectorize(lut13.get)(labels[i]))

    info = json.loads((out / "dataset.json").read_text())
    assert info["num_classes"] == 40 and info["classes"][0] == "wall" and info["label_dir"] == "labels_40"
    train_depth = np.concatenate([np.round(depth_m[i] * 1000).ravel() for i in (0, 2, 3)])
    assert info["depth_mean"] == pytest.approx(train_depth.mean(), rel=1e-4)

    ds = SegmentationDataset(out, "test")
    assert ds.num_classes == 40 and len(ds) == 2
    item = ds[0]
    assert item["stem"] == "0002" and item["depth"].shape == (1, H, W) and not item["hard"]
    np.testing.assert_array_equal(item["label"].numpy(), np.vectorize(lut40.get)(labels[1]))
    ds13 = SegmentationDataset(out, "test", labels="labels_13")
    assert ds13.num_classes == 13 and ds13.classes[11] == "wall"
    np.testing.assert_array_equal(ds13[0]["label"].numpy(), np.vectorize(lut13.get)(labels[1]))
    raw_ds = SegmentationDataset(out, "train", depth="raw")
    assert (raw_ds[0]["depth"][0, 0, :3] == 0).all()


def test_prepare_nyuv2_rejects_wrong_files(tmp_path):
    with h5py.File(tmp_path / "other.mat", "w") as f:
        f["images"] = np.zeros((1, 3, 4, 3), np.uint8)
    with pytest.raises(EdgefuseError, match="labeled"):
        prepare_nyuv2(tmp_path / "other.mat", tmp_path / "out")
    _write_mat(tmp_path / "nyu.mat", np.random.default_rng(1))
    with pytest.raises(EdgefuseError, match="--splits"):  # the shipped 795/654 split needs 1449 frames
        prepare_nyuv2(tmp_path / "nyu.mat", tmp_path / "out")
    (tmp_path / "text.mat").write_text("not a mat file")
    assert main(["data", "prepare-nyuv2", str(tmp_path / "text.mat"), "--out", str(tmp_path / "o")]) == 2


def test_splits_mat_v5_is_read(tmp_path):
    from scipy import io as sio
    from edgefuse.data.nyuv2 import read_splits

    sio.savemat(tmp_path / "splits.mat", {"trainNdxs": np.array([[1], [3]]), "testNdxs": np.array([[2]])})
    assert read_splits(tmp_path / "splits.mat") == ([1, 3], [2])
    train, test = read_splits(None)  # the shipped standard split
    assert len(train) == 795 and len(test) == 654 and not set(train) & set(test)


def _png_folder(root, split, stems, label_dir, labels_fn, depth_fn, rgb_ext=".png"):
    rng = np.random.default_rng(2)
    for stem in stems:
        base = root / split
        rgb = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
        (base / "rgb" / stem).parent.mkdir(parents=True, exist_ok=True)
        from PIL import Image

        Image.fromarray(rgb).save(base / "rgb" / f"{stem}{rgb_ext}")
        layout.write_png(base / "depth" / f"{stem}.png", depth_fn())
        layout.write_png(base / label_dir / f"{stem}.png", labels_fn())
    layout.write_split(root, split, stems)


def test_nicr_nyuv2_layout_without_dataset_json(tmp_path):
    lab = np.arange(H * W, dtype=np.uint8).reshape(H, W) % 41
    mm = np.full((H, W), 1234, np.uint16)
    _png_folder(tmp_path, "train", ["0003", "0004"], "semantic_40", lambda: lab, lambda: mm)
    ds = SegmentationDataset(tmp_path, "train")
    assert ds.num_classes == 40 and ds.info["label_dir"] == "semantic_40"
    item = ds[1]
    np.testing.assert_array_equal(item["label"].numpy(), lab)
    assert (item["depth"] == 1234).all()


def test_sunrgbd_nicr_layout_depth_is_mm_shifted_by_three(tmp_path):
    mm = np.random.default_rng(3).integers(0, 8000, size=(H, W)).astype(np.uint16)
    mm[0, 0] = 0
    stored = (mm.astype(np.uint32) << 3).astype(np.uint16)  # the SUN RGB-D toolbox's PNG values
    lab = (np.arange(H * W).reshape(H, W) % 38).astype(np.uint8)
    stems = ["kv1/NYUdata/NYU0001", "realsense/lg/2014_10_24-13_26_11-1311000039"]
    _png_folder(tmp_path, "test", stems, "semantic", lambda: lab, lambda: stored, rgb_ext=".jpg")
    ds = SegmentationDataset(tmp_path, "test")
    assert ds.num_classes == 37 and ds.classes[0] == "wall" and ds.classes[-1] == "bag"
    item = ds[1]
    assert item["stem"] == stems[1] and item["rgb"].shape == (3, H, W)
    np.testing.assert_array_equal(item["depth"][0].numpy(), mm.astype(np.float32))
    np.testing.assert_array_equal(item["label"].numpy(), lab)
    # the toolbox's rotation keeps depths beyond 8.19 m too
    far = np.array([9000], np.uint16)
    rotated = ((far.astype(np.uint32) << 3) | (far.astype(np.uint32) >> 13)) & 0xFFFF
    assert decode_sunrgbd_depth(rotated.astype(np.uint16))[0] == 9000


def test_stems_cannot_escape_the_dataset(tmp_path):
    _png_folder(tmp_path, "train", ["a"], "labels_13", lambda: np.zeros((H, W), np.uint8),
                lambda: np.zeros((H, W), np.uint16))
    (tmp_path / "train.txt").write_text("../../etc/passwd\n")
    with pytest.raises(EdgefuseError, match="inside the dataset"):
        SegmentationDataset(tmp_path, "train")
