"""Frames for verification and INT8 calibration: sources, determinism, dataset folders."""

import numpy as np
import pytest

from edgefuse.export.calib_frames import load_frames, procedural_frames
from edgefuse.errors import EdgefuseError


def test_procedural_frames_are_structured_and_deterministic():
    a = procedural_frames(3, (64, 96), seed=4)
    b = procedural_frames(3, (64, 96), seed=4)
    c = procedural_frames(3, (64, 96), seed=5)
    for f, g in zip(a, b):
        assert np.array_equal(f.rgb, g.rgb) and np.array_equal(f.depth, g.depth) and np.array_equal(f.labels, g.labels)
    assert not np.array_equal(a[0].rgb, c[0].rgb)
    f = a[0]
    assert f.rgb.shape == (64, 96, 3) and f.rgb.dtype == np.uint8
    assert f.depth.dtype == np.uint16 and (f.depth == 0).any() and f.depth.max() > 500
    assert f.labels.min() >= 1 and f.labels.max() <= 13 and len(np.unique(f.labels)) >= 3
    x = f.inputs()
    assert x["rgb"].shape == (1, 3, 64, 96) and x["depth"].shape == (1, 1, 64, 96)
    assert x["rgb"].dtype == np.float32 and x["rgb"].max() <= 255
    assert np.array_equal(x["depth"][0, 0], f.depth.astype(np.float32))   # millimetres, unscaled


def test_synthetic_frames_come_from_the_benchmark_renderer():
    import open3d  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    a = load_frames("synthetic", 2, (64, 96), seed=9)
    b = load_frames("synthetic", 2, (64, 96), seed=9)
    assert np.array_equal(a[1].rgb, b[1].rgb) and a[1].labels.shape == (64, 96)


def test_dataset_folder_frames_are_resized(tmp_path):
    import open3d  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    from edgefuse.data.synth import write_dataset

    write_dataset(tmp_path / "ds", frames=5, seed=1, size=(48, 64), test_fraction=0.4)
    frames = load_frames(tmp_path / "ds", 3, (64, 128), seed=0, split="train")
    assert len(frames) == 3 and frames[0].rgb.shape == (64, 128, 3)
    assert frames[0].depth.shape == (64, 128) and frames[0].labels.shape == (64, 128)
    assert set(np.unique(frames[0].labels)) <= set(range(14))     # nearest: no invented label values
    assert frames[0].name.startswith("train/")
    assert len(load_frames(tmp_path / "ds", 10, (48, 64), seed=0, split="test")) == 2   # all there are


def test_bad_sources_are_clear_errors(tmp_path):
    with pytest.raises(EdgefuseError, match="neither synthetic nor procedural nor a dataset folder"):
        load_frames(tmp_path / "nope", 2, (64, 96), seed=0)
    with pytest.raises(EdgefuseError, match="at least one frame"):
        load_frames("procedural", 0, (64, 96), seed=0)
