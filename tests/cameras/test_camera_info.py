"""camera_info YAML: files written by ROS tools load; ours round-trip; bad files are refused."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from edgefuse.cameras.base import Intrinsics
from edgefuse.cameras.camera_info import (CameraCalibration, CameraModel, load_camera_calibration,
                                          save_camera_calibration)
from edgefuse.cameras.registration import Extrinsics
from edgefuse.errors import ConfigError

# As ROS 1's cameracalibrator / camera_calibration_parsers write it (yaml-cpp layout, no
# distortion_model in files from older releases).
ROS_FILE = """\
image_width: 640
image_height: 480
camera_name: narrow_stereo
camera_matrix:
  rows: 3
  cols: 3
  data: [615.12, 0, 322.3, 0, 614.9, 241.7, 0, 0, 1]
distortion_coefficients:
  rows: 1
  cols: 5
  data: [0.081, -0.172, 0.0012, -0.0004, 0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1, 0, 0, 0, 1, 0, 0, 0, 1]
projection_matrix:
  rows: 3
  cols: 4
  data: [620.5, 0, 322.0, 0, 0, 621.1, 241.2, 0, 0, 0, 1, 0]
"""


def test_ros_written_file_loads(tmp_path):
    p = tmp_path / "ost.yaml"
    p.write_text(ROS_FILE)
    cal = load_camera_calibration(p)
    c = cal.color
    assert c.name == "narrow_stereo" and c.distortion_model == "plumb_bob"   # ROS's default when absent
    assert c.intrinsics == Intrinsics(615.12, 614.9, 322.3, 241.7, 640, 480)
    assert c.distortion == pytest.approx((0.081, -0.172, 0.0012, -0.0004, 0.0))
    assert c.projection_matrix()[0, 0] == pytest.approx(620.5)
    assert not cal.registers_depth


def test_round_trip_with_depth_keys_and_ros_layout(tmp_path):
    color = CameraModel(Intrinsics(600.0, 601.0, 320.5, 239.5, 640, 480), (-0.1, 0.02, 0.001, 0.0, 0.0),
                        name="color")
    depth = CameraModel(Intrinsics(580.0, 580.0, 318.0, 242.0, 640, 480), (0.01, 0.0, 0.0, 0.0, 0.0), name="ir")
    ext = Extrinsics.from_rt(np.eye(3), [0.025, 0.0, -0.001])
    p = save_camera_calibration(CameraCalibration(color, depth, ext, {"depth_to_color_rms_px": 0.2}),
                                tmp_path / "cam.yaml")
    doc = yaml.safe_load(p.read_text())
    # ROS's keys first, in writeCalibrationYml's order, matrices as {rows, cols, data}
    assert list(doc)[:8] == ["image_width", "image_height", "camera_name", "camera_matrix", "distortion_model",
                             "distortion_coefficients", "rectification_matrix", "projection_matrix"]
    assert doc["camera_matrix"] == {"rows": 3, "cols": 3, "data": [600.0, 0.0, 320.5, 0.0, 601.0, 239.5, 0, 0, 1]}
    assert doc["projection_matrix"]["cols"] == 4 and doc["depth_to_color"]["translation"]["rows"] == 3
    back = load_camera_calibration(p)
    assert back.color.intrinsics == color.intrinsics and back.color.distortion == color.distortion
    np.testing.assert_allclose(back.color.projection_matrix(), color.projection_matrix())
    assert back.depth.intrinsics == depth.intrinsics
    assert back.depth_to_color == ext and back.registers_depth
    assert back.extras["depth_to_color_rms_px"] == pytest.approx(0.2)


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("camera_matrix"), "missing camera_matrix"),
    (lambda d: d["camera_matrix"].update(rows=2), "says 2x3"),
    (lambda d: d.update(distortion_model="equidistant"), "not supported"),
    (lambda d: d["distortion_coefficients"].update(cols=3, data=[0, 0, 0]), "takes 4-5"),
    (lambda d: d.update(image_width="wide"), "must be integers"),
    (lambda d: d.update(depth_to_color={"rotation": {"rows": 3, "cols": 3, "data": [1, 0, 0, 0, 1, 0, 0, 0, 1]},
                                        "translation": {"rows": 3, "cols": 1, "data": [0, 0, 0]}}),
     "needs both depth_camera and depth_to_color"),
])
def test_bad_files_are_refused_with_the_key(tmp_path, edit, message):
    doc = yaml.safe_load(ROS_FILE)
    edit(doc)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(ConfigError, match=message):
        load_camera_calibration(p)


def test_missing_and_non_yaml_files(tmp_path):
    with pytest.raises(ConfigError, match="not found; write one with `edgefuse calibrate"):
        load_camera_calibration(tmp_path / "nope.yaml")
    junk = tmp_path / "junk.yaml"
    junk.write_text("image_width: [1, 2\n")
    with pytest.raises(ConfigError, match="is not YAML"):
        load_camera_calibration(junk)


def test_scaling_to_another_stream_size():
    cam = CameraModel(Intrinsics(600.0, 600.0, 319.5, 239.5, 640, 480))
    half = cam.scaled((240, 320))
    assert half.intrinsics.fx == pytest.approx(300.0) and half.intrinsics.width == 320
    with pytest.raises(ConfigError, match="another aspect ratio"):
        cam.scaled((720, 1280))
