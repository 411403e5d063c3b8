"""opencv:, openni:, open3d-bag:, open3d-realsense: and a calibration file applied to a source."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import cv2

from edgefuse.cameras import FrameIssue, open_source, validate_frame  # noqa: E402
from edgefuse.errors import ConfigError, EdgefuseError  # noqa: E402

DATA = Path(__file__).parent / "data"


def write_video(path: Path, n: int, size=(96, 128)) -> list[np.ndarray]:
    """An MJPG .avi of n frames whose mean brightness encodes the frame index."""
    h, w = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (w, h))
    frames = []
    for i in range(n):
        rgb = np.zeros((h, w, 3), np.uint8)
        rgb[..., 0] = 40 + 20 * i      # red rises with the index
        rgb[:, w // 2:, 2] = 200       # right half blue: RGB order must survive
        writer.write(rgb[..., ::-1].copy())
        frames.append(rgb)
    writer.release()
    return frames


def test_opencv_video_file_colour_only(tmp_path):
    video = tmp_path / "clip.avi"
    truth = write_video(video, 5)
    statuses = []
    src = open_source(f"opencv:{video}")
    src.on_status = statuses.append
    with src:
        assert not src.is_live
        frames = list(src)
    assert [f.index for f in frames] == list(range(5))
    for f, want in zip(frames, truth):
        assert f.rgb.shape == want.shape and f.rgb.dtype == np.uint8
        assert np.abs(f.rgb.astype(int) - want).mean() < 4          # MJPG is lossy
        assert f.depth is None and "colour-only" in f.meta["depth_missing"]
        health = validate_frame(f, want.shape[:2])
        assert health.usable and not health.depth_ok and FrameIssue.DEPTH_MISSING in health.issues
    assert frames[2].timestamp == pytest.approx(0.2, abs=0.01)
    assert len(statuses) == 1 and "RGB-only" in statuses[0]          # said once, not per frame


def test_opencv_spec_errors(tmp_path):
    with pytest.raises(ConfigError, match="needs an argument"):
        open_source("opencv")
    with pytest.raises(ConfigError, match="not a camera index"):
        open_source(f"opencv:{tmp_path / 'missing.mp4'}")
    with pytest.raises(ConfigError, match="backend 'qt' is unknown"):
        open_source("opencv:0", backend="qt")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video")
    with pytest.raises(EdgefuseError, match="OpenCV could not open"):
        with open_source(f"opencv:{junk}"):
            pass


def test_openni_needs_an_opencv_build_with_openni2():
    from edgefuse.cameras.openni import has_openni2

    if has_openni2(cv2):
        pytest.skip("this OpenCV build has OpenNI2")
    with pytest.raises(EdgefuseError, match="no OpenNI2 backend"):
        with open_source("openni:0"):
            pass


def test_openni_images_are_converted_like_every_frame():
    from edgefuse.cameras.openni import openni_images

    bgr = np.zeros((4, 6, 3), np.uint8)
    bgr[..., 0] = 255                      # blue in OpenCV's BGR
    depth = np.full((4, 6), 1234, np.uint16)
    rgb, d, meta = openni_images(bgr, depth, registered=False)
    assert rgb[0, 0].tolist() == [0, 0, 255] and d.dtype == np.uint16 and d[0, 0] == 1234
    assert meta["depth_registered"] is False


# --- Open3D --------------------------------------------------------------------------------------
def test_open3d_bag_plays_the_named_recording():
    import open3d  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    from cameras_rs_recording import COLOR_SIZE, scene_depth_mm, scene_rgb

    with open_source(f"open3d-bag:{DATA / 'sw_device_named_rs2.55.bag'}") as src:
        frames = list(src)
        assert src.serial == "000000000435"
    # Open3D plays through a real-time pipeline: it may skip frames, never invent them
    assert 1 <= len(frames) <= 12
    h, w = COLOR_SIZE
    seen = []
    for f in frames:
        i = int(f.rgb[0, 0, 0]) // 7               # the recording writes 7 * i into red
        seen.append(i)
        np.testing.assert_array_equal(f.rgb, scene_rgb(i))
        assert f.depth.shape == (h, w) and f.depth.dtype == np.uint16      # aligned by librealsense, mm
        # Open3D's real-time syncer pairs colour with the depth frame it holds, not always the
        # same index: the depth is one of the recording's frames, whole and in millimetres
        j = (int(f.depth[0, 0]) - 1000) // 10
        assert 0 <= j < 12
        assert np.all(f.depth[:, : w // 2 - 2] == scene_depth_mm(j)[0, 0])
        assert np.all(f.depth[:, w // 2 + 2:] == scene_depth_mm(j)[0, -1])
        assert validate_frame(f, COLOR_SIZE).ok
        assert f.intrinsics.fx == pytest.approx(160.0) and f.intrinsics.width == w
    assert seen == sorted(seen)


def test_open3d_bag_errors():
    import open3d  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    with pytest.raises(EdgefuseError, match="not found"):
        with open_source("open3d-bag:/no/such.bag"):
            pass
    # the older fixture's software device has no name: Open3D refuses it, bag: plays it
    with pytest.raises(EdgefuseError, match="Play it with bag:"):
        with open_source(f"open3d-bag:{DATA / 'sw_device_rs2.55.bag'}"):
            pass


def test_open3d_realsense_without_a_camera(tmp_path):
    import open3d as o3d
    with pytest.raises(ConfigError, match="records RealSense streams to .bag|records to .bag"):
        open_source("open3d-realsense", record=str(tmp_path / "run.db3"))
    if o3d.t.io.RealSenseSensor.enumerate_devices():
        pytest.skip("a RealSense camera is connected")
    with pytest.raises(EdgefuseError, match="no RealSense camera found through Open3D"):
        with open_source("open3d-realsense:123"):
            pass


def test_realsense_record_path_is_checked(tmp_path):
    import pyrealsense2 as rs
    from edgefuse.cameras.realsense import librealsense_record_suffix, record_segment

    suffix = librealsense_record_suffix(rs)
    wrong = ".bag" if suffix == ".db3" else ".db3"
    src = open_source("realsense", record=str(tmp_path / f"run{wrong}"))
    with pytest.raises(ConfigError, match=f"records to {suffix} files"):
        src.open()
    assert record_segment(tmp_path / "run.db3", 2) == tmp_path / "run-2.db3"


# --- a calibration file on a source ---------------------------------------------------------------
def test_calibration_registers_unaligned_bag_depth_like_librealsense(tmp_path):
    """bag: with --calibration: the device's alignment is off and edgefuse registers depth with
    the file's extrinsics; it must agree with librealsense's own rs.align on the same recording."""
    import pyrealsense2  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    from cameras_rs_recording import COLOR_SIZE, record

    from edgefuse.cameras.base import Intrinsics
    from edgefuse.cameras.calibrated import CalibratedSource
    from edgefuse.cameras.camera_info import CameraCalibration, CameraModel, save_camera_calibration
    from edgefuse.cameras.registration import Extrinsics

    path = tmp_path / "baseline.db3"
    record(path, 3, baseline_m=0.05)
    # the recording's own geometry, as a calibration would measure it (ppx = w/2 in
    # librealsense, pixel centres at integers as in OpenCV)
    colour = CameraModel(Intrinsics(160.0, 160.0, 80.0, 60.0, 160, 120), name="color")
    depth = CameraModel(Intrinsics(80.0, 80.0, 40.0, 30.0, 80, 60), name="depth")
    yaml_path = save_camera_calibration(
        CameraCalibration(colour, depth, Extrinsics.from_rt(np.eye(3), [0.05, 0.0, 0.0])), tmp_path / "cam.yaml")

    with open_source(f"bag:{path}") as src:
        aligned = list(src)
    src = open_source(f"bag:{path}", calibration=str(yaml_path))
    assert isinstance(src, CalibratedSource) and src.raw_depth
    with src:
        ours = list(src)
    assert len(ours) == len(aligned) == 3
    for a, b in zip(aligned, ours):
        assert b.depth.shape == COLOR_SIZE and b.meta["depth_registered"] == "calibration"
        both = (a.depth > 0) & (b.depth > 0)
        assert both.mean() > 0.85
        assert np.mean(a.depth[both] == b.depth[both]) > 0.98
        assert b.intrinsics == colour.intrinsics


def test_calibration_without_extrinsics_sets_intrinsics_only(tmp_path):
    video = tmp_path / "clip.avi"
    write_video(video, 2)
    from edgefuse.cameras.base import Intrinsics
    from edgefuse.cameras.camera_info import CameraCalibration, CameraModel, save_camera_calibration

    cam = CameraModel(Intrinsics(220.0, 221.0, 64.0, 48.0, 256, 192))   # calibrated at twice the size
    p = save_camera_calibration(CameraCalibration(cam), tmp_path / "cam.yaml")
    with open_source(f"opencv:{video}", calibration=str(p)) as src:
        frames = list(src)
    assert frames[0].intrinsics == Intrinsics(110.0, 110.5, 32.0, 24.0, 128, 96)
    assert frames[0].depth is None
