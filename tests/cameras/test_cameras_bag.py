"""bag:FILE - a RealSense .db3 recording written by pyrealsense2's own recorder (software
device, no camera) plays back aligned to colour, in millimetres, every frame, then ends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import pyrealsense2  # noqa: F401 - a dev extra (make test installs it): missing, this fails

from edgefuse.cameras import open_source, validate_frame  # noqa: E402
from edgefuse.errors import EdgefuseError  # noqa: E402

from cameras_rs_recording import COLOR_SIZE, record, scene_depth_mm, scene_rgb  # noqa: E402

OLD_BAG = Path(__file__).parent / "data" / "sw_device_rs2.55.bag"


def _check(frames, n):
    assert len(frames) == n
    assert [f.index for f in frames] == list(range(n))
    h, w = COLOR_SIZE
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(f.rgb, scene_rgb(i))
        # Aligned to colour: the 60x80 depth comes out at the colour's 120x160.
        assert f.depth is not None and f.depth.shape == (h, w) and f.depth.dtype == np.uint16
        near, far = scene_depth_mm(i)[0, 0], scene_depth_mm(i)[0, -1]
        # Same field of view and no baseline: left half near, right half far, in mm.
        assert np.all(f.depth[:, : w // 2 - 2] == near)
        assert np.all(f.depth[:, w // 2 + 2:] == far)
        assert validate_frame(f, COLOR_SIZE).ok
        assert f.intrinsics.width == w and f.intrinsics.fx == pytest.approx(160.0)
    assert frames[1].timestamp - frames[0].timestamp == pytest.approx(1 / 30, abs=1e-3)


@pytest.mark.parametrize("depth_units", [0.001, 0.0001])  # D400 default 1 mm; high-accuracy 0.1 mm
def test_db3_playback_aligned_mm(tmp_path, depth_units):
    path = tmp_path / "rec.db3"
    n = 6
    record(path, n, depth_units=depth_units)
    with open_source(f"bag:{path}") as src:
        assert not src.is_live
        frames = list(src)
        assert src.dropped == 0
    _check(frames, n)


def test_old_ros1_bag_recording_plays_back():
    """The .bag format of librealsense < 2.58 (fixture recorded with pyrealsense2 2.55)."""
    with open_source(f"bag:{OLD_BAG}") as src:
        _check(list(src), 6)


def test_db3_alignment_follows_the_baseline(tmp_path):
    """With the colour camera 5 cm to the side, aligned depth moves by fx * b / Z pixels:
    8 px for the 1 m half, 4 px for the 2 m half (a plain resize would not move it)."""
    path = tmp_path / "baseline.db3"
    record(path, 2, baseline_m=0.05)
    with open_source(f"bag:{path}") as src:
        f = next(iter(src))
    near, far = scene_depth_mm(0)[0, 0], scene_depth_mm(0)[0, -1]
    assert np.all(f.depth[:, :6] == 0)          # uncovered by the shifted near half
    assert np.all(f.depth[:, 9:86] == near)     # near half: columns 0..79 shifted by 8
    assert np.all(f.depth[:, 90:] == far)


def test_db3_frames_limit_and_reopen(tmp_path):
    path = tmp_path / "rec.db3"
    record(path, 5)
    with open_source(f"bag:{path}", frames=2) as src:
        assert [f.index for f in src] == [0, 1]
    with open_source(f"bag:{path}", align=False) as src:  # unaligned depth keeps its own size
        frames = list(src)
    assert len(frames) == 5 and frames[0].depth.shape == (60, 80)


def test_bag_errors(tmp_path):
    with pytest.raises(EdgefuseError, match="not found"):
        with open_source(f"bag:{tmp_path / 'missing.db3'}"):
            pass
    junk = tmp_path / "junk.db3"
    junk.write_bytes(b"not a recording")
    with pytest.raises(EdgefuseError, match="RealSense recording"):
        with open_source(f"bag:{junk}"):
            pass
