"""`edgefuse ros --check`: which ROS listens (the launcher's choice), the listener imported on
demand like the node's adapters, so `import edgefuse.ros_bridge` needs no ROS."""

from __future__ import annotations

import importlib
from typing import Any

from edgefuse.errors import EdgefuseError
from edgefuse.ros_bridge.inputs_check import Report
from edgefuse.ros_bridge.launcher import detect_ros

CHECKERS = {"1": "edgefuse.ros_bridge.check_ros1", "2": "edgefuse.ros_bridge.check_ros2"}
INSTALL = {"1": "source /opt/ros/<distro>/setup.bash, or on Debian `apt install python3-rospy python3-sensor-msgs`",
           "2": "source /opt/ros/<distro>/setup.bash, or pip install \"ros-jazzy-rclpy[fastrtps]\" "
                "ros-jazzy-sensor-msgs"}


def run_check(ros: str, overrides: dict[str, Any], argv: list[str], seconds: float) -> Report:
    """Listen to the node's inputs for `seconds` and judge them."""
    if not seconds > 0:
        raise EdgefuseError(f"--seconds {seconds:g}: give a listening time > 0, e.g. --seconds 5")
    version = detect_ros(ros)
    module = importlib.import_module(CHECKERS[version])
    try:
        return module.check(overrides, argv, seconds)
    except ImportError as exc:
        raise EdgefuseError(f"ROS {version} is not importable ({exc}); {INSTALL[version]}") from None
