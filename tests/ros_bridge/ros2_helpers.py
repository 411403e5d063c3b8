"""ROS 2 for the live node tests: the real rclpy (ROS 2 Jazzy, Fast DDS) from PyPI wheels in a
second interpreter environment, `.venv-ros2` (`make ros2-env`; ROS 1's Debian message
packages share module names with ROS 2's, so the two cannot live in one interpreter). The
node and the probe run as processes of that interpreter; pytest itself runs in the main venv.

Discovery stays on this machine and in a domain of its own: every ROS 2 process gets
ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST (no multicast off the box) and a ROS_DOMAIN_ID drawn
for this test session, so parallel runs (and a robot on the same network) never see each other.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROS2_HELP = ("ROS 2 is missing: the ROS 2 node tests need the ROS 2 Jazzy wheels in .venv-ros2 (`make ros2-env`, "
             "which `make test` runs: pip install 'ros-jazzy-rclpy[fastrtps]' ros-jazzy-sensor-msgs "
             "ros-jazzy-std-msgs ros-jazzy-diagnostic-msgs and edgefuse), or set EDGEFUSE_ROS2_PYTHON to a python "
             "that has them. To run without them, deselect: pytest -m 'not ros2'")


def ros2_python() -> str:
    return os.environ.get("EDGEFUSE_ROS2_PYTHON", str(ROOT / ".venv-ros2" / "bin" / "python"))


def domain_id() -> int:
    """1..100 from this process id: Fast DDS's default ports fit domains 0..232 (Linux)."""
    return 1 + os.getpid() % 100


def ros2_environment(home: Path) -> dict[str, str]:
    python = ros2_python()
    probe = subprocess.run([python, "-c", "import rclpy, sensor_msgs.msg, diagnostic_msgs.msg, rosgraph_msgs.msg, "
                                          "edgefuse.ros_bridge.ros2"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"{ROS2_HELP} ({python}: {(probe.stderr.strip().splitlines() or ['not found'])[-1]})")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "AMENT_", "RMW_"))}
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(domain_id()), ROS_HOME=str(home),
               ROS_LOG_DIR=str(home / "log"), RCUTILS_COLORIZED_OUTPUT="0", PYTHONUNBUFFERED="1",
               RMW_IMPLEMENTATION="rmw_fastrtps_cpp", ROS2_PYTHON=python)
    return env


def node_command(env: dict, bundle: Path, name: str, *ros_args: str, options: tuple[str, ...] = ()) -> list[str]:
    """`edgefuse ros --ros 2` as a user starts it, under the node name `name`."""
    return [env["ROS2_PYTHON"], "-m", "edgefuse.cli.main", "ros", "--bundle", str(bundle), "--ros", "2",
            "--threads", "1", *options, "--ros-args", "-r", f"__node:={name}", *ros_args]


def run_probe(env: dict, *args: str, timeout: float = 120.0) -> dict:
    """Run ros2_probe.py (the camera and the subscribers) and return what it recorded."""
    out = subprocess.run([env["ROS2_PYTHON"], str(Path(__file__).parent / "ros2_probe.py"), *args], env=env,
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"probe failed: {out.stdout[-2000:]} {out.stderr[-3000:]}"
    return json.loads(out.stdout.strip().splitlines()[-1])


def start_node(env: dict, bundle: Path, tmp: Path, name: str, *ros_args: str):
    """The node as a process (its output in tmp/NAME.log)."""
    from ros1_helpers import NodeProcess

    return NodeProcess(node_command(env, bundle, name, *ros_args), env, tmp / f"{name}.log")


def assert_clean_exit(node, code: int | None) -> None:
    """Exit 0, no Python traceback, no C++ `terminate called` in the node's output."""
    out = node.output()
    assert code == 0, f"the node did not stop cleanly ({code}): {out[-3000:]}"
    assert "Traceback" not in out and "terminate called" not in out, out[-3000:]
