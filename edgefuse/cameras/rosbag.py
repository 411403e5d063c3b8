"""`rosbag:FILE`: RGB-D frames from a ROS 1 `.bag` or a ROS 2 bag, read with `rosbags` (pure Python).

No ROS installation is needed. Topics default to the realsense-ros conventions
(docs/ros.md "Parameters"): ROS 2 `/camera/camera/color/image_raw` (rgb8) and
`/camera/camera/aligned_depth_to_color/image_raw` (16UC1 millimetres) with `camera_info`
beside the colour image; ROS 1 drops the doubled `camera`. Colour and depth are paired by
nearest header stamp (`pairing.py`); every colour image gives one frame, nothing dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgefuse.cameras.base import Frame, FrameSource, Intrinsics, SourceOptions, SourceSpec
from edgefuse.cameras.pairing import NearestPairer
from edgefuse.cameras.ros_messages import decode_color, decode_depth, info_fields, intrinsics_of, stamp_ns
from edgefuse.errors import ConfigError, EdgefuseError, require

# (colour, aligned depth) topic pairs tried in order when none is given.
DEFAULT_TOPICS = (
    ("/camera/camera/color/image_raw", "/camera/camera/aligned_depth_to_color/image_raw"),  # ROS 2 wrapper
    ("/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw"),                # ROS 1 wrapper
)
IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/Image")
INFO_TYPES = ("sensor_msgs/msg/CameraInfo", "sensor_msgs/CameraInfo")

@dataclass
class RosbagOptions(SourceOptions):
    """color_topic / depth_topic / info_topic: override the realsense-ros defaults (info
    defaults to camera_info beside the colour topic); max_gap: seconds beyond which colour
    and depth are not paired (the frame then has no depth)."""

    color_topic: str | None = None
    depth_topic: str | None = None
    info_topic: str | None = None
    max_gap: float = 0.1


def _stamp_ns(msg: Any, log_time_ns: int) -> int:
    """Header stamp in integer ns (sensor time); the log time when the header is empty."""
    st = getattr(getattr(msg, "header", None), "stamp", None)
    ns = stamp_ns(st) if st is not None else 0
    return ns if ns else int(log_time_ns)


class RosbagSource(FrameSource):
    Options = RosbagOptions
    read_ahead = 4   # message decoding off the inference loop (base.FrameSource)

    def __init__(self, path: str | Path, options: RosbagOptions | None = None) -> None:
        opts = options or RosbagOptions()
        if opts.max_gap <= 0:
            raise ConfigError(f"rosbag camera: max_gap must be > 0 seconds, got {opts.max_gap}")
        path = Path(path).expanduser()
        super().__init__(f"rosbag:{path}", frames=opts.frames, realtime=opts.realtime)
        self.path = path
        self.options = opts
        self._reader: Any = None

    @classmethod
    def from_spec(cls, spec: SourceSpec, options: RosbagOptions) -> "RosbagSource":
        return cls(spec.target or "", options)

    def _bag_path(self) -> Path:
        p = self.path
        if not p.exists():
            raise EdgefuseError(f"rosbag camera: {p} not found")
        if p.is_file() and p.suffix in (".db3", ".mcap"):
            if (p.parent / "metadata.yaml").is_file():
                return p.parent  # a ROS 2 bag is its folder
            raise EdgefuseError(f"rosbag camera: {p} has no metadata.yaml beside it, so it is not a ROS 2 bag; "
                                f"a RealSense SDK recording (.db3) plays with bag:{p}")
        return p

    def _open(self) -> None:
        require("rosbags", "rosbag", "ROS bags are read with the pure-Python rosbags package")
        from rosbags.highlevel import AnyReader
        from rosbags.typesys import Stores, get_typestore

        try:
            self._reader = AnyReader([self._bag_path()], default_typestore=get_typestore(Stores.LATEST))
            self._reader.open()
        except EdgefuseError:
            raise
        except Exception as exc:  # rosbags raises its own error types per format
            raise EdgefuseError(f"rosbag camera: cannot read {self.path} as a ROS 1 or ROS 2 bag: {exc}") from exc
        topics = {c.topic: c.msgtype for c in self._reader.connections}
        self.color_topic, self.depth_topic = self._pick_topics(topics)
        self.info_topic = self.options.info_topic or self.color_topic.rsplit("/", 1)[0] + "/camera_info"
        if self.options.info_topic is not None and self.info_topic not in topics:
            raise EdgefuseError(f"rosbag camera: topic {self.info_topic} not in {self.path}")

    def _pick_topics(self, topics: dict[str, str]) -> tuple[str, str | None]:
        images = sorted(t for t, ty in topics.items() if ty in IMAGE_TYPES)
        o = self.options
        if o.color_topic is not None or o.depth_topic is not None:
            for t in (o.color_topic, o.depth_topic):
                if t is not None and t not in images:
                    raise EdgefuseError(f"rosbag camera: no sensor_msgs/Image topic {t} in {self.path}; "
                                        f"image topics: {', '.join(images) or 'none'}")
            if o.color_topic is None:
                raise ConfigError("rosbag camera: depth_topic given without color_topic")
            return o.color_topic, o.depth_topic
        for color, depth in DEFAULT_TOPICS:
            if color in images:
                if depth not in images:
                    raise EdgefuseError(
                        f"rosbag camera: {self.path} has {color} but no aligned depth ({depth}); record with "
                        f"align_depth.enable:=true, or pass depth_topic= an aligned depth image topic "
                        f"(image topics: {', '.join(images)})")
                return color, depth
        raise EdgefuseError(f"rosbag camera: no RealSense colour topic ({', '.join(c for c, _ in DEFAULT_TOPICS)}) in "
                            f"{self.path}; pass color_topic= and depth_topic= (image topics: {', '.join(images) or 'none'})")

    def _close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __len__(self) -> int:
        if self._reader is None:
            self.open()
        n = sum(c.msgcount for c in self._reader.connections if c.topic == self.color_topic)
        return n if self.max_frames is None else min(n, self.max_frames)

    def _frames(self) -> Iterator[Frame]:
        reader = self._reader
        wanted = {self.color_topic, self.depth_topic, self.info_topic} - {None}
        conns = [c for c in reader.connections if c.topic in wanted]
        # Pairing runs on float seconds (differences only); the items carry the exact
        # integer stamp, which the frame keeps (issue 12: outputs carry the input's stamp).
        pairer: NearestPairer = NearestPairer(max_gap=self.options.max_gap)
        # camera_info may be logged after the first images: take the first one up front.
        info: dict[str, Any] | None = None
        for conn, _, raw in reader.messages(connections=[c for c in conns if c.topic == self.info_topic]):
            info = info_fields(reader.deserialize(raw, conn.msgtype))
            break
        index = 0

        def emit(pairs) -> Iterator[Frame]:
            # `realtime` pacing by the frame timestamps is FrameSource's (consumer side).
            nonlocal index
            for t, (ns, color), depth in pairs:
                yield self._to_frame(ns, color, depth, info, index)
                index += 1

        for conn, log_ns, raw in reader.messages(connections=conns):
            try:
                msg = reader.deserialize(raw, conn.msgtype)
            except Exception as exc:  # a corrupt message is one bad frame, not the end of the bag
                if conn.topic == self.color_topic:
                    yield from emit([(log_ns * 1e-9, (int(log_ns), exc), None)])
                continue
            if conn.topic == self.info_topic:
                info = info_fields(msg)
                continue
            ns = _stamp_ns(msg, log_ns)
            if conn.topic == self.color_topic:
                yield from emit(pairer.add_color(ns * 1e-9, (ns, msg)))
            else:
                yield from emit(pairer.add_depth(ns * 1e-9, msg))
        yield from emit(pairer.flush())

    def _to_frame(self, ns: int, color: Any, depth: Any, info: dict[str, Any] | None, index: int) -> Frame:
        meta: dict[str, Any] = {"source": self.name, "color_topic": self.color_topic, "depth_topic": self.depth_topic,
                                "info_topic": self.info_topic}
        intrinsics: Intrinsics | None = None
        if info is not None:
            meta["camera_info"] = info
            intrinsics = intrinsics_of(info)
        frame_id = "" if isinstance(color, Exception) else str(color.header.frame_id)
        common = dict(timestamp=ns * 1e-9, stamp_ns=ns, frame_id=frame_id, intrinsics=intrinsics, index=index,
                      meta=meta)
        try:
            if isinstance(color, Exception):
                raise color
            rgb = decode_color(color)
        except Exception as exc:
            return Frame(rgb=np.zeros((0, 0, 3), np.uint8), depth=None, error=f"colour message: {exc}", **common)
        depth_mm = None
        if depth is not None:
            try:
                depth_mm = decode_depth(depth)
            except Exception as exc:
                meta["depth_error"] = str(exc)
        elif self.depth_topic is not None:
            meta["depth_missing"] = f"no depth within {self.options.max_gap:g} s"
        return Frame(rgb=rgb, depth=depth_mm, **common)
