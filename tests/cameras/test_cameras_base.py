"""Camera specs, options and the FrameSource contract."""

from __future__ import annotations

import pytest

from edgefuse.cameras import SOURCES, Frame, FrameSource, Intrinsics, open_source, parse_spec
from edgefuse.cameras.sources import source_class
from edgefuse.errors import ConfigError, EdgefuseError


@pytest.mark.parametrize("spec, kind, target, split", [
    ("synthetic", "synthetic", None, None),
    ("synthetic:7", "synthetic", "7", None),
    ("realsense", "realsense", None, None),
    ("realsense:012345678901", "realsense", "012345678901", None),
    ("bag:/data/run.db3", "bag", "/data/run.db3", None),
    ("rosbag:/data/ros2_bag", "rosbag", "/data/ros2_bag", None),
    ("folder:/nonexistent/ds:train", "folder", "/nonexistent/ds", "train"),
    ("folder:/nonexistent/ds", "folder", "/nonexistent/ds", None),
])
def test_parse_spec(spec, kind, target, split):
    s = parse_spec(spec)
    assert (s.kind, s.target, s.split) == (kind, target, split)


def test_folder_spec_keeps_existing_dir_with_colon(tmp_path):
    d = tmp_path / "a:b"
    d.mkdir()
    s = parse_spec(f"folder:{d}")
    assert s.target == str(d) and s.split is None


@pytest.mark.parametrize("spec", ["", "webcam", "kinect:0", "bag", "folder:", "rosbag", "synthetic:seven"])
def test_bad_specs_list_valid_ones(spec):
    with pytest.raises(ConfigError) as err:
        open_source(spec)
    msg = str(err.value)
    assert isinstance(err.value, EdgefuseError)
    if spec in ("", "webcam", "kinect:0"):
        for usage in ("realsense[:SERIAL]", "bag:FILE", "rosbag:FILE", "folder:DIR", "synthetic[:SEED]"):
            assert usage in msg


def test_unknown_option_lists_valid_ones():
    with pytest.raises(ConfigError, match="valid keys are: .*fps.*frames"):
        open_source("synthetic", fsp=30)


def test_none_options_are_ignored_and_every_source_takes_common_options():
    for kind in SOURCES:
        fields = source_class(kind).Options.__dataclass_fields__
        assert {"frames", "realtime"} <= set(fields), kind
    src = open_source("synthetic:3", frames=None, realtime=None, size=(32, 48))
    assert src.max_frames is None and src.options.size == (32, 48)


class _Counting(FrameSource):
    def __init__(self, n, frames=None):
        super().__init__("counting", frames=frames)
        self.n, self.opened, self.closed = n, 0, 0

    def _open(self):
        self.opened += 1

    def _close(self):
        self.closed += 1

    def _frames(self):
        for i in range(self.n):
            yield Frame(rgb=None, depth=None, timestamp=float(i), index=i)


def test_source_lifecycle_and_frames_limit():
    src = _Counting(5, frames=3)
    with src:
        assert [f.index for f in src] == [0, 1, 2]
        assert list(src) == []  # the limit holds across iterations
    assert (src.opened, src.closed) == (1, 1)
    src.close()
    assert src.closed == 1
    with pytest.raises(ConfigError):
        _Counting(1, frames=-1)


def test_intrinsics_roundtrip_and_scaling():
    intr = Intrinsics.from_dict({"fx": 615.0, "fy": 615.0, "cx": 320.0, "cy": 240.0, "width": 640, "height": 480})
    assert Intrinsics.from_dict(intr.to_dict()) == intr
    half = intr.scaled((240, 320))
    assert (half.fx, half.cx, half.width, half.height) == (307.5, 160.0, 320, 240)
