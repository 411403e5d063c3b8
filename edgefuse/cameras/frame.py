"""The frame every source yields, and the errors a source raises (docs/architecture.md "Cameras").

rgb uint8 HxWx3 in RGB order, depth uint16 HxW in millimetres aligned to the colour image (0 =
no measurement; None when the depth stream gave nothing), a timestamp in seconds and the
colour camera's intrinsics. This module imports nothing else from `edgefuse.cameras`, so
every other camera module (sources, calibration, registration, health) can build on it
without a circle.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefuse.config import from_dict
from edgefuse.errors import EdgefuseError


# --- errors -----------------------------------------------------------------------------

class FrameError(EdgefuseError):
    """A frame source failed in a way the user can act on (unplugged camera, bad file)."""


class SourceDisconnected(FrameError):
    """The device stopped delivering frames (unplugged, USB reset, driver timeout).

    Live sources raise it from their grab function; `LiveCapture` catches it and
    reconnects with backoff, so it reaches the caller only when retrying gives up.
    """


class FrameDecodeError(FrameError):
    """One frame could not be decoded (corrupt PNG, bad message encoding)."""


# --- the frame ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics of the colour stream (depth is aligned to it), in pixels."""

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Intrinsics":
        """From the dataset meta.jsonl / SynthFrame form {"fx","fy","cx","cy","width","height"}."""
        return from_dict(cls, {k: data[k] for k in ("fx", "fy", "cx", "cy", "width", "height") if k in data},
                         where="intrinsics")

    def to_dict(self) -> dict[str, float | int]:
        return dataclasses.asdict(self)

    def scaled(self, size: tuple[int, int]) -> "Intrinsics":
        """The intrinsics of the image resized to `size` (H, W)."""
        h, w = size
        sx, sy = w / self.width, h / self.height
        return Intrinsics(self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy, int(w), int(h))


@dataclass
class Frame:
    """One aligned RGB-D frame.

    `rgb`: HxWx3 uint8, RGB order. `depth`: HxW uint16 millimetres aligned to `rgb`, 0 = no
    measurement, None when the source delivered no depth for this frame. `timestamp`:
    seconds (device clock for cameras and recordings, so differences are meaningful).
    `intrinsics`: the colour camera's, None when the source does not know them (a plain
    image folder, a bag without camera_info). `index`: the source's frame counter (for a
    live camera it counts captured frames, so dropped frames show as gaps).
    `error`: set instead of raising when the frame could not be decoded; `validate_frame`
    turns it into a health verdict so the runtime skips the frame and goes on.
    `meta`: source-specific extras (file stem, serial number, message topics...).
    `stamp_ns` / `frame_id`: the ROS header of the colour image, when the frame came from
    one (ROS bag, live node): integer nanoseconds, so outputs carry the input's stamp exactly
    (a float of seconds since 1970 keeps only ~0.2 us); `timestamp` stays the float for
    everything else.
    """

    rgb: np.ndarray
    depth: np.ndarray | None
    timestamp: float
    intrinsics: Intrinsics | None = None
    index: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    stamp_ns: int | None = None
    frame_id: str = ""

    @property
    def size(self) -> tuple[int, int]:
        """(H, W) of the colour image."""
        return int(self.rgb.shape[0]), int(self.rgb.shape[1])
