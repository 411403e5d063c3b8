"""pyrealsense2 frame conversion shared by the live camera and the recording player.

Only imported by `realsense.py` and `bag.py`, which have already imported pyrealsense2;
the `rs` module is passed in so this file has no import of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefuse.cameras.frame import Frame, FrameError, Intrinsics

# Colour formats we can turn into RGB without a decoder: name -> channel selection.
_COLOR_FORMATS = {"rgb8": (0, 1, 2), "bgr8": (2, 1, 0), "rgba8": (0, 1, 2), "bgra8": (2, 1, 0)}


def intrinsics_of(profile: Any) -> Intrinsics:
    """Intrinsics of a (colour) video stream profile."""
    i = profile.as_video_stream_profile().get_intrinsics()
    return Intrinsics(float(i.fx), float(i.fy), float(i.ppx), float(i.ppy), int(i.width), int(i.height))


def color_to_rgb(frame: Any) -> np.ndarray:
    """A colour video frame as an HxWx3 uint8 RGB array (a copy: the SDK recycles buffers)."""
    fmt = frame.get_profile().format().name
    if fmt not in _COLOR_FORMATS:
        raise FrameError(f"colour stream format {fmt!r} is not supported; record or stream colour as "
                         f"{', '.join(_COLOR_FORMATS)}")
    data = np.asanyarray(frame.get_data())
    return np.ascontiguousarray(data[..., list(_COLOR_FORMATS[fmt])])


def depth_to_mm(raw: np.ndarray, depth_scale: float) -> np.ndarray:
    """z16 depth units -> uint16 millimetres (mm = raw * depth_scale[m] * 1000); 0 stays 0.

    D400 cameras default to 1 mm units (scale 0.001, a plain copy); others (L515: 0.25 mm,
    a D400 in high-accuracy mode: 0.1 mm) are rescaled and rounded.
    """
    factor = float(depth_scale) * 1000.0
    if abs(factor - 1.0) < 1e-6:  # the SDK stores 0.001 as float32 (0.0010000000475)
        return np.array(raw, dtype=np.uint16, copy=True)
    mm = np.rint(raw.astype(np.float64) * factor)
    return np.clip(mm, 0, np.iinfo(np.uint16).max).astype(np.uint16)


def frameset_to_frame(frameset: Any, depth_scale: float, intrinsics: Intrinsics, index: int,
                      meta: dict[str, Any]) -> Frame:
    """An aligned frameset -> Frame; a missing depth frame gives depth=None."""
    color = frameset.get_color_frame()
    if not color:
        raise FrameError("frameset without a colour frame")
    depth = frameset.get_depth_frame()
    depth_mm = depth_to_mm(np.asanyarray(depth.get_data()), depth_scale) if depth else None
    meta = dict(meta, frame_number=int(color.get_frame_number()))
    return Frame(rgb=color_to_rgb(color), depth=depth_mm, timestamp=float(color.get_timestamp()) / 1000.0,
                 intrinsics=intrinsics, index=index, meta=meta)
