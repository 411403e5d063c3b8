"""ROS message fields <-> numpy: sensor_msgs/Image decoding and encoding, header stamps as
integer nanoseconds, camera_info intrinsics.

One codec for every ROS path in edgefuse: the bag source (`rosbag.py`, rosbags messages),
the live node (`edgefuse.ros_bridge`, rospy / rclpy messages) and the bag sink. It imports
no ROS library: it reads message *fields* (`height`, `width`, `encoding`, `step`, `data`,
`header.stamp`), which every client library (and rosbags) spells the same way, except the
stamp (`secs`/`nsecs` in rospy, `sec`/`nanosec` in rclpy and rosbags).

Malformed messages raise `ImageFormatError`, whose `cause` is a short key ("encoding",
"short_buffer", ...) so a node can count and throttle warnings per cause; the message says
what was wrong and what is expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefuse.cameras.frame import FrameDecodeError, Intrinsics

# colour encoding -> (channels, channel order to RGB)
COLOR_ENCODINGS: dict[str, tuple[int, tuple[int, int, int]]] = {
    "rgb8": (3, (0, 1, 2)), "bgr8": (3, (2, 1, 0)), "rgba8": (4, (0, 1, 2)), "bgra8": (4, (2, 1, 0)),
}
# depth encoding -> element type (REP 118: 16UC1 millimetres, 32FC1 metres)
DEPTH_ENCODINGS: dict[str, type] = {"16UC1": np.uint16, "mono16": np.uint16, "32FC1": np.float32}
# outgoing encoding -> (channels, dtype) of the array it encodes
OUT_ENCODINGS: dict[str, tuple[int, type]] = {"mono8": (1, np.uint8), "rgb8": (3, np.uint8), "16UC1": (1, np.uint16)}


class ImageFormatError(FrameDecodeError):
    """A sensor_msgs/Image that cannot be decoded. `cause`: encoding, empty, bad_step,
    short_buffer or size_mismatch (for counting per cause)."""

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


@dataclass
class ImageData:
    """The fields of a sensor_msgs/Image except the header. `data` is a contiguous 1-D
    uint8 array (adapters turn it into bytes / array.array as their library wants)."""

    height: int
    width: int
    encoding: str
    step: int
    data: np.ndarray
    is_bigendian: int = 0


# --- stamps ---------------------------------------------------------------------------------------
def stamp_ns(stamp: Any) -> int:
    """A header stamp (rospy `secs`/`nsecs`, rclpy / rosbags `sec`/`nanosec`) as integer
    nanoseconds: exact, unlike a float of seconds since 1970 (which keeps ~0.2 us)."""
    sec = getattr(stamp, "sec", None)
    if sec is None:
        sec = getattr(stamp, "secs", 0)
    nsec = getattr(stamp, "nanosec", None)
    if nsec is None:
        nsec = getattr(stamp, "nsecs", 0)
    return int(sec) * 1_000_000_000 + int(nsec)


def split_ns(ns: int) -> tuple[int, int]:
    """Integer nanoseconds -> (sec, nanosec) as a header stamp holds them."""
    return divmod(int(ns), 1_000_000_000)


def header_of(msg: Any) -> tuple[int, str]:
    """(stamp in ns, frame_id) of a message with a std_msgs/Header."""
    header = msg.header
    return stamp_ns(header.stamp), str(header.frame_id)


# --- decoding ------------------------------------------------------------------------------------
def _buffer(data: Any) -> np.ndarray:
    """The message's data as a flat uint8 array, without a copy where the library allows
    (bytes in rospy, array.array in rclpy, numpy in rosbags)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    if isinstance(data, (list, tuple)):
        return np.asarray(data, dtype=np.uint8)
    return np.frombuffer(data, dtype=np.uint8)


def _rows(msg: Any, bytes_per_pixel: int, kind: str) -> np.ndarray:
    """The image's rows as a (height, width * bytes_per_pixel) uint8 view, after checking
    the geometry fields against the buffer."""
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h <= 0 or w <= 0:
        raise ImageFormatError("empty", f"{kind} image is empty ({w}x{h})")
    row = w * bytes_per_pixel
    if step < row:
        raise ImageFormatError("bad_step", f"{kind} image step {step} is less than width*bytes per pixel "
                                           f"= {w}*{bytes_per_pixel} = {row}")
    buf = _buffer(msg.data)
    if buf.size < h * step:
        raise ImageFormatError("short_buffer", f"{kind} image buffer holds {buf.size} bytes, height*step = "
                                               f"{h}*{step} = {h * step} expected (truncated message?)")
    rows = buf[: h * step].reshape(h, step)
    return rows if step == row else rows[:, :row]


def decode_color(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (rgb8/bgr8/rgba8/bgra8) -> HxWx3 uint8 RGB. rgb8 with no row
    padding is a view of the message buffer (read-only; no copy)."""
    enc = msg.encoding
    if enc not in COLOR_ENCODINGS:
        raise ImageFormatError("encoding", f"colour encoding {enc!r} not supported "
                                           f"(use {', '.join(COLOR_ENCODINGS)})")
    ch, order = COLOR_ENCODINGS[enc]
    img = _rows(msg, ch, "colour").reshape(int(msg.height), int(msg.width), ch)
    if order == (0, 1, 2) and ch == 3:
        return np.ascontiguousarray(img)   # a no-op unless rows were padded
    return np.ascontiguousarray(img[..., list(order)])


def decode_depth(msg: Any) -> np.ndarray:
    """sensor_msgs/Image (16UC1/mono16 mm, 32FC1 metres) -> HxW uint16 mm, 0 = no
    measurement (REP 118: NaN and +-Inf in float depth mean no reading)."""
    enc = msg.encoding
    if enc not in DEPTH_ENCODINGS:
        raise ImageFormatError("encoding", f"depth encoding {enc!r} not supported "
                                           f"(use {', '.join(DEPTH_ENCODINGS)})")
    dtype = np.dtype(DEPTH_ENCODINGS[enc]).newbyteorder(">" if msg.is_bigendian else "<")
    rows = _rows(msg, dtype.itemsize, "depth")
    img = np.ascontiguousarray(rows).view(dtype).reshape(int(msg.height), int(msg.width))
    if enc == "32FC1":
        mm = np.nan_to_num(img.astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0) * 1000.0
        return np.clip(np.rint(mm), 0, np.iinfo(np.uint16).max).astype(np.uint16)
    return img.astype(np.uint16, copy=False)


def check_same_size(rgb: np.ndarray, depth: np.ndarray) -> None:
    """Aligned depth must have the colour image's size (else it is not aligned to it)."""
    if depth.shape[:2] != rgb.shape[:2]:
        raise ImageFormatError("size_mismatch", f"depth {depth.shape[1]}x{depth.shape[0]} does not match colour "
                                                f"{rgb.shape[1]}x{rgb.shape[0]}; subscribe to depth aligned to "
                                                "colour (realsense-ros: align_depth.enable:=true)")


# --- encoding ------------------------------------------------------------------------------------
def encode_image(array: np.ndarray, encoding: str) -> ImageData:
    """HxW / HxWx3 array -> Image fields (mono8 labels, rgb8 colour, 16UC1 depth; little-endian,
    no row padding)."""
    if encoding not in OUT_ENCODINGS:
        raise ValueError(f"cannot encode {encoding!r}; encodings: {', '.join(OUT_ENCODINGS)}")
    ch, dtype = OUT_ENCODINGS[encoding]
    a = np.asarray(array)
    if a.dtype != dtype or a.ndim != (2 if ch == 1 else 3) or (ch > 1 and a.shape[2] != ch):
        raise ValueError(f"{encoding} needs an HxW{'' if ch == 1 else f'x{ch}'} {np.dtype(dtype).name} array, "
                         f"got {a.shape} {a.dtype}")
    a = np.ascontiguousarray(a.astype(a.dtype.newbyteorder("<"), copy=False))
    h, w = a.shape[:2]
    return ImageData(h, w, encoding, w * ch * a.itemsize, a.reshape(-1).view(np.uint8))


# --- camera_info -----------------------------------------------------------------------------------
def info_fields(msg: Any) -> dict[str, Any]:
    """The geometry of a sensor_msgs/CameraInfo as plain values (ROS 1 spells the arrays
    D/K/R/P, ROS 2 d/k/r/p)."""
    def arr(lower: str) -> list[float]:
        value = getattr(msg, lower, None)
        if value is None:
            value = getattr(msg, lower.upper())
        return [float(v) for v in value]

    return {"width": int(msg.width), "height": int(msg.height),
            "distortion_model": str(msg.distortion_model), "d": arr("d"), "k": arr("k"), "r": arr("r"),
            "p": arr("p")}


def intrinsics_of(info: dict[str, Any]) -> Intrinsics:
    k = info["k"]
    return Intrinsics(k[0], k[4], k[2], k[5], int(info["width"]), int(info["height"]))


def scale_info(info: dict[str, Any], size: tuple[int, int]) -> dict[str, Any]:
    """camera_info of the image resized to `size` (H, W): K and P rows scaled like
    image_proc's resize does (fx, cx, Tx by the width ratio, fy, cy by the height ratio)."""
    h, w = size
    sx, sy = w / info["width"], h / info["height"]
    k, p = list(info["k"]), list(info["p"])
    for i in (0, 2):
        k[i] *= sx
    for i in (4, 5):
        k[i] *= sy
    if len(p) == 12:
        for i in (0, 2, 3):
            p[i] *= sx
        for i in (5, 6, 7):
            p[i] *= sy
    return {**info, "width": int(w), "height": int(h), "k": k, "p": p}


def info_from_intrinsics(intr: Intrinsics) -> dict[str, Any]:
    """camera_info geometry for a source that only knows pinhole intrinsics (no distortion)."""
    k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    return {"width": intr.width, "height": intr.height, "distortion_model": "plumb_bob", "d": [0.0] * 5,
            "k": k, "r": [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            "p": [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]}
