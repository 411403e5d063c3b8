"""From a camera Frame to the stem's input tensors, applying the bad-frame policy.

The policy (issue 5, "Faults"): a frame whose colour image cannot be used (decode error,
malformed rgb) is skipped and logged; a frame of the wrong size is resized to the bundle's
input size (bilinear colour, nearest-neighbour depth, so no invented depth values);
NaN / negative depth counts as "no measurement" (0); missing or malformed depth becomes all
zeros, and the path policy then routes the frame to the path relying least on depth. Every
such step is named in `events`, which the per-frame record carries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgefuse.cameras import Frame, FrameHealth, FrameIssue


@dataclass
class Prepared:
    rgb: np.ndarray            # float32 1x3xHxW, 0..255
    depth: np.ndarray          # float32 1x1xHxW, mm, 0 = invalid
    image: np.ndarray          # uint8 HxWx3 at the input size (for overlays)
    depth_valid_fraction: float
    events: list[str] = field(default_factory=list)


def _resize(img: np.ndarray, size: tuple[int, int], nearest: bool) -> np.ndarray:
    from PIL import Image

    h, w = size
    resample = Image.NEAREST if nearest else Image.BILINEAR
    if img.dtype == np.uint16 or img.dtype == np.float32:
        # Single-channel 16-bit / float images go through PIL's float mode "F".
        resized = Image.fromarray(img.astype(np.float32)).resize((w, h), resample)
        return np.asarray(resized).astype(img.dtype)
    return np.asarray(Image.fromarray(img).resize((w, h), resample))


def prepare(frame: Frame, health: FrameHealth, input_size: tuple[int, int]) -> Prepared | None:
    """Input tensors for `frame`, or None when the frame must be skipped (rgb unusable).

    Runs on every frame before inference, so it writes each output once, straight into its
    final array: fresh temporaries cost more in page faults than the arithmetic does
    (issue 10)."""
    if not health.usable:
        return None
    events = [i.value for i in health.issues]
    rgb = frame.rgb
    size = tuple(int(s) for s in input_size)
    depth_ok_shape = (frame.depth is not None and FrameIssue.DEPTH_BAD_SHAPE not in health.issues)
    raw = np.asarray(frame.depth) if depth_ok_shape else None
    resized = tuple(rgb.shape[:2]) != size
    if resized:
        rgb = _resize(rgb, size, nearest=False)
        if raw is not None:
            raw = _resize(raw, size, nearest=True)
        events.append("resized")
    h, w = size
    depth = np.zeros((1, 1, h, w), np.float32)
    fraction = 0.0
    if raw is not None:
        if raw.dtype.kind == "u":
            depth[0, 0] = raw      # unsigned millimetres: every value is a measurement or 0
        else:                      # NaN / negative: no measurement (0)
            np.copyto(depth[0, 0], raw, where=np.isfinite(raw) & (raw > 0), casting="unsafe")
        # health counted the same pixels unless resizing changed them
        fraction = (float(np.count_nonzero(depth)) / float(depth.size) if resized
                    else health.depth_valid_fraction)
    rgb_t = np.empty((1, 3, h, w), np.float32)
    rgb_t[0] = rgb.transpose(2, 0, 1)
    return Prepared(rgb_t, depth, np.ascontiguousarray(rgb), fraction, events)
