"""A typo in a flag's value of `run` / `bench` ends with one line saying what is valid,
exit 2, before any frame is read (issue 9)."""

from __future__ import annotations

import pytest

from edgefuse.cli.main import main

BACKENDS = ["ort", "tensorrt", "torch"]
CAMERAS = ["synthetic", "folder:DIR", "realsense", "bag:FILE", "rosbag:FILE"]


@pytest.mark.parametrize("command", ["run", "bench"])
@pytest.mark.parametrize("flag, value, says", [
    ("--backend", "bogus", BACKENDS),
    ("--camera", "bogus", CAMERAS),
    ("--on-mismatch", "maybe", ["refuse", "rebuild"]),
])
def test_flag_typo_is_one_line(bundle_dir, capsys, command, flag, value, says):
    assert main([command, "--bundle", str(bundle_dir), flag, value, "--frames", "1"]) == 2
    captured = capsys.readouterr()
    assert len(captured.err.splitlines()) == 1 and captured.err.startswith("error: "), captured.err
    for text in says:
        assert text in captured.err, captured.err
    assert "Traceback" not in captured.out + captured.err
