"""`edgefuse run --save-bag OUT`: the node's outputs written to a bag, offline, through
rosbags (no ROS installation). The same sinks as the live node (outputs.py) write
/edgefuse/mask (mono8), /edgefuse/mask_color (rgb8) and /edgefuse/frame_info with each input
frame's header stamp and frame_id, logged at that stamp, so the output replays beside the
input in RViz or Foxglove. With `inputs=True` the colour (rgb8), depth (16UC1 mm) and
camera_info the pipeline saw are written too, under the input's topic names.

OUT ending in `.bag` is a ROS 1 bag; anything else a ROS 2 bag folder in the storage that
current ROS 2 records by default (MCAP since Iron; `sqlite3` on request).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.cameras.ros_messages import encode_image
from edgefuse.errors import ConfigError, EdgefuseError, require
from edgefuse.ros_bridge.config import MaskSize
from edgefuse.ros_bridge.messages import (DiagnosticsMessage, ImageMessage, InfoMessage, MaskEncoder, Topic,
                                          camera_info_of, header_of)
from edgefuse.ros_bridge.outputs import FrameInfoSink, TopicSink
from edgefuse.runtime.sinks import FrameOutput

PREFIX = "/edgefuse"     # the live node's private namespace under its default name
# Input topics for sources that are not ROS bags (realsense-ros ROS 1 / ROS 2 names).
DEFAULT_INPUTS = {True: ("/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw",
                         "/camera/color/camera_info"),
                  False: ("/camera/camera/color/image_raw", "/camera/camera/aligned_depth_to_color/image_raw",
                          "/camera/camera/color/camera_info")}
_TYPES = {ImageMessage: "sensor_msgs/msg/Image", InfoMessage: "sensor_msgs/msg/CameraInfo", str: "std_msgs/msg/String"}


class BagStorage(str, enum.Enum):
    MCAP = "mcap"          # rosbag2's default since Iron (rosbag2 0.19: "set MCAP as default plugin")
    SQLITE3 = "sqlite3"


def parse_storage(value: str | None) -> BagStorage:
    if value is None:
        return BagStorage.MCAP
    try:
        return BagStorage(value)
    except ValueError:
        raise ConfigError(f"--bag-storage {value!r}: choose {' or '.join(s.value for s in BagStorage)}") from None


class BagOutlet:
    """An Outlet (outputs.py) that writes rosbags messages; connections open on first use."""

    def __init__(self, path: str | Path, storage: BagStorage | None = None) -> None:
        require("rosbags", "rosbag", "bags are written with the pure-Python rosbags package")
        from rosbags.typesys import Stores, get_typestore

        self.path = Path(path).expanduser()
        self.ros1 = self.path.suffix == ".bag"
        if storage is not None and self.ros1:
            raise ConfigError(f"--bag-storage applies to ROS 2 bag folders; {self.path} is a ROS 1 .bag")
        if self.path.exists():
            raise EdgefuseError(f"--save-bag {self.path} exists; remove it or choose another name")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.ts = get_typestore(Stores.ROS1_NOETIC if self.ros1 else Stores.ROS2_JAZZY)
        if self.ros1:
            from rosbags.rosbag1 import Writer

            self.writer = Writer(self.path)
            self._serialize = self.ts.serialize_ros1
        else:
            from rosbags.rosbag2 import StoragePlugin, Writer

            plugin = {BagStorage.MCAP: StoragePlugin.MCAP, BagStorage.SQLITE3: StoragePlugin.SQLITE3}
            self.writer = Writer(self.path, version=Writer.VERSION_LATEST,
                                 storage_plugin=plugin[storage or BagStorage.MCAP])
            self._serialize = self.ts.serialize_cdr
        self.writer.open()
        self._conns: dict[str, Any] = {}
        self._seq = 0
        self._stamp = 0
        self.counts: dict[str, int] = {}

    # --- Outlet ---
    def publish(self, topic: Topic, message: Any) -> None:
        self.write(topic.name_under(PREFIX), message)

    def subscribed(self, topic: Topic) -> bool:
        return topic is Topic.MASK_COLOR      # the overlay is the colour image again: not stored

    def now_ns(self) -> None:
        return None                           # offline: no publishing delay to measure

    # --- writing ---
    def write(self, name: str, message: Any) -> None:
        """Log `message` on topic `name` at its header stamp (frame_info: the frame's mask's)."""
        if isinstance(message, DiagnosticsMessage):
            return
        msgtype = _TYPES[type(message)]
        if name not in self._conns:
            self._conns[name] = self.writer.add_connection(name, msgtype, typestore=self.ts)
        if not isinstance(message, str):
            self._stamp = message.header.stamp_ns
        self.writer.write(self._conns[name], int(self._stamp), self._serialize(self._message(message), msgtype))
        self.counts[name] = self.counts.get(name, 0) + 1

    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        t = self.ts.types
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        stamp = t["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec)
        if self.ros1:
            self._seq += 1
            return t["std_msgs/msg/Header"](seq=self._seq, stamp=stamp, frame_id=frame_id)
        return t["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)

    def _message(self, message: Any) -> Any:
        t = self.ts.types
        if isinstance(message, str):
            return t["std_msgs/msg/String"](data=message)
        header = self._header(message.header.stamp_ns, message.header.frame_id)
        if isinstance(message, ImageMessage):
            im = message.image
            return t["sensor_msgs/msg/Image"](header=header, height=im.height, width=im.width, encoding=im.encoding,
                                              is_bigendian=im.is_bigendian, step=im.step, data=im.data)
        i = message.info
        roi = t["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        arrays = {k: np.asarray(i[k], dtype=np.float64) for k in ("d", "k", "r", "p")}
        if self.ros1:   # ROS 1 spells the arrays D/K/R/P
            arrays = {k.upper(): v for k, v in arrays.items()}
        return t["sensor_msgs/msg/CameraInfo"](header=header, height=i["height"], width=i["width"],
                                               distortion_model=i["distortion_model"], binning_x=0, binning_y=0,
                                               roi=roi, **arrays)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class BagSink:
    """A runtime sink: one mask (and colour mask, frame_info) per frame into the bag.
    Written after the record is final, so frame_info holds every stage's latency."""

    final_record = True

    def __init__(self, path: str | Path, palette: np.ndarray, storage: str | None = None, inputs: bool = False,
                 mask_size: MaskSize = MaskSize.CAMERA) -> None:
        self.outlet = BagOutlet(path, parse_storage(storage) if storage is not None else None)
        self.inputs = inputs
        self._topics = TopicSink(MaskEncoder(palette, mask_size), self.outlet)
        self._info = FrameInfoSink(self.outlet)

    def write(self, out: FrameOutput) -> None:
        if self.inputs:
            self._write_inputs(out)
        self._topics.write(out)
        self._info.write(out)

    def _write_inputs(self, out: FrameOutput) -> None:
        frame = out.frame
        header = header_of(frame)
        color_t, depth_t, info_t = DEFAULT_INPUTS[self.outlet.ros1]
        color_t = frame.meta.get("color_topic") or color_t
        depth_t = frame.meta.get("depth_topic") or depth_t
        info_t = frame.meta.get("info_topic") or info_t
        self.outlet.write(color_t, ImageMessage(header, encode_image(frame.rgb, "rgb8")))
        if frame.depth is not None:
            depth = np.asarray(frame.depth)
            if depth.dtype != np.uint16:   # float depth (a fault-injected frame): 0 = no measurement
                depth = np.where(np.isfinite(depth) & (depth > 0), depth, 0).astype(np.uint16)
            self.outlet.write(depth_t, ImageMessage(header, encode_image(depth, "16UC1")))
        info = camera_info_of(frame)
        if info is not None:
            self.outlet.write(info_t, InfoMessage(header, info))

    def close(self) -> None:
        self.outlet.close()
