"""Frame health: what is wrong with a frame, as data, so the runtime applies a policy.

A robot runs all day; a bad frame (wrong size, missing or NaN depth, a decode error) must
be skipped or routed to the RGB-only path and logged, never crash the run (issue 5,
"Faults"). `validate_frame` is a pure function: it only inspects the frame.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import numpy as np

from edgefuse.cameras.frame import Frame

#: Below this fraction of valid depth pixels the depth frame is "mostly invalid".
MIN_DEPTH_VALID = 0.5


class FrameIssue(str, enum.Enum):
    DECODE_ERROR = "decode_error"            # the source could not decode the frame
    BAD_RGB = "bad_rgb"                      # rgb is not an HxWx3 uint8 image
    WRONG_SIZE = "wrong_size"                # rgb is not the expected (H, W)
    DEPTH_MISSING = "depth_missing"          # no depth for this frame
    DEPTH_BAD_SHAPE = "depth_bad_shape"      # depth not HxW, or not the size of rgb
    DEPTH_NAN = "depth_nan"                  # non-finite values (float depth from a buggy driver)
    DEPTH_ALL_ZERO = "depth_all_zero"        # no measurement anywhere (covered lens, laser off)
    DEPTH_MOSTLY_INVALID = "depth_mostly_invalid"  # valid fraction under the threshold


# Issues after which the colour image cannot be used at all.
_RGB_FATAL = {FrameIssue.DECODE_ERROR, FrameIssue.BAD_RGB}


@dataclass(frozen=True)
class FrameHealth:
    """The verdict on one frame.

    `rgb_ok`: the colour image is usable (possibly after resizing when WRONG_SIZE).
    `depth_ok`: depth is present, well-formed and mostly valid.
    `depth_valid_fraction`: fraction of depth pixels with a finite measurement > 0 (0.0 when
    depth is missing or malformed) - the number the per-frame log records.
    """

    rgb_ok: bool
    depth_ok: bool
    depth_valid_fraction: float
    issues: tuple[FrameIssue, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.issues

    @property
    def usable(self) -> bool:
        """The frame can be inferred on (rgb usable); depth problems only change the path."""
        return self.rgb_ok

    def describe(self) -> str:
        return ", ".join(i.value for i in self.issues) or "ok"


def depth_valid_fraction(depth: np.ndarray) -> float:
    """Fraction of pixels with a finite depth > 0."""
    if depth.size == 0:
        return 0.0
    if np.issubdtype(depth.dtype, np.floating):
        valid = np.isfinite(depth) & (depth > 0)
    else:
        valid = depth > 0
    return float(np.count_nonzero(valid)) / float(depth.size)


def validate_frame(frame: Frame, expected_size: tuple[int, int] | None = None,
                   min_depth_valid: float = MIN_DEPTH_VALID) -> FrameHealth:
    """Inspect `frame`; `expected_size` (H, W) is what the consumer was configured for."""
    issues: list[FrameIssue] = []
    if frame.error is not None:
        issues.append(FrameIssue.DECODE_ERROR)
    rgb = frame.rgb
    rgb_well_formed = (isinstance(rgb, np.ndarray) and rgb.ndim == 3 and rgb.shape[2] == 3
                       and rgb.dtype == np.uint8 and rgb.shape[0] > 0 and rgb.shape[1] > 0)
    if frame.error is None and not rgb_well_formed:
        issues.append(FrameIssue.BAD_RGB)
    if rgb_well_formed and expected_size is not None and tuple(rgb.shape[:2]) != tuple(expected_size):
        issues.append(FrameIssue.WRONG_SIZE)

    fraction = 0.0
    depth = frame.depth
    if frame.error is not None and depth is None:
        pass  # a decode error already says why depth is absent
    elif depth is None:
        issues.append(FrameIssue.DEPTH_MISSING)
    elif (not isinstance(depth, np.ndarray) or depth.ndim != 2 or depth.size == 0
          or (rgb_well_formed and depth.shape != rgb.shape[:2])):
        issues.append(FrameIssue.DEPTH_BAD_SHAPE)
    else:
        if np.issubdtype(depth.dtype, np.floating) and not np.isfinite(depth).all():
            issues.append(FrameIssue.DEPTH_NAN)
        fraction = depth_valid_fraction(depth)
        if fraction == 0.0:
            issues.append(FrameIssue.DEPTH_ALL_ZERO)
        elif fraction < min_depth_valid:
            issues.append(FrameIssue.DEPTH_MOSTLY_INVALID)

    rgb_ok = rgb_well_formed and not (set(issues) & _RGB_FATAL)
    depth_ok = depth is not None and frame.error is None and not any(
        i in issues for i in (FrameIssue.DEPTH_MISSING, FrameIssue.DEPTH_BAD_SHAPE, FrameIssue.DEPTH_NAN,
                              FrameIssue.DEPTH_ALL_ZERO, FrameIssue.DEPTH_MOSTLY_INVALID))
    return FrameHealth(rgb_ok=rgb_ok, depth_ok=depth_ok, depth_valid_fraction=fraction, issues=tuple(issues))
