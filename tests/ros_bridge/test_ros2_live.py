"""The node on a real ROS 2 (Jazzy rclpy, Fast DDS), started as a user starts it (`edgefuse
ros --ros 2 --ros-args ...`) and fed by a real rclpy publisher in another process
(ros2_probe.py), checked on what arrives: everything the ROS 1 suite checks (exact stamps and
frame_id, mono8 = --save-masks, depth timeout -> RGB-only path, drops counted, bad messages
survived, unknown parameters refused) plus what ROS 2 adds (the distribution's own
parameters, QoS, latched classes, live parameters, simulated time, SIGINT / SIGTERM)."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from ros1_helpers import NodeProcess
from ros2_helpers import ROOT, node_command, run_probe

pytestmark = pytest.mark.ros2

H, W = 120, 160


def _node(env, bundle, tmp, name, *ros_args, options=()):
    return NodeProcess(node_command(env, bundle, name, *ros_args, options=options), env, tmp / f"{name}.log")


def _clean_exit(node, code):
    out = node.output()
    assert code == 0, f"the node did not stop cleanly ({code}): {out[-3000:]}"
    assert "Traceback" not in out and "terminate called" not in out, out[-3000:]


@pytest.fixture(scope="module")
def live_node(ros2_env, bundle_dir, tmp_path_factory):
    node = _node(ros2_env, bundle_dir, tmp_path_factory.mktemp("node2"), "edgefuse_live",
                 "-p", "diagnostics_period:=0.5")
    yield node
    _clean_exit(node, node.stop())


def test_masks_carry_input_header_and_sizes(ros2_env, live_node):
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "12", "--rate", "10", "--size", f"{H}x{W}")
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
    """The mono8 mask on the topic holds what `edgefuse run --save-masks` writes for the same
    image (frames at the bundle's size, so neither resizes)."""
    from PIL import Image

    h, w = json.loads((bundle_dir / "manifest.json").read_text())["input_size"]
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "4", "--rate", "10", "--size", f"{h}x{w}")
    topic = np.frombuffer(base64.b64decode(seen["mask_data"][0]), np.uint8).reshape(h, w)
    folder = tmp_path / "frames"
    (folder / "rgb").mkdir(parents=True)
    (folder / "depth").mkdir()
    rgb = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)      # the probe's image
    Image.fromarray(rgb).save(folder / "rgb" / "000000.png")
    Image.fromarray(np.full((h, w), 1200, np.uint16)).save(folder / "depth" / "000000.png")
    out = subprocess.run([sys.executable, "-m", "edgefuse.cli.main", "run", "--bundle", str(bundle_dir), "--camera",
                          f"folder:{folder}", "--save-masks", str(tmp_path / "masks"), "--threads", "1"],
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
    assert info[0]["reason"] != "depth_fallback"
    late = info[-8:]
    assert all(i["reason"] == "depth_fallback" and "depth_timeout" in i["events"] for i in late), late
    assert any("depth missing" in d["message"] for d in seen["diagnostics"])
    assert "no depth message for 1 s" in live_node.output()


def test_drops_are_counted_when_input_outruns_inference(ros2_env, live_node):
    """Images the worker never took (the newest-only slot) and images the middleware lost
    before the node (a best-effort reader behind a fast camera) are both counted."""
    seen = run_probe(ros2_env, "--node", "/edgefuse_live", "--frames", "60", "--rate", "0", "--size", "480x640",
                     "--wait", "3", "--t0", "1820000000000000000")
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


def test_live_parameters_take_effect_on_the_next_frame(ros2_env, bundle_dir, tmp_path):
    node = _node(ros2_env, bundle_dir, tmp_path, "edgefuse_params", "-p", "diagnostics_period:=0.5")
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
    _clean_exit(node, code)
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
    node = _node(ros2_env, bundle_dir, tmp_path, "edgefuse_qos", "-p", "input_qos:=reliable",
                 "-p", "input_timeout:=0.0")
    try:
        seen = run_probe(ros2_env, "--node", "/edgefuse_qos", "--frames", "10", "--rate", "10", "--camera-qos",
                         "best_effort", "--wait", "2", "--graph-ready")
    finally:
        code = node.stop()
    _clean_exit(node, code)
    lines = [ln for ln in node.output().splitlines() if "QoS incompatible" in ln]
    color = [ln for ln in lines if "/camera/camera/color/image_raw" in ln]
    assert len(color) == 1, node.output()[-3000:]
    assert "requests reliable" in color[0] and "offers best_effort" in color[0]
    assert "input_qos:=sensor_data" in color[0]
    assert not seen["mask"]          # nothing matched: the log line is all the user gets


def test_simulated_time_keeps_stamps_and_times_out_in_simulated_seconds(ros2_env, bundle_dir, tmp_path):
    """A bag played back with /clock at 5x: the masks carry the input stamps, /diagnostics is
    stamped in simulated time, and a 3 s depth timeout passes in 0.6 s of wall time."""
    node = _node(ros2_env, bundle_dir, tmp_path, "edgefuse_sim", "-p", "use_sim_time:=true",
                 "-p", "depth_timeout:=3.0", "-p", "diagnostics_period:=0.5")
    try:
        seen = run_probe(ros2_env, "--node", "/edgefuse_sim", "--frames", "30", "--rate", "10", "--clock", "5",
                         "--depth-stop", "5", "--t0", "1830000000000000000")
    finally:
        code = node.stop()
    _clean_exit(node, code)
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
    node = _node(ros2_env, bundle_dir, tmp_path, name)
    try:
        seen = run_probe(ros2_env, "--node", f"/{name}", "--frames", "30", "--rate", "30", "--size", "480x640",
                         "--signal", str(node.proc.pid), str(int(sig)), "15", "--wait", "0.5")
        assert seen["mask"]
        code = node.proc.wait(30)
    finally:
        node.stop()
    _clean_exit(node, code)
