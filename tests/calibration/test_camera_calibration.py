"""edgefuse calibrate on views rendered through a known camera (calib_render.py): the
calibration finds K within 1% and the distortion's signs, flags the bent view, skips the
blurred and board-less ones with their reasons, solves the depth-to-colour extrinsics, and
refuses bad input with a one-line error."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cv2

import calib_render as cr  # noqa: E402

from edgefuse.calibration.board import Board  # noqa: E402
from edgefuse.calibration.camera import CalibrateConfig, calibrate  # noqa: E402
from edgefuse.cameras.camera_info import load_camera_calibration  # noqa: E402
from edgefuse.cli.main import main  # noqa: E402
from edgefuse.errors import ConfigError  # noqa: E402

CHARUCO = "charuco:8x6:0.04:0.03"
# the depth (IR) camera: other intrinsics and distortion, 4 cm left of colour, slightly turned
K_IR = np.array([[520.0, 0.0, 318.0], [0.0, 520.0, 243.0], [0.0, 0.0, 1.0]])
DIST_IR = np.array([0.05, -0.02, 0.0, 0.0, 0.0])
R_DC = cv2.Rodrigues(np.array([0.0, 0.03, 0.01]))[0]   # X_colour = R_DC X_depth + T_DC
T_DC = np.array([0.04, 0.002, -0.003])


def _write_views(folder, spec, n, seed=0, ir=False, blur_view=None, bend_view=None, blank_view=None):
    folder.mkdir(parents=True, exist_ok=True)
    board = Board.parse(spec)
    for i, (rv, tv) in enumerate(cr.poses(n, seed)):
        if ir:   # the same board pose seen from the depth camera
            r = cv2.Rodrigues(rv)[0]
            r_d = R_DC.T @ r
            t_d = R_DC.T @ (tv - T_DC)
            img = cr.render(board, cv2.Rodrigues(r_d)[0].ravel(), t_d, k=K_IR, dist=DIST_IR, seed=i)
        else:
            img = cr.render(board, rv, tv, blur=1.0 if i == blur_view else 0.0,
                            bend_px=5.0 if i == bend_view else 0.0, seed=i)
        if i == blank_view:
            img = np.full_like(img, 128)
        cv2.imwrite(str(folder / f"{i:03d}.png"), img)
    return folder


@pytest.fixture(scope="module")
def charuco_views(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    colour = _write_views(root / "colour", CHARUCO, 12, blur_view=5, bend_view=7, blank_view=9)
    ir = _write_views(root / "ir", CHARUCO, 12, ir=True)
    return colour, ir


def test_charuco_intrinsics_extrinsics_and_report(charuco_views, tmp_path, capsys):
    colour, ir = charuco_views
    out = tmp_path / "camera.yaml"
    rc = main(["calibrate", str(colour), "--board", CHARUCO, "--out", str(out), "--depth-images", str(ir),
               "--drop-outliers", "--json"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    cal = load_camera_calibration(out)
    k = cal.color.intrinsics
    for got, want in ((k.fx, cr.K[0, 0]), (k.fy, cr.K[1, 1]), (k.cx, cr.K[0, 2]), (k.cy, cr.K[1, 2])):
        assert got == pytest.approx(want, rel=0.01)
    k1, k2 = cal.color.distortion[:2]
    assert k1 < 0 < k2                             # barrel distortion: signs as rendered
    c = report["color"]
    assert "blurred" in c["views_skipped"]["005.png"]
    assert "no board found" in c["views_skipped"]["009.png"]
    assert c["dropped_outliers"] == ["007.png"]    # the bent board, flagged and left out
    assert c["coverage"]["fraction"] >= 0.75
    # depth camera and extrinsics
    d = cal.depth.intrinsics
    assert d.fx == pytest.approx(K_IR[0, 0], rel=0.01) and cal.depth.distortion[0] > 0
    ext = cal.depth_to_color
    np.testing.assert_allclose(ext.translation, T_DC, atol=0.003)           # within 3 mm
    angle = np.degrees(np.linalg.norm(cv2.Rodrigues(np.asarray(ext.rotation) @ R_DC.T)[0]))
    assert angle < 0.5
    assert report["depth_to_color"]["rms_px"] < 1.0 and cal.registers_depth


def test_outlier_flagged_in_the_printed_report(charuco_views, tmp_path, capsys):
    colour, _ = charuco_views
    out = tmp_path / "camera.yaml"
    assert main(["calibrate", str(colour), "--board", CHARUCO, "--out", str(out)]) == 0
    text = capsys.readouterr().out
    flagged = [line for line in text.splitlines() if "<- outlier" in line]
    assert len(flagged) == 1 and "007.png" in flagged[0]
    assert "skipped 005.png: blurred" in text and "RMS reprojection error" in text and "board coverage" in text
    assert f"wrote {out}" in text


def test_checkerboard_views_only_in_the_centre_warn_about_coverage(tmp_path):
    spec = "checkerboard:9x6:0.02"
    board = Board.parse(spec)
    views = tmp_path / "v"
    views.mkdir()
    rng = np.random.default_rng(1)
    for i in range(7):   # a small board held in the middle of the image only
        rv = np.array([rng.uniform(-0.4, 0.4), rng.uniform(-0.4, 0.4), rng.uniform(-0.2, 0.2)])
        tv = np.array([-0.08 + rng.uniform(-0.02, 0.02), -0.05 + rng.uniform(-0.02, 0.02), 0.6])
        cv2.imwrite(str(views / f"{i}.png"), cr.render(board, rv, tv, seed=i))
    report = calibrate(CalibrateConfig(board=spec, out=str(tmp_path / "c.yaml"), images=str(views)))
    cov = report.color.coverage
    assert set(cov.missing_corners()) == {"top-left", "top-right", "bottom-left", "bottom-right"}
    assert "extrapolated" in cov.advice()
    assert report.color.camera.intrinsics.fx == pytest.approx(cr.K[0, 0], rel=0.05)


@pytest.mark.parametrize("args, message", [
    (["--board", "checkerboard:9x6"], "expected checkerboard:COLSxROWS:SQUARE_M"),
    (["--board", "checkerboard:9by6:0.02"], "is not COLSxROWS"),
    (["--board", "charuco:8x6:0.04:0.05"], "must be smaller than the square"),
    (["--board", "charuco:8x6:0.04:0.03:DICT_9X9_1"], "unknown ArUco dictionary"),
    (["--board", "chess:9x6:0.02"], "unknown kind"),
])
def test_bad_board_specs(tmp_path, capsys, args, message):
    (tmp_path / "v").mkdir()
    rc = main(["calibrate", str(tmp_path / "v"), "--out", str(tmp_path / "c.yaml"), *args])
    assert rc == 2 and message in capsys.readouterr().err


def test_bad_inputs_are_refused(charuco_views, tmp_path):
    colour, _ = charuco_views
    empty = tmp_path / "empty"
    empty.mkdir()
    out = str(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="no images in"):
        calibrate(CalibrateConfig(board=CHARUCO, out=out, images=str(empty)))
    with pytest.raises(ConfigError, match="not found"):
        calibrate(CalibrateConfig(board=CHARUCO, out=out, images=str(tmp_path / "missing")))
    blank = tmp_path / "blank"
    blank.mkdir()
    for i in range(3):
        cv2.imwrite(str(blank / f"{i}.png"), np.full((120, 160), 100, np.uint8))
    with pytest.raises(ConfigError, match="no board found in any of the 3 views"):
        calibrate(CalibrateConfig(board=CHARUCO, out=out, images=str(blank)))
    with pytest.raises(ConfigError, match="need 20"):
        calibrate(CalibrateConfig(board=CHARUCO, out=out, images=str(colour), min_views=20))
    with pytest.raises(ConfigError, match="either IMAGES"):
        CalibrateConfig(board=CHARUCO, out=out)
    (tmp_path / "exists.yaml").write_text("x")
    with pytest.raises(ConfigError, match="--force"):
        calibrate(CalibrateConfig(board=CHARUCO, out=str(tmp_path / "exists.yaml"), images=str(colour)))
