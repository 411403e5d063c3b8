"""The ROS packages a user drops into a workspace (ros_bridge/packages/): package.xml files
validated by catkin_pkg, the ROS 1 launch file by roslaunch itself, the ROS 2 launch file run
against the launch API names it may use (launch and launch_ros cannot be installed here)."""

from __future__ import annotations

import ast
import configparser
import dataclasses
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from edgefuse.ros_bridge.config import NodeConfig

PACKAGES = Path(__file__).resolve().parents[2] / "ros_bridge" / "packages"
ROS1 = PACKAGES / "ros1" / "edgefuse_ros"
ROS2 = PACKAGES / "ros2" / "edgefuse_ros"
OPTIONS = {f.name for f in dataclasses.fields(NodeConfig)}


@pytest.mark.ros1
@pytest.mark.parametrize("package", [ROS1, ROS2], ids=["ros1", "ros2"])
def test_package_xml_is_valid(ros1_env, package):
    code = ("import sys, catkin_pkg.package as p; pkg = p.parse_package(sys.argv[1]); pkg.validate(); "
            "print(pkg.name, pkg.package_format, ' '.join(sorted(d.name for d in pkg.exec_depends)), "
            "' '.join(e.tagname + '=' + e.content for e in pkg.exports))")
    out = subprocess.run([sys.executable, "-c", code, str(package / "package.xml")], capture_output=True, text=True,
                         env=ros1_env)
    assert out.returncode == 0, out.stderr
    name, fmt, *rest = out.stdout.split()
    assert (name, fmt) == ("edgefuse_ros", "3")
    assert {"sensor_msgs", "std_msgs", "diagnostic_msgs"} <= set(rest)
    assert ("rospy" in rest) == (package == ROS1) and ("rclpy" in rest) == (package == ROS2)
    assert ("build_type=ament_python" in rest) == (package == ROS2)


@pytest.mark.ros1
def test_ros1_launch_file_checks_and_sets_only_node_options(ros1_env, tmp_path):
    launch = ROS1 / "launch" / "segmentation.launch"
    env = ros1_env
    files = subprocess.run(["roslaunch", "--files", "edgefuse_ros", "segmentation.launch", "bundle:=/b"], env=env,
                           capture_output=True, text=True)
    assert files.returncode == 0 and files.stdout.split() == [str(launch)], files.stderr
    check = subprocess.run([sys.executable, "-c", "import sys, roslaunch.rlutil as r; "
                            "e = r.check_roslaunch(sys.argv[1], ignore_unset_args=True); print(e or 'ok'); sys.exit(bool(e))", str(launch)],
                           env=env, capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    args = subprocess.run(["roslaunch", "--args", "edgefuse", str(launch), "bundle:=/b"], env=env,
                          capture_output=True, text=True)
    assert args.returncode == 0 and args.stdout.strip().endswith("scripts/edgefuse_node __name:=edgefuse")
    dump = subprocess.run(["roslaunch", "--dump-params", str(launch), "bundle:=/b", "budget_ms:=12"], env=env,
                          capture_output=True, text=True)
    params = {k.split("/")[-1]: v for k, v in yaml.safe_load(dump.stdout).items() if k.startswith("/edgefuse/")}
    assert params["bundle"] == "/b" and params["budget_ms"] == 12.0 and params["depth_timeout"] == 1.0
    config = NodeConfig.from_params(params)           # every parameter is a node option, of the right type
    assert config.budget == 12.0 and config.rgb_topic == "/camera/color/image_raw"


def test_ros1_package_installs_the_node_script():
    script = ROS1 / "scripts" / "edgefuse_node"
    assert script.stat().st_mode & 0o111 and script.read_text().startswith("#!/usr/bin/env python3")
    cmake = (ROS1 / "CMakeLists.txt").read_text()
    assert "project(edgefuse_ros)" in cmake and "catkin_install_python(PROGRAMS scripts/edgefuse_node" in cmake
    assert "install(DIRECTORY launch" in cmake


def test_node_script_reports_errors_in_one_line(tmp_path):
    """The packages' script is `edgefuse ros --ros N`: a bad bundle is exit 2, no traceback
    (with ROS 2 absent here, its error is the one-line 'not importable' message)."""
    out = subprocess.run([sys.executable, str(ROS2 / "scripts" / "edgefuse_node"), "--bundle", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "ROS 2 is not importable" in out.stderr or "bundle folder" in out.stderr


# --- ROS 2: ament_python package and the Python launch file --------------------------------------
# The launch API the launch file may use, each in Humble and Jazzy (docs.ros.org: launch
# DeclareLaunchArgument(name, default_value=, description=); launch_ros Node(package=,
# executable=, name=, output=, parameters=); parameter_descriptions.ParameterValue(value, value_type=)).
LAUNCH_API = {
    "launch": {"LaunchDescription": set()},
    "launch.actions": {"DeclareLaunchArgument": {"default_value", "description"}},
    "launch.substitutions": {"LaunchConfiguration": set()},
    "launch_ros.actions": {"Node": {"package", "executable", "name", "output", "parameters"}},
    "launch_ros.parameter_descriptions": {"ParameterValue": {"value_type"}},
}


def _fake_launch_modules(monkeypatch):
    calls: list[tuple[str, tuple, dict]] = []

    def recorder(name, allowed):
        def make(*args, **kwargs):
            unknown = set(kwargs) - allowed
            assert not unknown, f"{name}: keyword(s) {unknown} not in the documented API"
            calls.append((name, args, kwargs))
            return (name, args, kwargs)
        return make

    for module, names in LAUNCH_API.items():
        m = types.ModuleType(module)
        for name, allowed in names.items():
            setattr(m, name, recorder(name, allowed))
        monkeypatch.setitem(sys.modules, module, m)
    monkeypatch.setitem(sys.modules, "launch_ros", types.ModuleType("launch_ros"))
    return calls


def test_ros2_launch_file_uses_only_the_launch_api_and_node_options(monkeypatch):
    path = ROS2 / "launch" / "segmentation.launch.py"
    tree = ast.parse(path.read_text())
    imported = {(n.module, a.name) for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert imported <= {(m, name) for m, names in LAUNCH_API.items() for name in names}
    calls = _fake_launch_modules(monkeypatch)
    namespace: dict = {}
    exec(compile(tree, str(path), "exec"), namespace)       # noqa: S102 - our own launch file
    description = namespace["generate_launch_description"]()
    declared = {args[0]: kwargs for name, args, kwargs in calls if name == "DeclareLaunchArgument"}
    (node,) = [kwargs for name, _, kwargs in calls if name == "Node"]
    assert description[0] == "LaunchDescription"
    assert (node["package"], node["executable"]) == ("edgefuse_ros", "edgefuse_node")
    (parameters,) = node["parameters"]
    assert set(parameters) <= OPTIONS and set(parameters) <= set(declared)   # every parameter a node option
    assert "default_value" not in declared["bundle"]                         # required
    assert declared["rgb_topic"]["default_value"] == "/camera/camera/color/image_raw"   # ROS 2 realsense names
    typed = {name: value[2]["value_type"] for name, value in parameters.items()}
    hints = {f.name: f.type for f in dataclasses.fields(NodeConfig)}
    assert all(hints[name] in (kind.__name__, "MaskSize", "InputQos", "OutputQos") for name, kind in typed.items())
    # the defaults are valid node options
    defaults = {n: kw["default_value"] for n, kw in declared.items() if "default_value" in kw and n in OPTIONS}
    # (ParameterValue parses a string as YAML for its value_type: "false" is False, not bool("false"))
    NodeConfig.from_params({n: yaml.safe_load(v) if typed[n] is bool else typed[n](v) for n, v in defaults.items()})


def test_ros2_package_files():
    setup = ast.parse((ROS2 / "setup.py").read_text())
    strings = {n.value for n in ast.walk(setup) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert {"package.xml", "launch/segmentation.launch.py", "scripts/edgefuse_node"} <= strings
    assert (ROS2 / "resource" / "edgefuse_ros").is_file() and (ROS2 / "scripts" / "edgefuse_node").stat().st_mode & 0o111
    cfg = configparser.ConfigParser()
    cfg.read(ROS2 / "setup.cfg")
    assert cfg["install"]["install_scripts"] == "$base/lib/edgefuse_ros"      # where `ros2 run` looks
