"""The node on a real ROS 2 (Jazzy rclpy, Fast DDS), started as a user starts it (`edgefuse
ros --ros 2 --ros-args ...`) and fed by a real rclpy publisher in another process
(ros2_probe.py), checked on what arrives: everything the ROS 1 suite checks (exact stamps and
frame_id, mono8 = --save-masks, depth timeout -> RGB-only path, drops counted, bad messages
survived, unknown parameters refused) plus what ROS 2 adds (the distribution's own
parameters, QoS, latched classes, live parameters, simulated time, SIGINT / SIGTERM)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import numpy as np
import pytest
from ros2_helpers import assert_clean_exit, run_probe, start_node

pytestmark = pytest.mark.ros2

H, W = 120, 160


@pytest.fixture(scope="module")
def live_node(ros2_env, bundle_dir, tmp_path_factory):
    node = start_node(ros2_env, bundle_dir, tmp_path_factory.mktemp("node2"), "edgefuse_live",
                 "-p", "diagnostics_period:=0.5")
    yield node
    assert_clean_exit(node, node.stop())


def test_masks_carry_input_header_and_sizes(ros2_env, live_node):
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "12", "--rate", "10", "--size", f"{H}x{W}", "--settle", "1")
    sent, masks = seen["sent"], seen["mask"]
    assert len(masks) >= 6, live_node.output()[-3000:]
    assert all(m["stamp"] in sent for m in masks)            # the input's stamp, to the nanosecond
    assert {m["frame_id"] for m in masks} == {"camera_color_optical_frame"}
    m = masks[0]
    assert (m["encoding"], m["height"], m["width"], m["step"], m["bytes"]) == ("mono8", H, W, W, H * W)
    classes = seen["classes"][0]["classes"]
    assert classes[0] == "void" and 1 <= m["min"] and m["max"] < len(classes)
    c = seen["mask_color"][0]
    assert (c["encoding"], c["height"], c["width"], c["step"]) == ("rgb8", H, W, 3 * W)
    assert [c["stamp"] for c in seen["mask_color"]] == [m["stamp"] for m in masks]
    info = seen["frame_info"]
    assert [i["stamp_ns"] for i in info] == [m["stamp"] for m in masks]
    assert all(i["outputs"] == ["mask", "mask_color"] for i in info)       # overlay: nobody listens
    assert all(i["reason"] != "depth_fallback" and i["depth_valid_fraction"] == 1.0 for i in info)
    diag = seen["diagnostics"]
    assert diag and diag[0]["name"] == "edgefuse_live: segmentation"
    assert any(float(d["values"]["output rate (Hz)"]) > 0 and d["values"]["latency p50 (ms)"] != "-" for d in diag)
    assert max(int(d["values"]["frames out (total)"]) for d in diag) >= len(masks)


def test_best_effort_camera_is_received(ros2_env, live_node):
    """The default input QoS (sensor data, best effort) takes a best-effort camera as well as
    the reliable one of the test above."""
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "10", "--rate", "10",
                     "--camera-qos", "best_effort")
    assert len(seen["mask"]) >= 6 and all(m["stamp"] in seen["sent"] for m in seen["mask"])


def test_mask_values_equal_save_masks(ros2_env, live_node, bundle_dir, tmp_path):
    """The mono8 mask on the topic (the node's pipelined step, its default) holds what the
    sequential `edgefuse run --no-pipeline --save-masks` writes for the same image (frames at
    the bundle's size, so neither resizes)."""
    from PIL import Image

    h, w = json.loads((bundle_dir / "manifest.json").read_text())["input_size"]
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "4", "--rate", "10", "--size", f"{h}x{w}",
                     "--keep-masks", "4")
    # A frame that ran with its depth (the first after a silence may run RGB-only: depth_timeout).
    fused = {i["stamp_ns"] for i in seen["frame_info"] if i["reason"] != "depth_fallback"}
    mask = next(m for m in seen["mask_data"] if m["stamp"] in fused)
    topic = np.frombuffer(base64.b64decode(mask["data"]), np.uint8).reshape(h, w)
    folder = tmp_path / "frames"
    (folder / "rgb").mkdir(parents=True)
    (folder / "depth").mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)      # the probe's image
    Image.fromarray(rgb).save(folder / "rgb" / "000000.png")
    Image.fromarray(np.full((h, w), 1200, np.uint16)).save(folder / "depth" / "000000.png")
    out = subprocess.run([sys.executable, "-m", "edgefuse.cli.main", "run", "--bundle", str(bundle_dir), "--camera",
                          f"folder:{folder}", "--save-masks", str(tmp_path / "masks"), "--threads", "1",
                          "--no-pipeline"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    saved = np.asarray(Image.open(tmp_path / "masks" / "000000_labels.png"))
    assert saved.shape == topic.shape and (saved == topic).all()


def test_overlay_only_while_subscribed(ros2_env, live_node):
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "6", "--rate", "10", "--overlay")
    overlays = seen["overlay"]
    assert overlays and len(overlays) == len(seen["mask"])
    o = overlays[0]
    assert (o["encoding"], o["height"], o["width"]) == ("rgb8", H, W)
    assert {o["stamp"] for o in overlays} == {m["stamp"] for m in seen["mask"]}
    assert all("overlay" in i["outputs"] for i in seen["frame_info"])


def test_malformed_messages_are_survived_and_counted(ros2_env, live_node):
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--bad", "--frames", "6", "--rate", "10",
                     "--float-depth", "--t0", "1800000000000000001")
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


def test_depth_timeout_runs_the_rgb_only_path(ros2_env, live_node):
    """Depth stops: after depth_timeout (1 s) colour frames go on alone, marked, RGB-only."""
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "30", "--rate", "10", "--depth-stop", "4",
                     "--t0", "1810000000000000000")
    info = seen["frame_info"]
    # Before the stop frames pair with depth (the very first may beat its depth to the node after
    # the previous test's silence, and run RGB-only: depth was gone for longer than the timeout).
    assert any(i["reason"] != "depth_fallback" for i in info[:4]), info[:4]
    late = info[-8:]
    assert all(i["reason"] == "depth_fallback" and "depth_timeout" in i["events"] for i in late), late
    assert any("depth missing" in d["message"] for d in seen["diagnostics"])
    assert "no depth message for 1 s" in live_node.output()


def test_drops_are_counted_when_input_outruns_inference(ros2_env, live_node):
    """Images the worker never took (the newest-only slot) and images the middleware lost
    before the node (a best-effort reader behind a fast camera) are both counted."""
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "60", "--rate", "0", "--size", "480x640",
                     "--wait", "3", "--settle", "1", "--t0", "1820000000000000000")
    assert 0 < len(seen["mask"]) < 60 and all(m["stamp"] in seen["sent"] for m in seen["mask"])
    diag = seen["diagnostics"]
    dropped = max(int(d["values"]["dropped (total)"]) for d in diag)
    lost = max(int(d["values"]["lost in transport (total)"]) for d in diag)
    assert dropped >= sum(i["dropped"] for i in seen["frame_info"])
    assert dropped + lost > 0
    assert any("frames dropped" in d["message"] or "lost before reaching the node" in d["message"] for d in diag)
    assert any(d["level"] == 1 for d in diag)


def test_classes_are_latched_for_a_late_subscriber(ros2_env, live_node):
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "2", "--rate", "10", "--late-classes",
                     "--wait", "2")
    assert seen["classes"] and seen["classes"][0]["classes"][0] == "void"
