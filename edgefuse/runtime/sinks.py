"""Where per-frame results go: an OpenCV window, a video file, mask PNGs, JSON lines.

Each sink has `write(out)` and `close()`; the pipeline closes every sink on any exit
(end, error, Ctrl-C) so files are complete. OpenCV is imported only by the sinks that
need it (opencv-python-headless, extra `viz`); PNGs are written with Pillow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgefuse.errors import EdgefuseError, require


@dataclass
class FrameOutput:
    """One processed frame as the sinks see it."""

    index: int
    image: np.ndarray          # uint8 HxWx3 RGB at the bundle's input size
    labels: np.ndarray         # HxW class indices (c = dataset label c + 1)
    path: int
    record: dict[str, Any]
    fps: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    frame: Any = None          # the source Frame (camera-size image, header stamp, intrinsics)


class StopRequested(Exception):
    """A sink asks the pipeline to stop (the user closed the window / pressed q)."""


class Sink(Protocol):
    def write(self, out: FrameOutput) -> None: ...
    def close(self) -> None: ...


def colorize(labels: np.ndarray, palette: np.ndarray) -> np.ndarray:
    """HxW class indices -> HxWx3 uint8 colours; palette row 0 is void, row c+1 class c."""
    return palette[np.clip(labels.astype(np.int64) + 1, 0, len(palette) - 1)]


def overlay(out: FrameOutput, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """The colour image blended with the colour mask (RGB uint8)."""
    mask = colorize(out.labels, palette).astype(np.float32)
    return (out.image.astype(np.float32) * (1 - alpha) + mask * alpha).astype(np.uint8)


def _caption(out: FrameOutput) -> str:
    flag = " depth-fallback" if out.record.get("reason") == "depth_fallback" else ""
    return f"path {out.path}  {out.fps:5.1f} FPS{flag}"


class JsonlSink:
    """One JSON object per frame (the contract keys, plus extras). Flushed every line: a
    killed process leaves a valid file up to its last frame."""

    final_record = True   # written after the record has every stage's latency (processor.py)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "w", encoding="utf-8")

    def write(self, out: FrameOutput) -> None:
        self._f.write(json.dumps(out.record, allow_nan=False) + "\n")
        self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


class MaskSink:
    """DIR/<frame>_labels.png (uint8, dataset convention: 0 void, class c -> c + 1) and
    DIR/<frame>_color.png (the manifest palette)."""

    def __init__(self, directory: str | Path, palette: np.ndarray) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.palette = palette

    def write(self, out: FrameOutput) -> None:
        from PIL import Image

        stem = f"{out.index:06d}"
        Image.fromarray((out.labels.astype(np.int64) + 1).astype(np.uint8)).save(self.dir / f"{stem}_labels.png")
        Image.fromarray(colorize(out.labels, self.palette)).save(self.dir / f"{stem}_color.png")

    def close(self) -> None:
        pass


def _draw_caption(cv2: Any, bgr: np.ndarray, text: str) -> None:
    cv2.putText(bgr, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3, cv2.LINE_AA)
    cv2.putText(bgr, text, (6, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1, cv2.LINE_AA)


class VideoSink:
    """The overlay (with path and FPS) as a video file (mp4v for .mp4, MJPG otherwise)."""

    def __init__(self, path: str | Path, palette: np.ndarray, fps: float = 30.0) -> None:
        self.cv2 = require("cv2", "viz")
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.palette = palette
        self.fps = fps
        self._writer: Any = None

    def write(self, out: FrameOutput) -> None:
        cv2 = self.cv2
        bgr = np.ascontiguousarray(overlay(out, self.palette)[:, :, ::-1])
        _draw_caption(cv2, bgr, _caption(out))
        if self._writer is None:
            fourcc = cv2.VideoWriter_fourcc(*("mp4v" if self.path.suffix.lower() == ".mp4" else "MJPG"))
            h, w = bgr.shape[:2]
            self._writer = cv2.VideoWriter(str(self.path), fourcc, self.fps, (w, h))
            if not self._writer.isOpened():
                raise EdgefuseError(f"cannot write video {self.path}; use a .mp4 or .avi file name")
        self._writer.write(bgr)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None


class WindowSink:
    """An OpenCV window with the overlay, the path and the FPS; q or Esc stops the run."""

    def __init__(self, palette: np.ndarray, title: str = "edgefuse") -> None:
        self.cv2 = require("cv2", "viz", "and a desktop: opencv-python (not -headless) for --show")
        self.palette = palette
        self.title = title

    def write(self, out: FrameOutput) -> None:
        cv2 = self.cv2
        bgr = np.ascontiguousarray(overlay(out, self.palette)[:, :, ::-1])
        _draw_caption(cv2, bgr, _caption(out))
        try:
            cv2.imshow(self.title, bgr)
            key = cv2.waitKey(1) & 0xFF
        except cv2.error as exc:
            raise EdgefuseError(f"cannot open a window ({exc}); headless OpenCV has no GUI, "
                                "install opencv-python or drop --show") from exc
        if key in (ord("q"), 27):
            raise StopRequested

    def close(self) -> None:
        try:
            self.cv2.destroyWindow(self.title)
        except Exception:  # noqa: BLE001 - the window may never have opened
            pass
