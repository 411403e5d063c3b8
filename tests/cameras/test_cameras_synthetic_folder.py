"""synthetic[:SEED] determinism and folder:DIR playback (dataset layout and plain rgb/+depth/)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefuse.cameras import Intrinsics, open_source, validate_frame
from edgefuse.data.layout import write_png

SIZE = (24, 32)


def test_synthetic_is_deterministic_in_seed_and_index():
    import open3d  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    with open_source("synthetic:5", frames=3, size=SIZE) as a:
        fa = list(a)
    with open_source("synthetic:5", frames=2, size=SIZE, start=1) as b:
        fb = list(b)
    with open_source("synthetic:6", frames=1, size=SIZE) as c:
        fc = list(c)
    assert [f.index for f in fa] == [0, 1, 2] and [f.index for f in fb] == [1, 2]
    for x, y in zip(fa[1:], fb):
        np.testing.assert_array_equal(x.rgb, y.rgb)
        np.testing.assert_array_equal(x.depth, y.depth)
    assert not np.array_equal(fa[0].rgb, fc[0].rgb)
    f = fa[0]
    assert f.rgb.shape == (*SIZE, 3) and f.rgb.dtype == np.uint8
    assert f.depth.shape == SIZE and f.depth.dtype == np.uint16
    assert f.intrinsics.width == SIZE[1] and validate_frame(f, SIZE).usable
    assert fa[1].timestamp > fa[0].timestamp


def test_synthetic_live_mode_drops_oldest():
    import open3d  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    import time

    with open_source("synthetic", frames=6, size=SIZE, live=True, fps=1000, queue_size=1) as src:
        assert src.is_live
        got = []
        for f in src:
            got.append(f.index)
            time.sleep(0.1)  # slower than the renderer: it must drop
        dropped = src.dropped
    assert got == sorted(got) and got[-1] == 5 and dropped > 0
    assert len(got) + dropped == 6


def _dataset(root, stems, split="test", meta=True):
    (root / "dataset.json").write_text(json.dumps({"name": "t", "depth_unit": "mm"}))
    (root / f"{split}.txt").write_text("".join(s + "\n" for s in stems))
    records = []
    for i, stem in enumerate(stems):
        rgb = np.full((*SIZE, 3), i, np.uint8)
        rgb[..., 2] = 255
        write_png(root / split / "rgb" / f"{stem}.png", rgb)
        write_png(root / split / "depth" / f"{stem}.png", np.full(SIZE, 1000 + i, np.uint16))
        records.append({"stem": stem, "intrinsics": {"fx": 20.0, "fy": 21.0, "cx": 16.0, "cy": 12.0,
                                                     "width": SIZE[1], "height": SIZE[0]}, "hard": i == 1})
    if meta:
        (root / split / "meta.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_folder_dataset_layout(tmp_path):
    _dataset(tmp_path, ["b0", "a1", "c2"])
    with open_source(f"folder:{tmp_path}") as src:  # default split: test
        assert len(src) == 3 and not src.is_live
        frames = list(src)
        assert src.dropped == 0
    assert [f.meta["stem"] for f in frames] == ["b0", "a1", "c2"]  # split-file order
    for i, f in enumerate(frames):
        assert f.rgb[0, 0].tolist() == [i, i, 255]
        assert f.depth.dtype == np.uint16 and int(f.depth[0, 0]) == 1000 + i
        assert f.intrinsics == Intrinsics(20.0, 21.0, 16.0, 12.0, SIZE[1], SIZE[0])
    assert frames[1].meta["hard"] is True


def test_folder_split_in_spec_and_frames_limit(tmp_path):
    _dataset(tmp_path, ["x0", "x1", "x2"], split="train")
    with open_source(f"folder:{tmp_path}:train", frames=2) as src:
        assert [f.meta["stem"] for f in src] == ["x0", "x1"]


def test_plain_folder_and_bad_frames_do_not_stop_playback(tmp_path):
    for stem, val in (("f2", 2), ("f0", 0), ("f1", 1)):
        write_png(tmp_path / "rgb" / f"{stem}.png", np.full((*SIZE, 3), val, np.uint8))
        write_png(tmp_path / "depth" / f"{stem}.png", np.full(SIZE, 500, np.uint16))
    (tmp_path / "rgb" / "f3.png").write_bytes(b"\x89PNG truncated")   # decode error
    write_png(tmp_path / "rgb" / "f4.png", np.zeros((*SIZE, 3), np.uint8))  # no depth file
    with open_source(f"folder:{tmp_path}") as src:
        frames = list(src)
    assert [f.meta["stem"] for f in frames] == ["f0", "f1", "f2", "f3", "f4"]
    assert frames[0].intrinsics is None and frames[2].rgb[0, 0, 0] == 2
    health = [validate_frame(f, SIZE) for f in frames]
    assert [h.usable for h in health] == [True, True, True, False, True]
    assert frames[3].error and "f3" in frames[3].error
    assert frames[4].depth is None and not health[4].depth_ok


def test_folder_errors(tmp_path):
    from edgefuse.errors import EdgefuseError

    with pytest.raises(EdgefuseError, match="not a directory"):
        open_source(f"folder:{tmp_path / 'missing'}")
    with pytest.raises(EdgefuseError, match="neither a dataset"):
        open_source(f"folder:{tmp_path}")
    _dataset(tmp_path, ["a"], split="test")
    with pytest.raises(EdgefuseError, match="splits found"):
        open_source(f"folder:{tmp_path}:val")
