"""`edgefuse run` on a RealSense .db3 recording written by pyrealsense2's own recorder,
and the video sink."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from edgefuse.cli.main import main


def test_run_plays_back_a_realsense_db3_recording(bundle_dir, tmp_path):
    import pyrealsense2  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    sys.path.insert(0, str(Path(__file__).parents[1] / "cameras"))
    from cameras_rs_recording import record

    from edgefuse.cameras import open_source

    rec = tmp_path / "run.db3"
    n = 6
    record(rec, frames=n)                                     # 30 fps, first frame at t = 1000 ms
    # What the recorder wrote, read back frame by frame: all n pairs (the bag source pauses
    # playback before its sensors start, so no stream loses the beginning of the file).
    with open_source(f"bag:{rec}") as src:
        written = [f.timestamp for f in src]
    assert written == pytest.approx([1.0 + i / 30 for i in range(n)], abs=1e-6)
    log = tmp_path / "run.jsonl"
    rc = main(["run", "--bundle", str(bundle_dir), "--camera", f"bag:{rec}", "--log", str(log)])
    assert rc == 0
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert len(records) == n                                  # playback: every frame, in order
    assert [r["frame"] for r in records] == list(range(n))
    assert [r["timestamp"] for r in records] == pytest.approx(written, abs=1e-6)
    assert all(r["dropped"] == 0 for r in records)            # nothing dropped
    # 120x160 colour into a 64x128 bundle: resized by policy, depth aligned and valid
    assert all("resized" in r["events"] for r in records)
    assert all(r["depth_valid_fraction"] > 0.5 for r in records)
    assert all(r["reason"] != "depth_fallback" for r in records)


def test_save_video_writes_every_frame(bundle_dir, tmp_path):
    import cv2
    video = tmp_path / "out.avi"
    rc = main(["run", "--bundle", str(bundle_dir), "--frames", "3", "--save-video", str(video)])
    assert rc == 0
    cap = cv2.VideoCapture(str(video))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    assert len(frames) == 3
    assert frames[0].shape == (64, 128, 3) and np.asarray(frames[0]).std() > 0


def test_show_without_a_display_is_a_clear_error(bundle_dir, capsys, monkeypatch):
    import cv2
    monkeypatch.delenv("DISPLAY", raising=False)

    def no_gui(*a, **k):
        raise cv2.error("The function is not implemented")

    monkeypatch.setattr(cv2, "imshow", no_gui)
    rc = main(["run", "--bundle", str(bundle_dir), "--frames", "2", "--show"])
    assert rc == 2
    assert "drop --show" in capsys.readouterr().err
