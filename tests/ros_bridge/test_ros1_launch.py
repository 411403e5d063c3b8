"""The node as a ROS user starts it: the edgefuse_ros package's launch file under roslaunch
(a depth topic nobody publishes: RGB-only frames, marked), and the one-line start-up errors
of `edgefuse ros` (no master, a bundle that cannot load, an input topic that never appears)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from ros1_helpers import NodeProcess, free_port, run_probe

pytestmark = pytest.mark.ros1


def test_missing_depth_topic_via_roslaunch(ros1_env, bundle_dir, tmp_path):
    """The package's launch file, a depth topic nobody publishes: RGB-only frames, marked."""
    node = NodeProcess(["roslaunch", "edgefuse_ros", "segmentation.launch", f"bundle:={bundle_dir}",
                        "node_name:=edgefuse_nodepth", "depth_topic:=/camera/nothing", "depth_timeout:=0.3"],
                       ros1_env, tmp_path / "roslaunch.log")
    try:
        seen = run_probe(ros1_env, "--node", "/edgefuse_nodepth", "--frames", "10", "--rate", "10", "--no-depth")
    finally:
        code = node.stop()
    assert len(seen["mask"]) >= 5, node.output()[-3000:]
    info = seen["frame_info"]
    assert all(i["reason"] == "depth_fallback" and i["path"] == info[0]["path"] for i in info)
    assert any(i["events"][0] == "depth_timeout" for i in info)
    assert any(d["level"] == 1 and "depth missing" in d["message"] for d in seen["diagnostics"])
    assert "no depth message for 0.3 s" in node.output() and code == 0


@pytest.mark.parametrize("case", ["no_master", "bad_bundle", "no_input"])
def test_startup_errors_are_one_line(ros1_env, bundle_dir, tmp_path, case):
    env = dict(ros1_env)
    args = ["--bundle", str(bundle_dir), f"__name:=edgefuse_{case}"]
    expected = {"no_master": "no ROS master at", "bad_bundle": "bundle folder",
                "no_input": "no image arrived on /nothing/image within 1 s"}[case]
    if case == "no_master":
        env["ROS_MASTER_URI"] = f"http://127.0.0.1:{free_port()}"
    elif case == "bad_bundle":
        args[1] = str(tmp_path / "missing")
    else:
        args += ["_input_timeout:=1", "_rgb_topic:=/nothing/image"]
    out = subprocess.run([sys.executable, "-m", "edgefuse.cli.main", "ros", "--ros", "1", *args], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stdout + out.stderr
    assert expected in out.stderr and "Traceback" not in out.stderr + out.stdout
