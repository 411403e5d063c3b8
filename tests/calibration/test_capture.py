"""Capturing calibration views from a camera spec: a video file through opencv: (no fake).

The video holds the board at 6 positions, each held still for 4 frames, with moving frames
between them; the capture keeps exactly one view per still position and the calibration
runs on them (`edgefuse calibrate --camera opencv:FILE`)."""

from __future__ import annotations

import pytest

import cv2

import calib_render as cr  # noqa: E402

from edgefuse.calibration.board import Board  # noqa: E402
from edgefuse.calibration.capture import CaptureConfig, capture_views  # noqa: E402
from edgefuse.cameras import open_source  # noqa: E402
from edgefuse.cameras.camera_info import load_camera_calibration  # noqa: E402
from edgefuse.cli.main import main  # noqa: E402

SPEC = "charuco:8x6:0.04:0.03"


@pytest.fixture(scope="module")
def board_video(tmp_path_factory):
    board = Board.parse(SPEC)
    path = tmp_path_factory.mktemp("capture") / "wave.avi"
    h, w = cr.SIZE
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15.0, (w, h))
    poses = cr.poses(6, seed=3)
    for i, (rv, tv) in enumerate(poses):
        still = cr.render(board, rv, tv, seed=i)
        for _ in range(4):
            writer.write(cv2.cvtColor(still, cv2.COLOR_GRAY2BGR))
        nxt = poses[(i + 1) % len(poses)]
        for a in (0.33, 0.66):   # the board moving to the next position (each frame elsewhere)
            moving = cr.render(board, (1 - a) * rv + a * nxt[0], (1 - a) * tv + a * nxt[1], seed=100 + i)
            writer.write(cv2.cvtColor(moving, cv2.COLOR_GRAY2BGR))
    writer.release()
    return path


def test_capture_keeps_one_view_per_still_position(board_video):
    detector = Board.parse(SPEC).detector()
    with open_source(f"opencv:{board_video}") as src:
        kept = [frame.index for frame, _ in capture_views(src, detector, CaptureConfig(views=20))]
    # one per still segment (frames 6k..6k+3), at its third still frame at the latest
    assert len(kept) == 6
    for k, index in enumerate(kept):
        assert 6 * k + 2 <= index <= 6 * k + 3


def test_calibrate_from_a_camera_spec(board_video, tmp_path, capsys):
    out = tmp_path / "camera.yaml"
    saved = tmp_path / "views"
    rc = main(["calibrate", "--camera", f"opencv:{board_video}", "--board", SPEC, "--out", str(out),
               "--views", "6", "--save-views", str(saved), "--min-views", "5"])
    assert rc == 0, capsys.readouterr().err
    assert "captured 6 views" in capsys.readouterr().out
    assert len(list(saved.glob("*.png"))) == 6
    assert load_camera_calibration(out).color.intrinsics.fx == pytest.approx(cr.K[0, 0], rel=0.05)
