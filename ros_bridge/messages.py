"""What the node publishes, as plain fields (no ROS import): the live adapters turn these
into rospy / rclpy messages, the bag sink into rosbags messages, so a bag written offline
holds exactly what the node would have published.

Every output carries the colour image's header unchanged: the stamp as integer nanoseconds
(an ExactTime synchroniser downstream pairs the mask with its image) and the frame_id.
"""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefuse.cameras import Frame
from edgefuse.cameras.ros_messages import ImageData, info_from_intrinsics, intrinsics_of, scale_info, split_ns
from edgefuse.errors import ConfigError
from edgefuse.runtime.sinks import FrameOutput
from edgefuse.ros_bridge.config import MaskSize


class Topic(str, enum.Enum):
    """Output topics, relative to the node (`~mask` = /edgefuse/mask for a node named
    edgefuse), except the global /diagnostics."""

    MASK = "mask"                  # sensor_msgs/Image mono8, mask value v = classes[v] (0 = void)
    MASK_COLOR = "mask_color"      # sensor_msgs/Image rgb8, the bundle's palette (lazy)
    OVERLAY = "overlay"            # sensor_msgs/Image rgb8, colour blended with the mask (lazy)
    CAMERA_INFO = "camera_info"    # sensor_msgs/CameraInfo at network size (mask_size: network)
    FRAME_INFO = "frame_info"      # std_msgs/String, the run log's JSON record of the frame
    CLASSES = "classes"            # std_msgs/String JSON, latched
    DIAGNOSTICS = "/diagnostics"   # diagnostic_msgs/DiagnosticArray

    def name_under(self, prefix: str) -> str:
        """The full topic name for a node whose private namespace is `prefix` (e.g. /edgefuse)."""
        return self.value if self.value.startswith("/") else f"{prefix.rstrip('/')}/{self.value}"


#: The sensor_msgs/Image outputs (mask_color and overlay are computed only while subscribed).
IMAGES = (Topic.MASK, Topic.MASK_COLOR, Topic.OVERLAY)


@dataclass(frozen=True)
class Header:
    stamp_ns: int
    frame_id: str

    @property
    def sec_nanosec(self) -> tuple[int, int]:
        return split_ns(self.stamp_ns)


@dataclass
class ImageMessage:
    header: Header
    image: ImageData


@dataclass
class InfoMessage:
    header: Header
    info: dict[str, Any]        # width, height, distortion_model, d, k, r, p


@dataclass
class KeyValues:
    level: int                  # 0 OK, 1 WARN, 2 ERROR (diagnostic_msgs/DiagnosticStatus)
    name: str
    message: str
    hardware_id: str
    values: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class DiagnosticsMessage:
    stamp_ns: int
    status: list[KeyValues]


def header_of(frame: Frame) -> Header:
    """The colour image's header; a frame from a source without one gets its float time."""
    ns = frame.stamp_ns if frame.stamp_ns is not None else int(round(frame.timestamp * 1e9))
    return Header(int(ns), frame.frame_id)


def classes_json(classes: list[str] | tuple[str, ...], palette: np.ndarray) -> str:
    """The latched class table: mask value v is `classes[v]` (0 = void), coloured `palette[v]`."""
    return json.dumps({"classes": ["void", *classes], "palette": np.asarray(palette).tolist(),
                       "mask": "mono8 value v = classes[v]; 0 = void (never predicted)"})


def _nearest_index(src: int, dst: int) -> np.ndarray:
    """Source row/column of each destination pixel, nearest neighbour with pixel centres aligned."""
    return np.minimum(((np.arange(dst) + 0.5) * src / dst).astype(np.intp), src - 1)


@dataclass(frozen=True)
class Resize:
    """Nearest-neighbour resize of HxW or HxWxC uint8 arrays by row and column tables (None:
    same size). A colour image is gathered as one 3-byte item per pixel, a third of the time
    of a per-channel gather."""

    rows: np.ndarray | None = None
    cols: np.ndarray | None = None

    def __call__(self, a: np.ndarray) -> np.ndarray:
        if self.rows is None:
            return a
        if a.ndim == 3:
            items = np.ascontiguousarray(a).view(f"V{a.shape[2]}").reshape(a.shape[:2])
            out = np.take(np.take(items, self.rows, axis=0), self.cols, axis=1)
            return out.view(np.uint8).reshape(len(self.rows), len(self.cols), a.shape[2])
        return np.take(np.take(a, self.rows, axis=0), self.cols, axis=1)


class MaskEncoder:
    """Labels -> the mask, colour mask and overlay images (and camera_info at network size).

    Mask values are the labels + 1, the dataset convention `--save-masks` writes (0 void,
    class c -> c + 1); colours index the bundle's palette with the same value. Resizing back
    to the camera is nearest neighbour (no invented classes); colours are looked up at the
    network size and then resized, with index tables cached per size pair.
    """

    def __init__(self, palette: np.ndarray, mask_size: MaskSize = MaskSize.CAMERA, overlay_alpha: float = 0.5) -> None:
        palette = np.asarray(palette, dtype=np.uint8)
        if len(palette) > 256:
            raise ConfigError(f"{len(palette) - 1} classes do not fit a mono8 mask (at most 255)")
        # 256-entry table: mask value -> colour (values past the palette show as void).
        self.lut = np.repeat(palette[:1], 256, axis=0)
        self.lut[: len(palette)] = palette
        self.mask_size = MaskSize(mask_size)
        self.alpha = self.alpha_of(overlay_alpha)
        self._resize: dict[tuple[int, int, int, int], Resize] = {}

    @staticmethod
    def alpha_of(overlay_alpha: float) -> int:
        """overlay_alpha in [0, 1] as the integer blend's weight out of 256."""
        return int(round(float(overlay_alpha) * 256))

    def target_size(self, out: FrameOutput) -> tuple[int, int]:
        if self.mask_size is MaskSize.NETWORK or out.frame is None or out.frame.rgb.ndim != 3:
            return int(out.labels.shape[0]), int(out.labels.shape[1])
        return int(out.frame.rgb.shape[0]), int(out.frame.rgb.shape[1])

    def plan(self, out: FrameOutput) -> tuple[np.ndarray, Resize]:
        """(mask values at the network size, the resize to the output size)."""
        values = (np.asarray(out.labels).astype(np.int16) + 1).clip(0, 255).astype(np.uint8)
        h, w = self.target_size(out)
        sh, sw = values.shape
        if (h, w) == (sh, sw):
            return values, Resize()
        key = (sh, sw, h, w)
        if key not in self._resize:
            self._resize[key] = Resize(_nearest_index(sh, h), _nearest_index(sw, w))
        return values, self._resize[key]

    def background(self, out: FrameOutput, size: tuple[int, int]) -> np.ndarray:
        """The colour image the overlay blends onto, at the mask's size."""
        if out.frame is not None and tuple(out.frame.rgb.shape[:2]) == size:
            return out.frame.rgb
        return out.image

    def colors(self, values: np.ndarray, resize: Resize) -> np.ndarray:
        """HxWx3 colours at the output size for network-size mask values."""
        return resize(self.lut[values])

    def overlay(self, colors: np.ndarray, background: np.ndarray) -> np.ndarray:
        # Integer blend (x * (256 - a) + c * a) >> 8: a third of the float version's time.
        a = self.alpha
        return ((background.astype(np.uint16) * (256 - a) + colors.astype(np.uint16) * a) >> 8).astype(np.uint8)

    def camera_info(self, frame: Frame | None, size: tuple[int, int]) -> dict[str, Any] | None:
        """The colour camera_info scaled to `size` (None when the source gave no intrinsics)."""
        info = camera_info_of(frame)
        return None if info is None else scale_info(info, size)


def camera_info_of(frame: Frame | None) -> dict[str, Any] | None:
    """The frame's camera_info geometry: the message's own (distortion included) when it came
    from ROS and still describes the frame, else built from the frame's pinhole intrinsics
    (e.g. replaced by a calibration file)."""
    if frame is None:
        return None
    info = frame.meta.get("camera_info")
    if info is not None and (frame.intrinsics is None or intrinsics_of(info) == frame.intrinsics):
        return info
    return None if frame.intrinsics is None else info_from_intrinsics(frame.intrinsics)


def frame_info_json(record: dict[str, Any]) -> str:
    return json.dumps(record, allow_nan=False)
