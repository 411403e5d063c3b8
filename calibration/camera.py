"""`edgefuse calibrate`: views -> intrinsics (and depth-to-colour extrinsics) -> camera.yaml.

One call, `calibrate(CalibrateConfig(...))`, does what the CLI promises; the CLI only
translates flags. Views come from a folder of images or are captured from a camera spec
(`capture.py`); the colour camera is calibrated (`intrinsics.py`); with `depth_images`
the depth camera is calibrated from its own views and the extrinsics solved
(`stereo.py`); the result is written as a ROS camera_info YAML
(`edgefuse.cameras.camera_info`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from edgefuse.calibration.board import Board
from edgefuse.calibration.capture import CaptureConfig, capture_views
from edgefuse.calibration.intrinsics import MIN_VIEWS, IntrinsicsResult, calibrate_intrinsics
from edgefuse.calibration.stereo import StereoResult, calibrate_depth_to_color
from edgefuse.calibration.views import View, find_boards, list_images, read_image
from edgefuse.cameras.camera_info import CameraCalibration, save_camera_calibration
from edgefuse.errors import ConfigError, require


@dataclass
class CalibrateConfig:
    """Everything `edgefuse calibrate` takes (flags map 1:1 onto fields)."""

    board: str
    out: str
    images: str | None = None          # a folder of colour views
    camera: str | None = None          # or a camera spec to capture them from
    depth_images: str | None = None    # the depth camera's (IR) views, same file names
    views: int = 15                    # views to capture from a camera
    save_views: str | None = None      # where captured views are written (PNG)
    max_frames: int | None = None      # stop capturing after this many frames
    camera_name: str = "camera"
    min_views: int = MIN_VIEWS
    k_coefficients: int = 2
    drop_outliers: bool = False
    force: bool = False

    def __post_init__(self) -> None:
        if (self.images is None) == (self.camera is None):
            raise ConfigError("give either IMAGES (a folder of board views) or --camera SPEC (capture them), "
                              "not both and not neither")
        if self.depth_images is not None and self.camera is not None:
            raise ConfigError("--depth-images works with a folder of colour views; capture the colour and IR "
                              "views to folders first (--save-views) and calibrate from the folders")
        if self.views < 1:
            raise ConfigError(f"--views must be >= 1, got {self.views}")


@dataclass
class CalibrationReport:
    out: Path
    board: Board
    color: IntrinsicsResult
    depth: IntrinsicsResult | None = None
    stereo: StereoResult | None = None
    captured: list[str] = field(default_factory=list)


def _folder_views(folder: str, board: Board) -> list[View]:
    detector = board.detector()
    return find_boards(((f.name, read_image(f)) for f in list_images(folder)), detector)


def _captured_views(config: CalibrateConfig, board: Board, on_status: Callable[[str], None] | None) -> list[View]:
    from edgefuse.cameras import open_source

    cv2 = require("cv2", "viz", "camera calibration uses OpenCV")
    detector = board.detector()
    save = Path(config.save_views).expanduser() if config.save_views else None
    if save is not None:
        save.mkdir(parents=True, exist_ok=True)
    images: list[tuple[str, object]] = []

    def said(n: int, frame) -> None:
        if on_status is not None:
            on_status(f"view {n}/{config.views} captured (frame {frame.index})")

    source = open_source(config.camera, frames=config.max_frames)
    source.on_status = on_status   # before it opens: a live camera reports disconnects through it
    with source:
        for frame, gray in capture_views(source, detector, CaptureConfig(views=config.views), on_view=said):
            name = f"view_{len(images):03d}.png"
            if save is not None:
                cv2.imwrite(str(save / name), frame.rgb[..., ::-1])
            images.append((name, gray))
    if not images:
        raise ConfigError(f"no view captured from {config.camera}: the board was never seen still; hold it in view, "
                          f"still for a moment, at several positions (check --board)")
    return find_boards(images, detector)


def calibrate(config: CalibrateConfig, on_status: Callable[[str], None] | None = None) -> CalibrationReport:
    """Calibrate and write `config.out`; raises ConfigError with what to do on bad input."""
    board = Board.parse(config.board)
    out = Path(config.out).expanduser()
    if out.exists() and not config.force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it")
    if out.suffix.lower() not in (".yaml", ".yml"):
        raise ConfigError(f"--out {out}: the camera_info file is YAML; name it e.g. camera.yaml")
    views = _folder_views(config.images, board) if config.images else _captured_views(config, board, on_status)
    color = calibrate_intrinsics(views, board, min_views=config.min_views, k_coefficients=config.k_coefficients,
                                 drop_outliers=config.drop_outliers, camera_name=config.camera_name)
    depth = stereo = None
    if config.depth_images is not None:
        depth_views = _folder_views(config.depth_images, board)
        depth = calibrate_intrinsics(depth_views, board, min_views=config.min_views,
                                     k_coefficients=config.k_coefficients, drop_outliers=config.drop_outliers,
                                     camera_name=f"{config.camera_name}_depth")
        stereo = calibrate_depth_to_color(color.views, depth.views, color.camera, depth.camera)
    calibration = CameraCalibration(
        color.camera, depth.camera if depth else None, stereo.depth_to_color if stereo else None,
        {"depth_to_color_rms_px": stereo.rms_px} if stereo else {})
    save_camera_calibration(calibration, out)
    captured = [v.name for v in views] if config.camera else []
    return CalibrationReport(out, board, color, depth, stereo, captured)
