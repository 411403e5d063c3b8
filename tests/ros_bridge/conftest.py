"""ROS 1 for the live node tests: Debian's ROS 1 (`make test` apt-installs it when root and
puts it on the venv's path), a roscore on a free port per test session, stopped at the end.

These tests are marked `ros1`. They never skip: where ROS 1 is missing they FAIL, saying how
to get it (CI runs `make test` as root, so a missing ROS 1 there is a broken CI). A developer
without root deselects them with `-m "not ros1"`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from ros1_helpers import free_port, stop

ROS1_HELP = ("ROS 1 is missing: the live node tests need Debian's ROS 1 (`make test` as root installs it: "
             "apt-get install ros-core python3-rospy python3-sensor-msgs python3-std-msgs python3-diagnostic-msgs, "
             "and adds /usr/lib/python3/dist-packages to the venv). Without root, deselect them: "
             "pytest -m 'not ros1'")


def pytest_configure(config):
    config.addinivalue_line("markers", "ros1: live ROS 1 test (roscore + rospy); fails where ROS 1 is missing")
    config.addinivalue_line("markers", "ros2: live ROS 2 test (rclpy in .venv-ros2); fails where it is missing")


@pytest.fixture(scope="session")
def ros1_env(tmp_path_factory):
    """Environment for ROS 1 processes on a roscore of our own (fails, never skips, without ROS 1)."""
    probe = subprocess.run([sys.executable, "-c", "import rospy, sensor_msgs.msg, diagnostic_msgs.msg"],
                           capture_output=True, text=True)
    if probe.returncode != 0 or shutil.which("roscore") is None:
        pytest.fail(f"{ROS1_HELP} ({probe.stderr.strip().splitlines()[-1] if probe.stderr else 'no roscore'})")
    home = tmp_path_factory.mktemp("ros_home")
    port = free_port()
    env = dict(os.environ, ROS_MASTER_URI=f"http://127.0.0.1:{port}", ROS_HOSTNAME="127.0.0.1",
               ROS_HOME=str(home), ROS_LOG_DIR=str(home / "log"), PYTHONUNBUFFERED="1",
               # the ROS 1 package, and the venv's python3 first (its node script runs `env python3`)
               ROS_PACKAGE_PATH=str(Path(__file__).resolve().parents[2] / "ros_bridge" / "packages" / "ros1"),
               PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")
    log = open(home / "roscore.log", "w")
    core = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while subprocess.run(["rosparam", "get", "/run_id"], env=env, capture_output=True).returncode != 0:
            if core.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"roscore did not start: {(home / 'roscore.log').read_text()[-2000:]}")
            time.sleep(0.2)
        yield env
    finally:
        stop(core)
        log.close()
