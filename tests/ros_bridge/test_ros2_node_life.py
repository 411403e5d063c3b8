"""The ROS 2 node's life beside the camera, each test with a node of its own (real rclpy,
Jazzy, Fast DDS; ros2_probe.py plays camera and robot): live parameter changes, what `ros2
launch` passes, unknown parameters, QoS that never matches, simulated time, SIGINT / SIGTERM.
The live node of test_ros2_live.py is gone by then (module scope), so nothing else runs
inference beside these nodes."""

from __future__ import annotations

import signal
import subprocess
import time

import numpy as np
import pytest
from ros2_helpers import ROOT, assert_clean_exit, node_command, run_probe, start_node

pytestmark = pytest.mark.ros2

H, W = 120, 160


def test_live_parameters_take_effect_on_the_next_frame(ros2_env, bundle_dir, tmp_path):
    node = start_node(ros2_env, bundle_dir, tmp_path, "edgefuse_params", "-p", "diagnostics_period:=0.5")
    try:
        seen = run_probe(ros2_env, "--node", "/edgefuse_params", "--frames", "30", "--rate", "10", "--depth-holes",
                         "--overlay", "--keep-masks", "1",
                         "--set", "10", "min_depth_valid=1.0", "--set", "10", "overlay_alpha=0.0",
                         "--set", "10", "budget_ms=500.0", "--set", "10", "sync_slop=0.05",
                         "--set", "10", "depth_timeout=2.0",
                         "--set", "20", "bundle=/elsewhere", "--set", "20", "sync_slop=-1.0",
                         "--set", "20", "rgb_topic=/other")
    finally:
        code = node.stop()
    assert_clean_exit(node, code)
    results = {(s["name"], s["successful"]) for s in seen["set"]}
    assert {("min_depth_valid", True), ("overlay_alpha", True), ("budget_ms", True), ("sync_slop", True),
            ("depth_timeout", True), ("bundle", False), ("sync_slop", False), ("rgb_topic", False)} == results
    reasons = {s["name"]: s["reason"] for s in seen["set"] if not s["successful"]}
    assert "restart the node" in reasons["bundle"] and "live:" in reasons["bundle"]
    assert "must be > 0" in reasons["sync_slop"]
    sent, info = seen["sent"], {i["stamp_ns"]: i for i in seen["frame_info"]}
    before = [info[s] for s in sent[:10] if s in info]
    after = [info[s] for s in sent[10:] if s in info]
    # 1/120 of the depth is 0: healthy at min_depth_valid 0.5, RGB-only once 1.0 is asked.
    assert before and all(i["reason"] != "depth_fallback" for i in before)
    assert after and all(i["reason"] == "depth_fallback" for i in after)
    # overlay_alpha 0: the overlay is the camera image itself.
    rgb_mean = float(np.random.default_rng(0).integers(0, 256, (H, W, 3), dtype=np.uint8).mean())
    overlay = dict(zip([o["stamp"] for o in seen["overlay"]], seen["overlay_data"]))
    assert any(abs(overlay[s] - rgb_mean) > 1.0 for s in sent[:10] if s in overlay)
    assert all(abs(overlay[s] - rgb_mean) < 1e-6 for s in sent[11:] if s in overlay)
    assert "parameters changed: min_depth_valid=1.0" in node.output()


def test_unknown_parameter_is_refused_with_the_valid_ones(ros2_env, bundle_dir, tmp_path):
    out = subprocess.run(node_command(ros2_env, bundle_dir, "edgefuse_typo", "-p", "sync_slp:=0.05"),
                         env=ros2_env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    err = out.stderr + out.stdout
    assert "sync_slp" in err and "sync_slop" in err and "Traceback" not in err


def test_the_package_node_takes_what_ros2_launch_passes(ros2_env, bundle_dir, tmp_path):
    """What `ros2 launch edgefuse_ros segmentation.launch.py` runs (launch_ros has no wheels
    here): the package's edgefuse_node script with `--ros-args -r __node:=NAME --params-file
    FILE`, the file holding typed values, plus the parameters rclpy declares itself
    (use_sim_time, Jazzy's start_type_description_service) for every node (`/**`)."""
    script = ROOT / "ros_bridge" / "packages" / "ros2" / "edgefuse_ros" / "scripts" / "edgefuse_node"
    params = tmp_path / "params.yaml"
    params.write_text("/**:\n  ros__parameters:\n    use_sim_time: false\n    start_type_description_service: true\n"
                      "/edgefuse_launch:\n  ros__parameters:\n"
                      f"    bundle: {bundle_dir}\n    budget_ms: 0.0\n    sync_slop: 0.02\n    mask_size: camera\n"
                      "    register_depth: false\n    calibration: ''\n    input_timeout: 1.0\n")
    cmd = [ros2_env["ROS2_PYTHON"], str(script), "--ros-args", "-r", "__node:=edgefuse_launch",
           "--params-file", str(params)]
    out = subprocess.run(cmd, env=ros2_env, capture_output=True, text=True, timeout=120)
    err = out.stderr + out.stdout
    # It loads the bundle, subscribes and waits for a camera that never comes: the start-up error.
    assert out.returncode == 2 and "no image arrived on /camera/camera/color/image_raw within 1 s" in err, err
    assert "unknown" not in err and "Traceback" not in err


def test_reliable_input_against_a_best_effort_camera_is_reported(ros2_env, bundle_dir, tmp_path):
    node = start_node(ros2_env, bundle_dir, tmp_path, "edgefuse_qos", "-p", "input_qos:=reliable",
                 "-p", "input_timeout:=0.0")
    try:
        seen = run_probe(ros2_env, "--node", "/edgefuse_qos", "--frames", "10", "--rate", "10", "--camera-qos",
                         "best_effort", "--wait", "2", "--graph-ready")
    finally:
        code = node.stop()
    assert_clean_exit(node, code)
    lines = [ln for ln in node.output().splitlines() if "QoS incompatible" in ln]
    color = [ln for ln in lines if "/camera/camera/color/image_raw" in ln]
    assert len(color) == 1, node.output()[-3000:]
    assert "requests reliable" in color[0] and "offers best_effort" in color[0]
    assert "input_qos:=auto" in color[0]
    assert not seen["mask"]          # nothing matched: the log line is all the user gets


def test_auto_input_qos_follows_a_camera_that_starts_later(ros2_env, bundle_dir, tmp_path):
    """Started before the camera, the node subscribes best effort (it matches anything); once a
    reliable camera appears (realsense-ros' default) it re-subscribes reliable, so no 640x480
    frame is lost in the middleware (a best-effort reader loses most of their fragments)."""
    node = start_node(ros2_env, bundle_dir, tmp_path, "edgefuse_auto", "-p", "diagnostics_period:=0.5",
                 "-p", "input_timeout:=0.0")
    try:
        deadline = time.monotonic() + 120
        while "edgefuse: " not in node.output() and time.monotonic() < deadline:   # subscribed, no camera yet
            time.sleep(0.2)
        run_probe(ros2_env, "--node", "/edgefuse_auto", "--frames", "5", "--rate", "5", "--size", "480x640")
        seen = run_probe(ros2_env, "--node", "/edgefuse_auto", "--frames", "45", "--rate", "15", "--size", "480x640")
    finally:
        code = node.stop()
    assert_clean_exit(node, code)
    log = node.output()
    assert "/camera/camera/color/image_raw: subscribed reliable, as its publishers offer" in log, log[-3000:]
    assert "QoS incompatible" not in log
    assert len(seen["mask"]) >= 20
    # Frames of the first camera may be lost in the second before the switch, none after.
    lost = [int(d["values"]["lost in transport (total)"]) for d in seen["diagnostics"]]
    assert lost and max(lost) == min(lost)


def test_simulated_time_keeps_stamps_and_times_out_in_simulated_seconds(ros2_env, bundle_dir, tmp_path):
    """A bag played back with /clock at 5x: the masks carry the input stamps, /diagnostics is
    stamped in simulated time, and a 3 s depth timeout passes in 0.6 s of wall time."""
    node = start_node(ros2_env, bundle_dir, tmp_path, "edgefuse_sim", "-p", "use_sim_time:=true",
                 "-p", "depth_timeout:=3.0", "-p", "diagnostics_period:=0.5")
    try:
        seen = run_probe(ros2_env, "--node", "/edgefuse_sim", "--frames", "30", "--rate", "10", "--clock", "5",
                         "--depth-stop", "5", "--t0", "1830000000000000000")
    finally:
        code = node.stop()
    assert_clean_exit(node, code)
    sent, masks = seen["sent"], seen["mask"]
    assert len(masks) >= 15 and all(m["stamp"] in sent for m in masks)
    info = {i["stamp_ns"]: i for i in seen["frame_info"]}
    # Depth stops at frame 5; 3 simulated seconds are 0.6 s of wall time = 6 frames at 10 Hz.
    # On the wall clock no frame of this 3 s run would time out (3 s after frame 5 is frame 35).
    timed_out = [k for k, s in enumerate(sent) if s in info and "depth_timeout" in info[s]["events"]]
    assert timed_out and timed_out[0] <= 5 + 6 + 3, timed_out
    sim = [d["stamp"] for d in seen["diagnostics"]]
    assert sim and all(1_830_000_000_000_000_000 <= s <= seen["clock_end"] for s in sim[1:])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signals_end_the_node_cleanly(ros2_env, bundle_dir, tmp_path, sig):
    """The signal comes while the camera still publishes and the worker runs inference."""
    name = f"edgefuse_{sig.name.lower()}"
    node = start_node(ros2_env, bundle_dir, tmp_path, name)
    try:
        seen = run_probe(ros2_env, "--node", f"/{name}", "--frames", "90", "--rate", "30", "--size", "480x640",
                         "--signal", str(node.proc.pid), str(int(sig)), "3", "--wait", "0.5")
        assert len(seen["mask"]) >= 3
        code = node.proc.wait(30)
    finally:
        node.stop()
    assert_clean_exit(node, code)
