"""INT8 calibration / verification frames from a camera spec with a camera.yaml
(`edgefuse export --calib-data bag:FILE --camera-calibration rig.yaml`): depth is registered
with the file's extrinsics, as `edgefuse run --calibration` registers it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from edgefuse.export.calib_frames import load_frames

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "cameras"))


def test_bag_frames_registered_with_the_calibration(tmp_path):
    import pyrealsense2  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    from cameras_rs_recording import COLOR_SIZE, record

    from edgefuse.cameras.base import Intrinsics
    from edgefuse.cameras.camera_info import CameraCalibration, CameraModel, save_camera_calibration
    from edgefuse.cameras.registration import Extrinsics

    path = tmp_path / "rec.db3"
    record(path, 3, baseline_m=0.05)
    colour = CameraModel(Intrinsics(160.0, 160.0, 80.0, 60.0, 160, 120))
    depth = CameraModel(Intrinsics(80.0, 80.0, 40.0, 30.0, 80, 60))
    good = save_camera_calibration(CameraCalibration(colour, depth, Extrinsics.from_rt(np.eye(3), [0.05, 0, 0])),
                                   tmp_path / "rig.yaml")
    wrong = save_camera_calibration(CameraCalibration(colour, depth, Extrinsics.from_rt(np.eye(3), [-0.05, 0, 0])),
                                    tmp_path / "wrong.yaml")
    aligned = load_frames(f"bag:{path}", 3, COLOR_SIZE, seed=0, split="train")
    ours = load_frames(f"bag:{path}", 3, COLOR_SIZE, seed=0, split="train", camera_calibration=good)
    bad = load_frames(f"bag:{path}", 3, COLOR_SIZE, seed=0, split="train", camera_calibration=wrong)
    for a, b, c in zip(aligned, ours, bad):
        both = (a.depth > 0) & (b.depth > 0)
        assert np.mean(a.depth[both] == b.depth[both]) > 0.98      # as librealsense aligns it
        both = (a.depth > 0) & (c.depth > 0)
        assert np.mean(a.depth[both] == c.depth[both]) < 0.95      # the file's numbers are the ones used
