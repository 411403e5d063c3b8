"""validate_frame: bad frames become a verdict the runtime acts on, never an exception."""

from __future__ import annotations

import numpy as np
import pytest

from edgefuse.cameras import Frame, FrameIssue, validate_frame


def _frame(h=8, w=10, depth="good", error=None, rgb=None):
    rgb = np.full((h, w, 3), 100, np.uint8) if rgb is None else rgb
    if isinstance(depth, str):
        d = np.full((h, w), 1200, np.uint16)
        d[0, 0] = 0
    else:
        d = depth
    return Frame(rgb=rgb, depth=d, timestamp=0.0, error=error)


def test_good_frame():
    h = validate_frame(_frame(), (8, 10))
    assert h.ok and h.usable and h.depth_ok
    assert h.depth_valid_fraction == pytest.approx(79 / 80)


def test_wrong_size_is_usable_but_flagged():
    h = validate_frame(_frame(6, 10), (8, 10))
    assert h.issues == (FrameIssue.WRONG_SIZE,) and h.usable and h.depth_ok


def test_missing_depth():
    h = validate_frame(_frame(depth=None))
    assert h.usable and not h.depth_ok and FrameIssue.DEPTH_MISSING in h.issues
    assert h.depth_valid_fraction == 0.0


def test_all_zero_depth():
    h = validate_frame(_frame(depth=np.zeros((8, 10), np.uint16)))
    assert h.issues == (FrameIssue.DEPTH_ALL_ZERO,) and not h.depth_ok and h.usable


def test_mostly_invalid_depth_uses_threshold():
    d = np.zeros((8, 10), np.uint16)
    d[:2] = 900  # 25 % valid
    h = validate_frame(_frame(depth=d))
    assert FrameIssue.DEPTH_MOSTLY_INVALID in h.issues and not h.depth_ok
    assert h.depth_valid_fraction == pytest.approx(0.25)
    assert validate_frame(_frame(depth=d), min_depth_valid=0.2).depth_ok


def test_nan_depth():
    d = np.full((8, 10), 1.5, np.float32)
    d[:, :3] = np.nan
    h = validate_frame(_frame(depth=d))
    assert FrameIssue.DEPTH_NAN in h.issues and not h.depth_ok
    assert h.depth_valid_fraction == pytest.approx(0.7)


def test_depth_size_mismatch():
    h = validate_frame(_frame(depth=np.ones((4, 5), np.uint16)))
    assert FrameIssue.DEPTH_BAD_SHAPE in h.issues and not h.depth_ok and h.usable


def test_decode_error_is_unusable():
    f = Frame(rgb=np.zeros((0, 0, 3), np.uint8), depth=None, timestamp=0.0, error="rgb: truncated PNG")
    h = validate_frame(f, (8, 10))
    assert h.issues == (FrameIssue.DECODE_ERROR,) and not h.usable and not h.depth_ok


@pytest.mark.parametrize("rgb", [np.zeros((8, 10), np.uint8), np.zeros((8, 10, 3), np.float32), None])
def test_malformed_rgb(rgb):
    f = Frame(rgb=rgb, depth=None, timestamp=0.0)
    h = validate_frame(f, (8, 10))
    assert FrameIssue.BAD_RGB in h.issues and not h.usable
