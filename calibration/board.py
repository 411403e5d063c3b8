"""Calibration boards: the `--board` spec, detection in an image, and the printable pattern.

    checkerboard:COLSxROWS:SQUARE_M                  inner corners, square side in metres
    charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICTIONARY]  squares, square and marker side in metres

OpenCV does the detection: `cv2.findChessboardCorners` + `cv2.cornerSubPix` for a
checkerboard, `cv2.aruco.CharucoDetector` for ChArUco (whose corners are identified, so a
partly visible board still counts and the corner order never flips: prefer it for the
depth-to-colour extrinsics). The dictionary is one of OpenCV's predefined ArUco
dictionaries, e.g. DICT_6X6_250 (the default), DICT_4X4_50, DICT_APRILTAG_36h11.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefuse.errors import ConfigError, require

DEFAULT_DICTIONARY = "DICT_6X6_250"
KINDS = ("checkerboard", "charuco")
_USAGE = ("checkerboard:COLSxROWS:SQUARE_M (inner corners, e.g. checkerboard:9x6:0.025) or "
          "charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICTIONARY] (squares, e.g. charuco:7x5:0.04:0.03:DICT_6X6_250)")


@dataclass(frozen=True)
class Detection:
    """A board found in one image: matching image (N x 2, pixels) and board (N x 3, metres) points."""

    image_points: np.ndarray
    object_points: np.ndarray
    ids: np.ndarray          # corner ids (0..N-1 in board order), for matching two cameras' views


def _cv2() -> Any:
    return require("cv2", "viz", "camera calibration uses OpenCV")


def dictionary_id(name: str) -> int:
    """'DICT_6X6_250' / '6x6_250' -> cv2.aruco's constant; unknown names list the valid ones."""
    cv2 = _cv2()
    key = name.strip().upper()
    key = key if key.startswith("DICT_") else f"DICT_{key}"
    valid = sorted(n for n in dir(cv2.aruco) if n.startswith("DICT_") and n == n.upper())
    if key not in valid:
        raise ConfigError(f"unknown ArUco dictionary {name!r}; valid: {', '.join(valid)}")
    return int(getattr(cv2.aruco, key))


@dataclass(frozen=True)
class Board:
    kind: str
    cols: int
    rows: int
    square_m: float
    marker_m: float | None = None
    dictionary: str | None = None

    # --- spec ---
    @classmethod
    def parse(cls, spec: str) -> "Board":
        """'checkerboard:9x6:0.025' -> Board; a spec that does not parse says what would."""
        parts = [p.strip() for p in str(spec).split(":")]
        kind = parts[0].lower()
        if kind not in KINDS:
            raise ConfigError(f"board {spec!r}: unknown kind {parts[0]!r}; use {_USAGE}")
        want = (3,) if kind == "checkerboard" else (4, 5)
        if len(parts) not in want:
            raise ConfigError(f"board {spec!r}: expected {_USAGE}")
        m = re.fullmatch(r"(\d+)[xX](\d+)", parts[1])
        if not m:
            raise ConfigError(f"board {spec!r}: size {parts[1]!r} is not COLSxROWS, e.g. 9x6")
        cols, rows = int(m.group(1)), int(m.group(2))
        try:
            sizes = [float(p) for p in parts[2:4]]
        except ValueError:
            raise ConfigError(f"board {spec!r}: square/marker sizes must be numbers in metres, e.g. 0.025") from None
        if any(not (0 < s < 10) for s in sizes):
            raise ConfigError(f"board {spec!r}: sizes are in metres and must be in (0, 10), got {sizes}")
        if kind == "checkerboard":
            if cols < 2 or rows < 2:
                raise ConfigError(f"board {spec!r}: a checkerboard needs at least 2x2 inner corners")
            return cls(kind, cols, rows, sizes[0])
        if cols < 3 or rows < 3:
            raise ConfigError(f"board {spec!r}: a ChArUco board needs at least 3x3 squares")
        if sizes[1] >= sizes[0]:
            raise ConfigError(f"board {spec!r}: the marker ({sizes[1]} m) must be smaller than the square ({sizes[0]} m)")
        dictionary = parts[4] if len(parts) == 5 else DEFAULT_DICTIONARY
        dictionary_id(dictionary)  # refuse an unknown dictionary now, not at the first image
        return cls(kind, cols, rows, sizes[0], sizes[1], dictionary)

    def __str__(self) -> str:
        if self.kind == "checkerboard":
            return f"checkerboard:{self.cols}x{self.rows}:{self.square_m:g}"
        return f"charuco:{self.cols}x{self.rows}:{self.square_m:g}:{self.marker_m:g}:{self.dictionary}"

    # --- geometry ---
    @property
    def corner_count(self) -> int:
        """Corners a fully visible board shows."""
        if self.kind == "checkerboard":
            return self.cols * self.rows
        return (self.cols - 1) * (self.rows - 1)

    @property
    def min_corners(self) -> int:
        """Fewest corners a view must show to be used (a partial ChArUco board still helps)."""
        return self.corner_count if self.kind == "checkerboard" else max(6, self.corner_count // 3)

    def object_points(self) -> np.ndarray:
        """All corners on the board plane (z = 0), metres, in detection order (row by row)."""
        if self.kind == "charuco":
            return np.asarray(self._charuco().getChessboardCorners(), dtype=np.float32).reshape(-1, 3)
        gx, gy = np.meshgrid(np.arange(self.cols), np.arange(self.rows))
        pts = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=-1) * self.square_m
        return pts.astype(np.float32)

    def _charuco(self) -> Any:
        cv2 = _cv2()
        dictionary = cv2.aruco.getPredefinedDictionary(dictionary_id(self.dictionary or DEFAULT_DICTIONARY))
        return cv2.aruco.CharucoBoard((self.cols, self.rows), self.square_m, float(self.marker_m), dictionary)

    # --- detection ---
    def detector(self) -> "BoardDetector":
        return BoardDetector(self)

    # --- the pattern ---
    def image(self, px_per_square: int = 60, margin_px: int | None = None) -> tuple[np.ndarray, float, tuple[float, float]]:
        """The printable pattern (grey uint8), its scale (metres per pixel) and the board
        origin in it (pixels): corner (0, 0) of `object_points` sits at that origin.

        The checkerboard has (cols+1) x (rows+1) squares around its inner corners; the
        ChArUco image is OpenCV's `CharucoBoard.generateImage`."""
        margin = px_per_square if margin_px is None else margin_px
        m_per_px = self.square_m / px_per_square
        if self.kind == "checkerboard":
            nx, ny = self.cols + 1, self.rows + 1
            iy, ix = np.mgrid[0:ny * px_per_square, 0:nx * px_per_square] // px_per_square
            squares = np.where((ix + iy) % 2 == 0, 0, 255).astype(np.uint8)
            img = np.full((ny * px_per_square + 2 * margin, nx * px_per_square + 2 * margin), 255, np.uint8)
            img[margin:margin + squares.shape[0], margin:margin + squares.shape[1]] = squares
            # the first inner corner is one square in from the pattern's top-left
            return img, m_per_px, (margin + px_per_square, margin + px_per_square)
        size = (self.cols * px_per_square + 2 * margin, self.rows * px_per_square + 2 * margin)
        img = self._charuco().generateImage(size, marginSize=margin, borderBits=1)
        # getChessboardCorners() is measured from the board's outer corner
        return np.asarray(img), m_per_px, (float(margin), float(margin))


class BoardDetector:
    """Finds one board in grey images; built once per board (the ChArUco detector is reused)."""

    def __init__(self, board: Board) -> None:
        self.board = board
        self.cv2 = _cv2()
        self._objects = board.object_points()
        if board.kind == "charuco":
            self._charuco = self.cv2.aruco.CharucoDetector(board._charuco())

    def detect(self, gray: np.ndarray) -> Detection | None:
        """The board's corners in `gray` (uint8), or None when it is not (fully enough) visible."""
        found = self._chessboard(gray) if self.board.kind == "checkerboard" else self._charuco_corners(gray)
        if found is None:
            return None
        points, ids = found
        if len(ids) < self.board.min_corners:
            return None
        return Detection(points.reshape(-1, 2).astype(np.float32), self._objects[ids], ids)

    def _chessboard(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        cv2 = self.cv2
        pattern = (self.board.cols, self.board.rows)
        flags = cv2.CALIB_CB_ADAPTIVE_THRESH | cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_FAST_CHECK
        ok, corners = cv2.findChessboardCorners(gray, pattern, flags=flags)
        if not ok:
            return None
        # refine within half the smallest corner spacing (at most 11 px): a wider window
        # would reach the neighbouring corner on a small or distant board
        spacing = np.min(np.linalg.norm(np.diff(corners.reshape(self.board.rows, self.board.cols, 2), axis=1), axis=-1))
        win = int(max(2, min(11, spacing / 2 - 1)))
        criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 50, 1e-3)
        corners = cv2.cornerSubPix(gray, corners, (win, win), (-1, -1), criteria)
        return corners, np.arange(self.board.corner_count)

    def _charuco_corners(self, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        corners, ids, _, _ = self._charuco.detectBoard(gray)
        if corners is None or ids is None or len(ids) == 0:
            return None
        return corners, ids.ravel().astype(np.int64)
