"""rosbag:FILE - ROS 2 and ROS 1 bags written with rosbags, played back as aligned frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rosbags  # noqa: F401 - a dev extra (make test installs it): missing, this fails

from rosbags.typesys import Stores, get_typestore  # noqa: E402

from edgefuse.cameras import open_source, validate_frame  # noqa: E402
from edgefuse.errors import EdgefuseError  # noqa: E402

H, W = 24, 32
TS = get_typestore(Stores.ROS2_HUMBLE)
T1 = get_typestore(Stores.ROS1_NOETIC)


def _rgb(i: int) -> np.ndarray:
    img = np.zeros((H, W, 3), np.uint8)
    img[..., 0] = 10 * i
    img[..., 2] = 250  # blue channel: RGB order must survive bgr8 decoding
    return img


def _depth(i: int) -> np.ndarray:
    d = np.full((H, W), 1500 + i, np.uint16)
    d[0, :] = 0
    return d


def _messages(ts, i: int, t_ns: int, ros1: bool, color_encoding: str = "rgb8"):
    m = ts.types
    Header, Time = m["std_msgs/msg/Header"], m["builtin_interfaces/msg/Time"]
    Image, Info = m["sensor_msgs/msg/Image"], m["sensor_msgs/msg/CameraInfo"]
    sec, nsec = divmod(t_ns, 1_000_000_000)
    hdr = (lambda: Header(seq=i, stamp=Time(sec=sec, nanosec=nsec), frame_id="cam")) if ros1 else \
        (lambda: Header(stamp=Time(sec=sec, nanosec=nsec), frame_id="cam"))
    rgb = _rgb(i)[..., ::-1] if color_encoding == "bgr8" else _rgb(i)
    color = Image(header=hdr(), height=H, width=W, encoding=color_encoding, is_bigendian=0, step=W * 3,
                  data=np.ascontiguousarray(rgb).reshape(-1))
    depth = Image(header=hdr(), height=H, width=W, encoding="16UC1", is_bigendian=0, step=W * 2,
                  data=_depth(i).view(np.uint8).reshape(-1))
    roi = m["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    k = np.array([30.0, 0, 16.0, 0, 31.0, 12.0, 0, 0, 1])
    kw = dict(header=hdr(), height=H, width=W, distortion_model="plumb_bob", binning_x=0, binning_y=0, roi=roi)
    if ros1:
        info = Info(D=np.zeros(5), K=k, R=np.eye(3).reshape(-1), P=np.zeros(12), **kw)
    else:
        info = Info(d=np.zeros(5), k=k, r=np.eye(3).reshape(-1), p=np.zeros(12), **kw)
    return color, depth, info


def write_bag(path: Path, n: int, ros1: bool, prefix: str, skip_depth: set[int] = frozenset(),
              color_encoding: str = "rgb8") -> None:
    topics = {"color": f"{prefix}/color/image_raw", "depth": f"{prefix}/aligned_depth_to_color/image_raw",
              "info": f"{prefix}/color/camera_info"}
    types = {"color": "sensor_msgs/msg/Image", "depth": "sensor_msgs/msg/Image", "info": "sensor_msgs/msg/CameraInfo"}
    if ros1:
        from rosbags.rosbag1 import Writer
        ts, writer, ser = T1, Writer(path), T1.serialize_ros1
    else:
        from rosbags.rosbag2 import Writer
        ts, writer, ser = TS, Writer(path, version=9), TS.serialize_cdr
    with writer:
        conns = {k: writer.add_connection(topics[k], types[k], typestore=ts) for k in topics}
        for i in range(n):
            t = 5_000_000_000 + i * 33_333_333
            color, depth, info = _messages(ts, i, t, ros1, color_encoding)
            # Depth is logged 2 ms after colour with a stamp 1 ms later: pairing is by nearest stamp.
            writer.write(conns["info"], t, ser(info, types["info"]))
            writer.write(conns["color"], t, ser(color, types["color"]))
            if i not in skip_depth:
                depth.header.stamp.nanosec += 1_000_000
                writer.write(conns["depth"], t + 2_000_000, ser(depth, types["depth"]))


def _check_frames(frames, n):
    assert [f.index for f in frames] == list(range(n))
    for i, f in enumerate(frames):
        assert f.error is None
        np.testing.assert_array_equal(f.rgb, _rgb(i))
        np.testing.assert_array_equal(f.depth, _depth(i))
        assert f.intrinsics is not None and (f.intrinsics.fx, f.intrinsics.cy) == (30.0, 12.0)
    ts = [f.timestamp for f in frames]
    assert ts[0] == pytest.approx(5.0) and all(b > a for a, b in zip(ts, ts[1:]))


def test_ros2_bag_default_topics(tmp_path):
    write_bag(tmp_path / "ros2", 6, ros1=False, prefix="/camera/camera")
    with open_source(f"rosbag:{tmp_path / 'ros2'}") as src:
        assert len(src) == 6
        frames = list(src)
    _check_frames(frames, 6)


def test_ros1_bag_default_topics(tmp_path):
    write_bag(tmp_path / "r1.bag", 5, ros1=True, prefix="/camera")
    with open_source(f"rosbag:{tmp_path / 'r1.bag'}") as src:
        frames = list(src)
    _check_frames(frames, 5)


def test_custom_topics_bgr_and_missing_depth(tmp_path):
    write_bag(tmp_path / "b", 6, ros1=False, prefix="/robot/head", skip_depth={2, 3, 4},
              color_encoding="bgr8")
    with pytest.raises(EdgefuseError, match="color_topic"):
        with open_source(f"rosbag:{tmp_path / 'b'}"):
            pass
    with open_source(f"rosbag:{tmp_path / 'b'}", color_topic="/robot/head/color/image_raw",
                     depth_topic="/robot/head/aligned_depth_to_color/image_raw", max_gap=0.04) as src:
        frames = list(src)
    assert len(frames) == 6  # every colour image gives a frame
    np.testing.assert_array_equal(frames[0].rgb, _rgb(0))
    # Frame 3's nearest depth is >= 2 periods away: no depth, and the health check says so.
    assert frames[3].depth is None and not validate_frame(frames[3]).depth_ok
    assert frames[5].depth is not None and validate_frame(frames[5]).depth_ok


def test_bad_bag_path_errors(tmp_path):
    with pytest.raises(EdgefuseError, match="not found"):
        with open_source(f"rosbag:{tmp_path / 'nope'}"):
            pass
    (tmp_path / "rec.db3").write_bytes(b"")
    with pytest.raises(EdgefuseError, match="bag:"):
        with open_source(f"rosbag:{tmp_path / 'rec.db3'}"):
            pass
