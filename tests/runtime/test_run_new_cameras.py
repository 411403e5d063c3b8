"""edgefuse run on a colour-only camera (opencv: on a video file the test writes), and the
--calibration / --record flags' errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import cv2

from edgefuse.cli.main import main  # noqa: E402


def test_run_on_a_colour_only_video_takes_the_rgb_only_path(bundle_dir, tmp_path, capsys):
    video = tmp_path / "webcam.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (160, 120))
    rng = np.random.default_rng(0)
    for _ in range(4):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    log = tmp_path / "run.jsonl"
    rc = main(["run", "--bundle", str(bundle_dir), "--camera", f"opencv:{video}", "--log", str(log)])
    assert rc == 0, capsys.readouterr().err
    records = [json.loads(line) for line in log.read_text().splitlines()]
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    rgb_only = min(manifest["paths"], key=lambda p: sum(p["decision"]))["index"]
    assert len(records) == 4
    for r in records:
        assert r["path"] == rgb_only and r["reason"] == "depth_fallback"
        assert "depth_missing" in r["events"] and r["depth_valid_fraction"] == 0.0


@pytest.mark.parametrize("args, message", [
    (["--camera", "synthetic", "--record", "x.db3"], "--record works with the live RealSense cameras"),
    (["--camera", "synthetic", "--calibration", "nope.yaml"], "calibration file nope.yaml not found"),
])
def test_flag_errors(bundle_dir, capsys, args, message):
    assert main(["run", "--bundle", str(bundle_dir), "--frames", "1", *args]) == 2
    assert message in capsys.readouterr().err
