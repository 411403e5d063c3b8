"""The node under a real roscore (ROS 1, rospy), started with `edgefuse ros` and fed by a
publisher process (ros1_probe.py), checked on what arrives: exact stamps and frame_id,
mono8 / rgb8 sizes, diagnostics, lazy overlay, drops when the input outruns inference,
malformed messages survived. The launch file and start-up errors: test_ros1_launch.py."""

from __future__ import annotations

import sys

import pytest
from ros1_helpers import NodeProcess, run_probe

pytestmark = pytest.mark.ros1

H, W = 120, 160


def _node(env, bundle_dir, tmp_path, name, *ros_args):
    cmd = [sys.executable, "-m", "edgefuse.cli.main", "ros", "--bundle", str(bundle_dir), "--ros", "1",
           "--threads", "1", f"__name:={name}", *ros_args]
    return NodeProcess(cmd, env, tmp_path / f"{name}.log")


@pytest.fixture(scope="module")
def live_node(ros1_env, bundle_dir, tmp_path_factory):
    node = _node(ros1_env, bundle_dir, tmp_path_factory.mktemp("node"), "edgefuse_live", "_diagnostics_period:=0.5")
    yield node
    code = node.stop()
    assert code == 0, f"the node did not stop cleanly on SIGINT ({code}): {node.output()[-3000:]}"


def _ns(stamp):
    return stamp[0] * 1_000_000_000 + stamp[1]


def test_masks_carry_input_header_and_sizes(ros1_env, live_node, bundle_dir):
    seen = run_probe(ros1_env, "--node", "/edgefuse_live", "--frames", "12", "--rate", "10", "--size", f"{H}x{W}", "--settle", "1")
    sent, masks = seen["sent"], seen["mask"]
    assert len(masks) >= 6, live_node.output()[-3000:]     # 10 Hz: the node keeps up (drops are counted)
    assert all(_ns(m["stamp"]) in sent for m in masks)     # the input's stamp, to the nanosecond
    assert {m["frame_id"] for m in masks} == {"camera_color_optical_frame"}
    m = masks[0]
    assert (m["encoding"], m["height"], m["width"], m["step"], m["bytes"]) == ("mono8", H, W, W, H * W)
    classes = seen["classes"][0]["classes"]
    assert classes[0] == "void" and 1 <= m["min"] and m["max"] < len(classes)
    c = seen["mask_color"][0]
    assert (c["encoding"], c["height"], c["width"], c["step"]) == ("rgb8", H, W, 3 * W)
    assert [_ns(c["stamp"]) for c in seen["mask_color"]] == [_ns(m["stamp"]) for m in masks]
    info = seen["frame_info"]
    assert [i["stamp_ns"] for i in info] == [_ns(m["stamp"]) for m in masks]
    assert all(i["outputs"] == ["mask", "mask_color"] for i in info)       # overlay: nobody listens
    assert all(i["reason"] != "depth_fallback" and i["depth_valid_fraction"] == 1.0 for i in info)
    assert all(0 < i["publish_delay_ms"] and i["latency_ms"]["total"] > 0 for i in info)
    diag = seen["diagnostics"]
    assert diag and diag[0]["name"] == "edgefuse_live: segmentation"
    assert any(float(d["values"]["output rate (Hz)"]) > 0 and d["values"]["latency p50 (ms)"] != "-" for d in diag)
    assert max(int(d["values"]["frames out (total)"]) for d in diag) >= len(masks)
    # The node runs the pipelined step (its default): its masks are the sequential step's.
    assert "pipelined per-frame step" in live_node.output()
    assert {m["crc32"] for m in masks} == {_sequential_mask_crc(bundle_dir)}


def _sequential_mask_crc(bundle_dir):
    """crc32 of the mask the sequential step (no threads) gives for the probe's frame."""
    import zlib

    import numpy as np
    from ros_fixtures import RecordingTransport, image_msg

    from edgefuse.ros_bridge.config import NodeConfig
    from edgefuse.ros_bridge.core import NodeCore
    from edgefuse.ros_bridge.messages import Topic

    rgb = np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8)      # the probe's image
    transport = RecordingTransport()
    core = NodeCore(NodeConfig(bundle=str(bundle_dir), threads=1, pipeline=False), transport)
    core.start(worker=False)
    try:
        core.on_depth(image_msg(np.full((H, W), 1200, np.uint16), "16UC1", 1))
        core.on_color(image_msg(rgb, "rgb8", 1))
        assert core.handle(core.slot.take(timeout=0)).record["reason"] != "depth_fallback"
    finally:
        core.stop()
    (mask,) = transport.on(Topic.MASK)
    return zlib.crc32(mask.image.data.tobytes())


def test_overlay_only_while_subscribed(ros1_env, live_node):
    seen = run_probe(ros1_env, "--node", "/edgefuse_live", "--frames", "6", "--rate", "10", "--overlay")
    overlays = seen["overlay"]
    assert overlays and len(overlays) == len(seen["mask"])
    o = overlays[0]
    assert (o["encoding"], o["height"], o["width"]) == ("rgb8", H, W)
    assert {_ns(o["stamp"]) for o in overlays} == {_ns(m["stamp"]) for m in seen["mask"]}
    assert all("overlay" in i["outputs"] for i in seen["frame_info"])


def test_malformed_messages_are_survived_and_counted(ros1_env, live_node):
    seen = run_probe(ros1_env, "--node", "/edgefuse_live", "--bad", "--frames", "6", "--rate", "10",
                     "--float-depth", "--t0", "1800000000000000001")
    # After the bad messages, the good frames (32FC1 depth in metres) are segmented normally.
    good = [i for i in seen["frame_info"] if i["stamp_ns"] in seen["sent"]]
    assert len(good) >= 3 and all(i["reason"] != "depth_fallback" for i in good)
    bad = [i for i in seen["frame_info"] if i["stamp_ns"] not in seen["sent"]]
    assert len(bad) == 2 and all(i["reason"] == "depth_fallback" for i in bad)   # depth size, NaN depth
    assert any("depth_size_mismatch" in i["events"] for i in bad)
    causes = " ".join(d["values"]["bad inputs"] for d in seen["diagnostics"])
    assert "encoding: 1" in causes and "short_buffer: 1" in causes and "size_mismatch: 1" in causes
    assert any(d["level"] == 1 for d in seen["diagnostics"])          # WARN
    log = live_node.output()
    assert "yuv422" in log and "holds 480 bytes" in log and "Traceback" not in log
    assert live_node.proc.poll() is None                                # still running


def test_drops_are_counted_when_input_outruns_inference(ros1_env, live_node):
    seen = run_probe(ros1_env, "--node", "/edgefuse_live", "--frames", "60", "--rate", "0", "--size", "480x640",
                     "--wait", "3", "--settle", "1")
    assert 0 < len(seen["mask"]) < 60
    dropped = sum(i["dropped"] for i in seen["frame_info"])
    assert dropped > 0
    total = max(int(d["values"]["dropped (total)"]) for d in seen["diagnostics"])
    assert total >= dropped
    assert any("frames dropped" in d["message"] for d in seen["diagnostics"])
