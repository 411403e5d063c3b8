"""Capture calibration views from a camera: keep a frame when the board is seen and still.

A person waves the board in front of the camera; a frame becomes a view when the board's
corners have moved less than `still_px` (mean) over `still_frames` consecutive frames (a
still board gives sharp corners, a moving one smears them), and when the board sits
somewhere new: its corners moved at least `min_move` of the image diagonal from every view
already kept (so holding the board still in one place does not fill the set with copies).
The logic takes any iterable of `Frame`s, so it runs on a video file (`opencv:FILE`) as on
a live camera.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from edgefuse.calibration.board import BoardDetector, Detection
from edgefuse.calibration.views import to_gray
from edgefuse.cameras.frame import Frame


@dataclass
class CaptureConfig:
    views: int = 15
    still_frames: int = 3
    still_px: float = 1.0
    min_move: float = 0.05


def _displacement(a: Detection, b: Detection) -> float | None:
    """Mean corner displacement (pixels) over the corners both detections share."""
    common, ia, ib = np.intersect1d(a.ids, b.ids, return_indices=True)
    if len(common) < 4:
        return None
    return float(np.linalg.norm(a.image_points[ia] - b.image_points[ib], axis=1).mean())


def capture_views(frames: Iterable[Frame], detector: BoardDetector, config: CaptureConfig = CaptureConfig(),
                  on_view: Callable[[int, Frame], None] | None = None) -> Iterator[tuple[Frame, np.ndarray]]:
    """Yield (frame, grey image) for each frame kept as a view, until `config.views` are kept
    or the frames end."""
    kept: list[Detection] = []
    previous: Detection | None = None
    still = 0
    for frame in frames:
        if frame.error is not None or frame.rgb.ndim != 3 or frame.rgb.size == 0:
            previous, still = None, 0
            continue
        gray = to_gray(frame.rgb[..., ::-1])   # Frame is RGB; to_gray takes OpenCV's BGR
        det = detector.detect(gray)
        if det is None:
            previous, still = None, 0
            continue
        moved = _displacement(det, previous) if previous is not None else None
        still = still + 1 if moved is not None and moved < config.still_px else 0
        previous = det
        if still + 1 < config.still_frames:
            continue
        h, w = gray.shape
        min_px = config.min_move * float(np.hypot(h, w))
        if any((d := _displacement(det, k)) is not None and d < min_px for k in kept):
            continue
        kept.append(det)
        if on_view is not None:
            on_view(len(kept), frame)
        yield frame, gray
        still = 0
        if len(kept) >= config.views:
            return
