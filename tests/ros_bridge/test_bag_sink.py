"""`edgefuse run --camera rosbag:IN --save-bag OUT`: ROS 1 and ROS 2 bags (sqlite3, mcap)
written here with rosbags go through the real pipeline and are read back: one mask per
input frame, exact stamps and frame_id, encodings and sizes as the live node publishes."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ros_fixtures import FRAME_ID, H, TOPICS, W, read_bag, stamp, write_input_bag

from edgefuse.cli.main import main

N = 4


@pytest.mark.parametrize("source,out_name,storage", [
    ("ros1", "out.bag", None),          # ROS 1 in, ROS 1 out
    ("sqlite3", "out_mcap", "mcap"),    # ROS 2 sqlite3 in, ROS 2 mcap out (the default storage, named)
    ("mcap", "out_sqlite", "sqlite3"),  # ROS 2 mcap in, ROS 2 sqlite3 out
])
def test_save_bag_round_trip(bundle_dir, tmp_path, source, out_name, storage):
    src = tmp_path / ("in.bag" if source == "ros1" else "in")
    write_input_bag(src, N, ros1=source == "ros1", storage=source if source != "ros1" else "sqlite3")
    out = tmp_path / out_name
    args = ["run", "--bundle", str(bundle_dir), "--camera", f"rosbag:{src}", "--save-bag", str(out),
            "--bag-inputs", "--threads", "1", "--json"]
    assert main(args + (["--bag-storage", storage] if storage else [])) == 0
    if storage == "mcap":
        assert list(out.glob("*.mcap")) and (out / "metadata.yaml").is_file()
    if storage == "sqlite3":
        assert list(out.glob("*.db3"))
    bag = read_bag(out)
    stamps = [stamp(i) for i in range(N)]
    masks = bag["/edgefuse/mask"]
    assert len(masks) == N                                                   # one mask per input frame
    for (log_ns, m), ns in zip(masks, stamps):
        assert log_ns == ns and (m.header.stamp.sec, m.header.stamp.nanosec) == divmod(ns, 1_000_000_000)
        assert m.header.frame_id == FRAME_ID
        assert (m.encoding, m.height, m.width, m.step) == ("mono8", H, W, W)  # the camera's size
    colors = bag["/edgefuse/mask_color"]
    assert [c.header.stamp.nanosec for _, c in colors] == [m.header.stamp.nanosec for _, m in masks]
    assert (colors[0][1].encoding, colors[0][1].step) == ("rgb8", 3 * W)
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    palette = np.asarray(manifest["palette"], np.uint8)
    values = masks[0][1].data.reshape(H, W)
    assert 1 <= values.min() and values.max() <= len(manifest["classes"])
    np.testing.assert_array_equal(colors[0][1].data.reshape(H, W, 3), palette[values])
    infos = [json.loads(s.data) for _, s in bag["/edgefuse/frame_info"]]
    assert [i["stamp_ns"] for i in infos] == stamps and {i["frame_id"] for i in infos} == {FRAME_ID}
    assert "publish_delay_ms" not in infos[0] and infos[0]["latency_ms"]["total"] > 0
    # --bag-inputs: what the pipeline saw, under the input's topic names, with the same stamps.
    assert [t for t, _ in bag[TOPICS["color"]]] == stamps
    (_, color), (_, depth), (_, info) = bag[TOPICS["color"]][1], bag[TOPICS["depth"]][1], bag[TOPICS["info"]][1]
    assert color.encoding == "rgb8" and depth.encoding == "16UC1"
    assert depth.data.view(np.uint16).reshape(H, W)[5, 5] == 1510
    k = info.K if hasattr(info, "K") else info.k
    assert list(k)[:3] == [50.0, 0.0, 32.0] and list(info.D if hasattr(info, "D") else info.d)[0] == 0.1
    assert "/edgefuse/overlay" not in bag and "/diagnostics" not in bag


def test_save_bag_refuses_bad_arguments(bundle_dir, tmp_path, capsys):
    base = ["run", "--bundle", str(bundle_dir), "--camera", "synthetic", "--frames", "1"]
    assert main(base + ["--bag-inputs"]) == 2
    assert "need --save-bag" in capsys.readouterr().err
    assert main(base + ["--save-bag", str(tmp_path / "x.bag"), "--bag-storage", "mcap"]) == 2
    assert "ROS 1 .bag" in capsys.readouterr().err
    assert main(base + ["--save-bag", str(tmp_path / "y"), "--bag-storage", "zip"]) == 2
    assert "choose mcap or sqlite3" in capsys.readouterr().err
    (tmp_path / "z").mkdir()
    assert main(base + ["--save-bag", str(tmp_path / "z")]) == 2
    assert "exists" in capsys.readouterr().err


def test_save_bag_from_a_non_ros_source_has_float_stamps_as_ns(bundle_dir, tmp_path):
    out = tmp_path / "synth.bag"
    assert main(["run", "--bundle", str(bundle_dir), "--camera", "synthetic:1", "--frames", "2",
                 "--save-bag", str(out), "--bag-inputs"]) == 0
    bag = read_bag(out)
    assert len(bag["/edgefuse/mask"]) == 2 and "/camera/color/image_raw" in bag     # ROS 1 default names
    (_, m) = bag["/edgefuse/mask"][0]
    assert (m.height, m.width) == (64, 128)
