"""`edgefuse calibrate IMAGES --board SPEC --out camera.yaml`: camera calibration (OpenCV)."""

from __future__ import annotations

from typing import Optional

import typer

from edgefuse.cli.common import console

BOARD_HELP = ("checkerboard:COLSxROWS:SQUARE_M (inner corners, square side in metres) or "
              "charuco:COLSxROWS:SQUARE_M:MARKER_M[:DICTIONARY] (squares; dictionary default DICT_6X6_250).")


def calibrate(
    images: Optional[str] = typer.Argument(None, help="Folder of board views (colour). Or use --camera."),
    board: str = typer.Option(..., "--board", help=BOARD_HELP),
    out: str = typer.Option(..., "--out", help="The ROS camera_info YAML to write (camera.yaml)."),
    camera: Optional[str] = typer.Option(None, "--camera",
                                         help="Capture the views from a camera spec (realsense, opencv:0, ...) "
                                              "when the board is seen and still."),
    depth_images: Optional[str] = typer.Option(None, "--depth-images",
                                               help="Folder of the depth camera's (IR) views of the same board poses, "
                                                    "same file names: also solve the depth-to-colour extrinsics."),
    views: int = typer.Option(15, "--views", help="--camera: views to capture."),
    save_views: Optional[str] = typer.Option(None, "--save-views", help="--camera: write the captured views here."),
    max_frames: Optional[int] = typer.Option(None, "--max-frames", help="--camera: stop after this many frames."),
    camera_name: str = typer.Option("camera", "--camera-name", help="camera_name in the YAML."),
    min_views: int = typer.Option(6, "--min-views", help="Fewest usable views to calibrate from."),
    k_coefficients: int = typer.Option(2, "--k-coefficients",
                                       help="Radial distortion coefficients to fit (1-3; 2 as ROS's calibrator)."),
    drop_outliers: bool = typer.Option(False, "--drop-outliers", help="Re-calibrate without the flagged views."),
    force: bool = typer.Option(False, "--force", help="Overwrite --out."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as one JSON object."),
) -> None:
    """Calibrate a camera (and its depth-to-colour extrinsics) from board views."""
    import json

    from edgefuse.calibration.camera import CalibrateConfig
    from edgefuse.calibration.camera import calibrate as run_calibration
    from edgefuse.calibration.report import report_dict, report_lines

    config = CalibrateConfig(board=board, out=out, images=images, camera=camera, depth_images=depth_images,
                             views=views, save_views=save_views, max_frames=max_frames, camera_name=camera_name,
                             min_views=min_views, k_coefficients=k_coefficients, drop_outliers=drop_outliers,
                             force=force)
    status = None if as_json else (lambda line: console.print(line, highlight=False))
    report = run_calibration(config, on_status=status)
    if as_json:
        print(json.dumps(report_dict(report), indent=2))
    else:
        for line in report_lines(report):
            console.print(line, highlight=False, markup=False, soft_wrap=True)


def register(app: typer.Typer) -> None:
    app.command("calibrate")(calibrate)
