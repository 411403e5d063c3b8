"""The node's options: ROS parameters and command-line overrides into one typed config."""

from __future__ import annotations

import pytest

from edgefuse.errors import ConfigError
from edgefuse.ros_bridge.config import ROS2_TOPICS, InputQos, MaskSize, NodeConfig
from edgefuse.ros_bridge.launcher import detect_ros


def test_params_then_overrides_win():
    params = {"bundle": "/a", "backend": "torch", "sync_slop": 0.05, "mask_size": "network", "budget_ms": 12,
              "classes": ["void"], "use_sim_time": False}      # the last two are not options: ignored
    c = NodeConfig.from_params(params, {"backend": "ort", "budget_ms": None})
    assert (c.bundle, c.backend, c.budget, c.sync_slop) == ("/a", "ort", 12.0, 0.05)
    assert c.mask_size is MaskSize.NETWORK


def test_zero_slop_is_refused_and_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="sync_slop must be > 0"):
        NodeConfig.from_params({"sync_slop": 0})
    with pytest.raises(ConfigError) as err:
        NodeConfig.from_params({"rgb_topc": "/x"})
    assert "'rgb_topc'" in str(err.value) and "rgb_topic" in str(err.value)
    with pytest.raises(ConfigError, match="'fast'"):
        NodeConfig.from_params({"input_qos": "fast"})


def test_ros2_defaults_and_derived_options():
    c = NodeConfig.from_params({"depth_topic": ""}, defaults=ROS2_TOPICS)
    assert c.rgb_topic == "/camera/camera/color/image_raw" and not c.use_depth
    assert c.input_qos is InputQos.AUTO and c.budget is None
    assert NodeConfig(threads=2).runtime_config().runner_options() == {"providers": "auto", "share_weights": True,
                                                                       "threads": 2}


def test_detect_ros(monkeypatch):
    assert detect_ros("2") == "2"
    monkeypatch.setenv("ROS_VERSION", "2")
    assert detect_ros("auto") == "2"
    with pytest.raises(ConfigError, match="choose 1, 2 or auto"):
        detect_ros("3")


@pytest.mark.parametrize("ros_args", [
    ["__name:=left", "_sync_slop:=0.05", "/camera/color/image_raw:=/left/color"],                  # ROS 1
    ["--ros-args", "-r", "__node:=left", "-p", "mask_size:=network", "--params-file", "/tmp/p.yaml"],  # ROS 2
])
def test_cli_passes_ros_arguments_through(monkeypatch, ros_args):
    from edgefuse.cli.main import main
    from edgefuse.ros_bridge import launcher

    calls = []
    monkeypatch.setattr(launcher, "run_node", lambda ros, overrides, args: calls.append((ros, overrides, args)))
    assert main(["ros", "--bundle", "b", "--budget-ms", "9", "--ros", "2", *ros_args]) == 0
    assert calls == [("2", {"bundle": "b", "backend": None, "budget_ms": 9.0, "threads": None, "pipeline": None,
                               "calibration": None, "register_depth": None}, ros_args)]


def test_foreign_args_are_what_neither_ros_takes():
    from edgefuse.ros_bridge.launcher import foreign_args

    assert foreign_args(["__name:=left", "_sync_slop:=0.05", "image:=/cam/image"]) == []
    assert foreign_args(["--ros-args", "-r", "__node:=left", "-p", "a:=1", "--params-file", "p.yaml"]) == []
    assert foreign_args(["--budget_ms", "9", "--ros-args", "-p", "a:=1", "--", "--bogus"]) == ["--budget_ms", "9",
                                                                                                "--bogus"]


@pytest.mark.parametrize("mode, offered, reliable", [
    ("auto", [True], True), ("auto", [True, True], True), ("auto", [True, False], False), ("auto", [False], False),
    ("auto", [], False),            # no publisher yet: best effort matches whatever comes
    ("sensor_data", [True], False), ("reliable", [False], True), ("reliable", [], True)])
def test_input_qos_follows_the_publishers_only_in_auto(mode, offered, reliable):
    assert InputQos(mode).reliable(offered) is reliable


def test_live_options_change_and_the_others_are_refused():
    c = NodeConfig(bundle="b")
    changed = c.with_live({"sync_slop": 0.05, "overlay_alpha": 0.0, "budget_ms": 30})
    assert (changed.sync_slop, changed.overlay_alpha, changed.budget) == (0.05, 0.0, 30.0) and changed.bundle == "b"
    with pytest.raises(ConfigError, match="bundle, rgb_topic cannot change while the node runs.*restart"):
        c.with_live({"bundle": "x", "rgb_topic": "/y", "sync_slop": 0.1})
    with pytest.raises(ConfigError, match="min_depth_valid"):
        c.with_live({"min_depth_valid": 1.5})


def test_inputs_on_one_topic_are_refused():
    with pytest.raises(ConfigError, match="must differ.*its own topic"):
        NodeConfig(rgb_topic="/cam/image", camera_info_topic="/cam/image")
    assert NodeConfig(depth_topic="").use_depth is False      # an empty depth topic is no clash
