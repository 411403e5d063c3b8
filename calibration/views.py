"""Calibration views: images in, boards found, and which views are used or skipped and why.

A view is skipped (and the report says so) when it cannot be read, has another size than
the others, shows no board (or too little of it), or is blurred. Blur is judged by the
variance of the Laplacian inside the board's bounding box (`cv2.Laplacian`), relative to
the median of the views: an absolute threshold would depend on the board, the lens and
the print, a relative one finds the shaken frame among steady ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from edgefuse.calibration.board import BoardDetector, Detection
from edgefuse.errors import ConfigError, require

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm")
#: A view whose board is less sharp than this fraction of the median view is "blurred".
BLUR_FRACTION = 0.35


@dataclass
class View:
    """One calibration image and what became of it."""

    name: str
    size: tuple[int, int] | None          # (H, W); None when unreadable
    detection: Detection | None = None
    sharpness: float = 0.0
    skipped: str | None = None            # why the view is not used (None: used)

    @property
    def used(self) -> bool:
        return self.skipped is None


def list_images(folder: str | Path) -> list[Path]:
    """The image files of `folder`, sorted by name; an empty or missing folder is an error."""
    p = Path(folder).expanduser()
    if not p.is_dir():
        raise ConfigError(f"image folder {p} not found; pass the folder holding the board views "
                          f"(or --camera SPEC to capture them)")
    files = sorted(f for f in p.iterdir() if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise ConfigError(f"no images in {p} (looked for {', '.join(IMAGE_SUFFIXES)}); put the board views there "
                          f"or capture them with --camera SPEC")
    return files


def to_gray(image: np.ndarray) -> np.ndarray:
    """Any image (RGB/BGR 8-bit, grey, 16-bit IR) -> grey uint8 for detection.

    16-bit images (IR streams) are stretched between their 1st and 99.5th percentiles, so a
    dim IR frame still shows its board."""
    cv2 = require("cv2", "viz", "camera calibration uses OpenCV")
    img = np.asarray(image)
    if img.ndim == 3:
        img = cv2.cvtColor(img[..., :3], cv2.COLOR_BGR2GRAY) if img.dtype == np.uint8 else img[..., :3].mean(-1)
    if img.dtype != np.uint8:
        f = img.astype(np.float32)
        lo, hi = np.percentile(f, (1.0, 99.5))
        img = np.clip((f - lo) * (255.0 / max(float(hi - lo), 1e-6)), 0, 255).astype(np.uint8)
    return np.ascontiguousarray(img)


def read_image(path: Path) -> np.ndarray | None:
    """Grey uint8 of an image file (16-bit kept until `to_gray` stretches it); None when unreadable."""
    cv2 = require("cv2", "viz", "camera calibration uses OpenCV")
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    return None if img is None else to_gray(img)


def sharpness(gray: np.ndarray, detection: Detection) -> float:
    """Variance of the Laplacian inside the board's bounding box."""
    cv2 = require("cv2", "viz", "camera calibration uses OpenCV")
    pts = detection.image_points
    x0, y0 = np.floor(pts.min(axis=0)).astype(int)
    x1, y1 = np.ceil(pts.max(axis=0)).astype(int) + 1
    h, w = gray.shape
    patch = gray[max(y0, 0):min(y1, h), max(x0, 0):min(x1, w)]
    if patch.size < 16:
        return 0.0
    return float(cv2.Laplacian(patch, cv2.CV_64F).var())


def find_boards(images: Iterable[tuple[str, np.ndarray | None]], detector: BoardDetector) -> list[View]:
    """Detect the board in every (name, grey image); mark the views to skip, with the reason."""
    views: list[View] = []
    for name, gray in images:
        if gray is None:
            views.append(View(name, None, skipped="unreadable image"))
            continue
        view = View(name, (int(gray.shape[0]), int(gray.shape[1])))
        view.detection = detector.detect(gray)
        if view.detection is None:
            need = "the whole board" if detector.board.kind == "checkerboard" else \
                f"at least {detector.board.min_corners} corners"
            view.skipped = f"no board found (needs {need} in view)"
        else:
            view.sharpness = sharpness(gray, view.detection)
        views.append(view)
    _skip_odd_sizes(views)
    _skip_blurred(views)
    return views


def _skip_odd_sizes(views: list[View]) -> None:
    sizes = [v.size for v in views if v.size is not None]
    if not sizes:
        return
    common = max(set(sizes), key=sizes.count)
    for v in views:
        if v.used and v.size != common:
            v.skipped = f"size {v.size[1]}x{v.size[0]}, the other views are {common[1]}x{common[0]}"


def _skip_blurred(views: list[View]) -> None:
    found = [v.sharpness for v in views if v.used]
    if len(found) < 3:
        return
    median = float(np.median(found))
    for v in views:
        if v.used and v.sharpness < BLUR_FRACTION * median:
            v.skipped = (f"blurred (sharpness {v.sharpness:.0f} < {BLUR_FRACTION:g} x the median {median:.0f}: "
                         f"hold the board still)")


def image_size(views: list[View]) -> tuple[int, int]:
    """(H, W) shared by the used views."""
    for v in views:
        if v.used and v.size is not None:
            return v.size
    raise ConfigError("no view shows the board")
