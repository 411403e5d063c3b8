"""Test data for the ROS node and the bag sink: RGB-D messages with exact nanosecond
stamps (a float of seconds would lose them) written to ROS 1 / ROS 2 bags with rosbags."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

H, W = 48, 64                          # camera size (the bundle is 64x128: resized both ways)
T0 = 1_700_000_000_123_456_789         # ns; float64 seconds would round the last digits
PERIOD = 33_333_337
FRAME_ID = "camera_color_optical_frame"
TOPICS = {"color": "/camera/color/image_raw", "depth": "/camera/aligned_depth_to_color/image_raw",
          "info": "/camera/color/camera_info"}


def stamp(i: int) -> int:
    return T0 + i * PERIOD


def rgb(i: int, h: int = H, w: int = W) -> np.ndarray:
    rng = np.random.default_rng(i)
    img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    img[..., 2] = 250          # blue channel: RGB order must survive bgr8
    return img


def depth_mm(i: int, h: int = H, w: int = W) -> np.ndarray:
    d = np.full((h, w), 1500 + 10 * i, np.uint16)
    d[0] = 0
    return d


def bag_messages(ts, i: int, ros1: bool) -> dict[str, object]:
    """Colour (rgb8), aligned depth (16UC1) and camera_info of frame i as rosbags messages."""
    t = ts.types
    sec, nsec = divmod(stamp(i), 1_000_000_000)

    def header():
        time = t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nsec)
        return t["std_msgs/msg/Header"](**({"seq": i} if ros1 else {}), stamp=time, frame_id=FRAME_ID)

    image = t["sensor_msgs/msg/Image"]
    color = image(header=header(), height=H, width=W, encoding="rgb8", is_bigendian=0, step=W * 3,
                  data=rgb(i).reshape(-1))
    depth = image(header=header(), height=H, width=W, encoding="16UC1", is_bigendian=0, step=W * 2,
                  data=depth_mm(i).view(np.uint8).reshape(-1))
    roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    arrays = {"d": np.array([0.1, -0.05, 0, 0, 0.01]), "k": np.array([50.0, 0, 32, 0, 51, 24, 0, 0, 1]),
              "r": np.eye(3).reshape(-1), "p": np.array([50.0, 0, 32, 0, 0, 51, 24, 0, 0, 0, 1, 0])}
    if ros1:
        arrays = {k.upper(): v for k, v in arrays.items()}
    info = t["sensor_msgs/msg/CameraInfo"](header=header(), height=H, width=W, distortion_model="plumb_bob",
                                           binning_x=0, binning_y=0, roi=roi, **arrays)
    return {"color": color, "depth": depth, "info": info}


def write_input_bag(path: Path, n: int, ros1: bool, storage: str = "sqlite3") -> None:
    """n frames; depth logged 1 ms after colour with the colour's stamp (realsense-ros)."""
    from rosbags.typesys import Stores, get_typestore

    types = {"color": "sensor_msgs/msg/Image", "depth": "sensor_msgs/msg/Image", "info": "sensor_msgs/msg/CameraInfo"}
    if ros1:
        from rosbags.rosbag1 import Writer

        ts = get_typestore(Stores.ROS1_NOETIC)
        writer, ser = Writer(path), ts.serialize_ros1
    else:
        from rosbags.rosbag2 import StoragePlugin, Writer

        ts = get_typestore(Stores.ROS2_HUMBLE)
        plugin = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}[storage]
        writer, ser = Writer(path, version=9, storage_plugin=plugin), ts.serialize_cdr
    with writer:
        conns = {k: writer.add_connection(TOPICS[k], types[k], typestore=ts) for k in TOPICS}
        for i in range(n):
            msgs = bag_messages(ts, i, ros1)
            for k, delay in (("info", 0), ("color", 0), ("depth", 1_000_000)):
                writer.write(conns[k], stamp(i) + delay, ser(msgs[k], types[k]))


def read_bag(path: Path) -> dict[str, list[tuple[int, object]]]:
    """topic -> [(log time ns, message)] of any bag."""
    from rosbags.highlevel import AnyReader
    from rosbags.typesys import Stores, get_typestore

    out: dict[str, list[tuple[int, object]]] = {}
    with AnyReader([path], default_typestore=get_typestore(Stores.LATEST)) as reader:
        for conn, t, raw in reader.messages():
            out.setdefault(conn.topic, []).append((t, reader.deserialize(raw, conn.msgtype)))
    return out


# --- message fields for the pure core (what rospy / rclpy messages expose) ---------------------
def _stamp_fields(stamp_ns: int, rospy_style: bool) -> SimpleNamespace:
    sec, nsec = divmod(stamp_ns, 1_000_000_000)
    return SimpleNamespace(secs=sec, nsecs=nsec) if rospy_style else SimpleNamespace(sec=sec, nanosec=nsec)


def image_msg(array: np.ndarray, encoding: str, stamp_ns: int, frame_id: str = FRAME_ID, step: int | None = None,
              data: bytes | None = None, rospy_style: bool = False) -> SimpleNamespace:
    """A sensor_msgs/Image as fields: `step` / `data` override the consistent ones (faults)."""
    a = np.ascontiguousarray(array)
    h, w = a.shape[:2]
    row = a.nbytes // h
    return SimpleNamespace(header=SimpleNamespace(stamp=_stamp_fields(stamp_ns, rospy_style), frame_id=frame_id),
                           height=h, width=w, encoding=encoding, is_bigendian=0, step=row if step is None else step,
                           data=a.tobytes() if data is None else data)


def info_msg(stamp_ns: int, h: int = H, w: int = W) -> SimpleNamespace:
    return SimpleNamespace(header=SimpleNamespace(stamp=_stamp_fields(stamp_ns, False), frame_id=FRAME_ID),
                           height=h, width=w, distortion_model="plumb_bob", d=[0.1, -0.05, 0, 0, 0.01],
                           k=[50.0, 0, 32, 0, 51, 24, 0, 0, 1], r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1],
                           p=[50.0, 0, 32, 0, 0, 51, 24, 0, 0, 0, 1, 0])


class RecordingTransport:
    """The core's transport as a recorder: what a ROS adapter would publish and log."""

    def __init__(self, subscribed=()) -> None:
        self.sent: list[tuple[object, object]] = []
        self.logs: list[tuple[str, str]] = []
        self.subs = set(subscribed)

    def publish(self, topic, message) -> None:
        self.sent.append((topic, message))

    def subscribed(self, topic) -> bool:
        return topic in self.subs

    def now_ns(self) -> int:
        return time.time_ns()

    def log(self, level: str, text: str) -> None:
        self.logs.append((level, text))

    def on(self, topic) -> list:
        return [m for t, m in self.sent if t == topic]
