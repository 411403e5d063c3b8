"""Which ROS runs the node: `--ros 1|2`, else $ROS_VERSION (set by every ROS setup script),
else whichever client library imports. The adapters are imported only here, on demand, so
`import edgefuse.ros_bridge` needs no ROS."""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Any

from edgefuse.errors import ConfigError, EdgefuseError

# ROS version -> (adapter module, client library)
ADAPTERS: dict[str, tuple[str, str]] = {"1": ("edgefuse.ros_bridge.ros1", "rospy"),
                                        "2": ("edgefuse.ros_bridge.ros2", "rclpy")}


def detect_ros(choice: str = "auto") -> str:
    """'1' or '2' for `choice` ('auto', '1', '2')."""
    if choice in ADAPTERS:
        return choice
    if choice != "auto":
        raise ConfigError(f"--ros {choice!r}: choose 1, 2 or auto")
    env = os.environ.get("ROS_VERSION", "")
    if env in ADAPTERS:
        return env
    for version, (_, library) in ADAPTERS.items():
        if importlib.util.find_spec(library) is not None:
            return version
    raise EdgefuseError("no ROS found: neither rospy (ROS 1) nor rclpy (ROS 2) is importable; source "
                        "/opt/ros/<distro>/setup.bash (or on Debian `apt install python3-rospy`) and retry")


def foreign_args(args: list[str]) -> list[str]:
    """The arguments that are not ROS arguments: ROS 1 takes `NAME:=VALUE` (remaps, `__name:=`,
    `_param:=`); ROS 2 takes everything from `--ros-args` to a lone `--`. A mistyped option
    (`--budget_ms`) would otherwise vanish into the ROS arguments unnoticed."""
    foreign, in_ros2 = [], False
    for arg in args:
        if arg == "--ros-args":
            in_ros2 = True
        elif in_ros2 and arg == "--":
            in_ros2 = False
        elif not in_ros2 and ":=" not in arg:
            foreign.append(arg)
    return foreign


def run_node(ros: str, overrides: dict[str, Any], ros_args: list[str]) -> None:
    """Start the node and block until ROS shuts it down."""
    module, _ = ADAPTERS[detect_ros(ros)]
    importlib.import_module(module).run(overrides, ros_args)


def node_main(ros: str, argv: list[str]) -> int:
    """The ROS packages' `edgefuse_node` script: `edgefuse ros --ros N` with the launcher's
    arguments (__name:=, __log:=, remaps; ROS 2: --ros-args ...), its errors one line, exit 2."""
    from edgefuse.cli.main import main

    return main(["ros", "--ros", ros, *argv])
