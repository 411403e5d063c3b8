"""sensor_msgs/Image fields <-> numpy (edgefuse/cameras/ros_messages.py): every encoding the
node and the bag source accept, the malformed cases with their causes, exact stamps."""

from __future__ import annotations

import array
from types import SimpleNamespace

import numpy as np
import pytest

from edgefuse.cameras.ros_messages import (ImageFormatError, check_same_size, decode_color, decode_depth,
                                           encode_image, header_of, info_fields, scale_info, stamp_ns)


def _msg(a: np.ndarray, encoding: str, step: int | None = None, pad: int = 0, bigendian: bool = False,
         kind=bytes):
    h = a.shape[0]
    rows = np.ascontiguousarray(a).reshape(h, -1).view(np.uint8)
    if pad:
        rows = np.concatenate([rows, np.full((h, pad), 7, np.uint8)], axis=1)
    data = {bytes: rows.tobytes(), "array": array.array("B", rows.tobytes()), "numpy": rows.reshape(-1)}[kind]
    return SimpleNamespace(height=h, width=a.shape[1], encoding=encoding, is_bigendian=int(bigendian),
                           step=rows.shape[1] if step is None else step, data=data)


RGB = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)


@pytest.mark.parametrize("kind", [bytes, "array", "numpy"])   # rospy, rclpy, rosbags
@pytest.mark.parametrize("encoding,channels", [("rgb8", RGB), ("bgr8", RGB[..., ::-1]),
                                               ("rgba8", np.dstack([RGB, np.full((5, 7), 9, np.uint8)])),
                                               ("bgra8", np.dstack([RGB[..., ::-1], np.full((5, 7), 9, np.uint8)]))])
def test_colour_encodings_decode_to_rgb(encoding, channels, kind):
    np.testing.assert_array_equal(decode_color(_msg(channels, encoding, kind=kind)), RGB)
    np.testing.assert_array_equal(decode_color(_msg(channels, encoding, pad=5, kind=kind)), RGB)   # row padding


def test_depth_encodings_to_millimetres():
    mm = np.array([[0, 1500, 65535], [3, 4, 5]], np.uint16)
    np.testing.assert_array_equal(decode_depth(_msg(mm, "16UC1")), mm)
    np.testing.assert_array_equal(decode_depth(_msg(mm.byteswap(), "16UC1", bigendian=True)), mm)
    metres = np.array([[np.nan, 1.5, np.inf], [-np.inf, 0.0034, 70.0]], np.float32)
    np.testing.assert_array_equal(decode_depth(_msg(metres, "32FC1")), [[0, 1500, 0], [0, 3, 65535]])


@pytest.mark.parametrize("msg,cause,words", [
    (_msg(RGB, "yuv422"), "encoding", "'yuv422' not supported"),
    (_msg(RGB, "rgb8", step=20), "bad_step", "step 20 is less than"),
    (SimpleNamespace(height=5, width=7, encoding="rgb8", is_bigendian=0, step=21, data=b"\0" * 100),
     "short_buffer", "holds 100 bytes, height*step = 5*21 = 105"),
    (SimpleNamespace(height=0, width=7, encoding="rgb8", is_bigendian=0, step=21, data=b""), "empty", "empty"),
])
def test_malformed_colour_names_the_cause(msg, cause, words):
    with pytest.raises(ImageFormatError) as err:
        decode_color(msg)
    assert err.value.cause == cause and words in str(err.value)


def test_depth_errors_and_size_mismatch():
    with pytest.raises(ImageFormatError, match="depth encoding 'mono8'"):
        decode_depth(_msg(np.zeros((2, 2), np.uint8), "mono8"))
    with pytest.raises(ImageFormatError) as err:
        check_same_size(RGB, np.zeros((4, 7), np.uint16))
    assert err.value.cause == "size_mismatch" and "align_depth" in str(err.value)


def test_encode_round_trips():
    labels = np.arange(35, dtype=np.uint8).reshape(5, 7)
    m = encode_image(labels, "mono8")
    assert (m.encoding, m.step, m.height, m.width) == ("mono8", 7, 5, 7)
    np.testing.assert_array_equal(m.data.reshape(5, 7), labels)
    c = encode_image(RGB, "rgb8")
    np.testing.assert_array_equal(decode_color(SimpleNamespace(**vars(c))), RGB)
    d = encode_image(np.array([[1, 65535]], np.uint16), "16UC1")
    np.testing.assert_array_equal(decode_depth(SimpleNamespace(**vars(d))), [[1, 65535]])
    with pytest.raises(ValueError, match="HxW"):
        encode_image(RGB, "mono8")


def test_stamps_are_exact_integers_for_both_spellings():
    ns = 1_700_000_000_123_456_789
    assert float(ns * 1e-9) * 1e9 != ns                      # why: float seconds lose the last digits
    ros2 = SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=1_700_000_000, nanosec=123_456_789),
                                                  frame_id="f"))
    ros1 = SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(secs=1_700_000_000, nsecs=123_456_789),
                                                  frame_id="f"))
    assert header_of(ros2) == header_of(ros1) == (ns, "f") and stamp_ns(ros1.header.stamp) == ns


def test_camera_info_fields_and_scaling():
    ros1 = SimpleNamespace(width=640, height=480, distortion_model="plumb_bob", D=[0.1] * 5,
                           K=[600.0, 0, 320, 0, 610, 240, 0, 0, 1], R=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                           P=[600.0, 0, 320, 0, 0, 610, 240, 0, 0, 0, 1, 0])
    info = info_fields(ros1)
    scaled = scale_info(info, (240, 320))
    assert scaled["k"] == [300.0, 0, 160.0, 0, 305.0, 120.0, 0, 0, 1]
    assert scaled["p"][:7] == [300.0, 0, 160.0, 0, 0, 305.0, 120.0] and scaled["d"] == [0.1] * 5
    assert (scaled["width"], scaled["height"]) == (320, 240)
