"""The pure core of `edgefuse ros --check` (ros_bridge/inputs_check.py) on message fields: a
healthy camera passes; each input fault gives its verdict and fix. The same faults on a real
roscore / rclpy graph: test_ros_check_live.py."""

from __future__ import annotations

import numpy as np
import pytest
from ros_fixtures import FRAME_ID, H, W, image_msg, info_msg

from edgefuse.cli.common import CliConsole
from edgefuse.cli.ros_check import render_check
from edgefuse.ros_bridge.config import NodeConfig
from edgefuse.ros_bridge.inputs_check import InputsCheck, Level, Offer, Role, qos_compatible

T0 = 1_800_000_000_000_000_000
PERIOD = 33_333_333
TOPICS = {Role.COLOR: "/cam/color", Role.DEPTH: "/cam/depth", Role.CAMERA_INFO: "/cam/info"}
GRAPH = {"/cam/color": ["sensor_msgs/msg/Image"], "/cam/depth": ["sensor_msgs/msg/Image"],
         "/cam/info": ["sensor_msgs/msg/CameraInfo"], "/other/image": ["sensor_msgs/msg/Image"],
         "/cam/aligned_depth_to_color/image_raw": ["sensor_msgs/msg/Image"]}


def rgb():
    return np.zeros((H, W, 3), np.uint8)


def mm(h=H, w=W, value=1500, zeros=0.05):
    d = np.full((h, w), value, np.uint16)
    d[: int(h * zeros)] = 0
    return d


def feed(check, n=20, colour=None, depth=None, info=None, depth_offset_ns=0, stamps=None, age_ns=5_000_000):
    """n frames at 30 Hz; arrival = stamp + age on the ROS clock."""
    for i in range(n):
        t = T0 + i * PERIOD if stamps is None else stamps(i)
        now, mono = T0 + i * PERIOD + age_ns, 100.0 + i * PERIOD * 1e-9
        check.add_image(Role.COLOR, colour(t) if colour else image_msg(rgb(), "rgb8", t), now, mono)
        if Role.DEPTH in check.topics:
            d = depth(t + depth_offset_ns) if depth else image_msg(mm(), "16UC1", t + depth_offset_ns)
            check.add_image(Role.DEPTH, d, now + 1_000_000, mono + 0.001)
        check.add_info(info(t) if info else info_msg(t), now, mono)


def make(ros="2", graph=GRAPH, offers=None, topics=TOPICS, **params):
    config = NodeConfig.from_params({}, params)
    check = InputsCheck(config, dict(topics), ros)
    return check, (lambda got=None: check.set_graph(
        graph, offers if offers is not None else {t: [Offer("/camera", "reliable", "volatile")] for t in graph}, got))


def problems(report):
    return [v for v in report.verdicts if v.level is Level.PROBLEM]


def test_healthy_camera_is_ok_and_the_table_has_every_input():
    check, graph = make()
    feed(check)
    graph()
    report = check.report(2.0)
    assert report.ok and report.verdicts == []
    rows = {r.role: r for r in report.rows}
    c = rows["colour"]
    assert (c.topic, c.publishers, c.type, c.encoding, c.size, c.frame_id) == (
        "/cam/color", "1", "sensor_msgs/Image", "rgb8", f"{W}x{H}", FRAME_ID)
    assert float(c.rate) == pytest.approx(30.0, rel=0.01) and float(c.age) == pytest.approx(5.0)
    assert float(c.jitter) < 0.01
    assert c.qos == "reliable -> reliable"            # input_qos auto follows a reliable camera
    assert rows["depth"].encoding == "16UC1" and rows["camera_info"].encoding == "plumb_bob"
    assert (report.pairing.paired, report.pairing.colour, report.pairing.median_offset_ms) == (20, 20, 0.0)


def test_no_publisher_lists_the_image_topics_that_exist():
    check, graph = make(rgb_topic="/nothing/image_raw", topics={**TOPICS, Role.COLOR: "/nothing/image_raw"})
    graph()
    report = check.report(2.0)
    v = next(v for v in problems(report) if v.topic == "/nothing/image_raw")
    assert "no publisher" in v.what
    assert "/cam/color" in v.fix and "/other/image" in v.fix and "rgb_topic" in v.fix


def test_wrong_type_names_the_type_and_the_image_topics():
    check, graph = make(topics={**TOPICS, Role.COLOR: "/cam/info"})
    graph()
    [v] = [v for v in problems(check.report(2.0)) if v.topic == "/cam/info" and "has type" in v.what]
    assert "sensor_msgs/CameraInfo" in v.what and "/cam/color, /cam/depth" in v.fix


def test_unaligned_depth_names_the_aligned_topic_or_register_depth():
    check, graph = make()
    feed(check, depth=lambda t: image_msg(mm(H // 2, W // 2), "16UC1", t, frame_id="camera_depth_optical_frame"))
    graph()
    [v] = problems(check.report(2.0))
    assert "not aligned" in v.what and "camera_depth_optical_frame" in v.what and f"{W // 2}x{H // 2}" in v.what
    assert "/cam/aligned_depth_to_color/image_raw" in v.fix and "register_depth" in v.fix


def test_unaligned_depth_without_an_aligned_topic_names_realsense_defaults():
    for ros, topic in (("1", "/camera/aligned_depth_to_color/image_raw"),
                       ("2", "/camera/camera/aligned_depth_to_color/image_raw")):
        graph_ = {k: v for k, v in GRAPH.items() if "aligned" not in k}
        check, graph = make(ros=ros, graph=graph_)
        feed(check, depth=lambda t: image_msg(mm(), "16UC1", t, frame_id="camera_depth_optical_frame"))
        graph()
        [v] = problems(check.report(2.0))
        assert topic in v.fix and "align_depth.enable:=true" in v.fix


def test_register_depth_accepts_raw_depth(tmp_path):
    calibration = tmp_path / "camera.yaml"
    calibration.write_text("x: 1\n")   # only its presence is validated by NodeConfig
    check, graph = make(register_depth=True, calibration=str(calibration))
    feed(check, depth=lambda t: image_msg(mm(H // 2, W // 2), "16UC1", t, frame_id="depth"))
    graph()
    assert check.report(2.0).ok


def report_with_camera_qos(offered: str, input_qos: str):
    """The report of a camera whose every topic offers `offered` reliability to a node
    requesting `input_qos` (the QoS verdicts read the offers, not the images)."""
    offers = {t: [Offer("/camera/camera", offered, "volatile")] for t in GRAPH}
    check, graph = make(offers=offers, input_qos=input_qos)
    feed(check)
    graph({Role.COLOR: 0, Role.DEPTH: 0, Role.CAMERA_INFO: 0})
    return check.report(2.0)


def test_reliable_request_against_best_effort_publisher_never_connects():
    report = report_with_camera_qos("best_effort", "reliable")
    v = next(v for v in problems(report) if v.topic == "/cam/color")
    assert "requests reliable" in v.what and "/camera/camera" in v.what and "best_effort" in v.what
    assert "got 0 messages" in v.what and "input_qos: auto" in v.fix
    assert {r.role: r.qos for r in report.rows}["colour"] == "best_effort -> reliable"
    # the default (sensor data) receives it
    check, graph = make(offers={t: [Offer("/camera/camera", "best_effort", "volatile")] for t in GRAPH})
    feed(check)
    graph()
    assert check.report(2.0).ok


def test_qos_rule():
    assert not qos_compatible(Offer("a", "best_effort"), "reliable")
    assert qos_compatible(Offer("a", "reliable"), "best_effort")
    assert qos_compatible(Offer("a", "reliable"), "reliable")
    assert qos_compatible(Offer("a", "best_effort"), "best_effort")


def test_ros1_has_no_qos_verdict():
    check, graph = make(ros="1", offers={t: [Offer("/camera")] for t in GRAPH}, input_qos="reliable")
    feed(check)
    graph()
    report = check.report(2.0)
    assert report.ok and {r.qos for r in report.rows} == {"TCPROS"}


def test_zero_stamps():
    check, graph = make()
    feed(check, stamps=lambda i: 0)
    graph()
    report = check.report(2.0)
    found = {v.topic for v in problems(report) if "header.stamp 0" in v.what}
    assert found == {"/cam/color", "/cam/depth", "/cam/info"}
    assert all("stamp each message" in v.fix for v in problems(report))


def test_stamps_going_backwards():
    check, graph = make(depth_topic="")
    check.topics.pop(Role.DEPTH)
    feed(check, stamps=lambda i: T0 + (i % 5) * PERIOD)
    graph()
    assert any("backwards" in v.what for v in problems(check.report(2.0)))


def test_depth_in_metres_on_16uc1():
    check, graph = make()
    feed(check, depth=lambda t: image_msg(mm(value=3), "16UC1", t))
    graph()
    [v] = problems(check.report(2.0))
    assert "16UC1 depth has median 3" in v.what and "metres" in v.what and "millimetres" in v.fix


def test_depth_in_millimetres_on_32fc1_and_metres_pass():
    check, graph = make()
    feed(check, depth=lambda t: image_msg(mm().astype(np.float32), "32FC1", t))
    graph()
    [v] = problems(check.report(2.0))
    assert "millimetres in a float image" in v.what
    check, graph = make()
    feed(check, depth=lambda t: image_msg(mm().astype(np.float32) / 1000, "32FC1", t))
    graph()
    assert check.report(2.0).ok


def test_mostly_empty_depth_is_below_min_depth_valid():
    check, graph = make()
    feed(check, depth=lambda t: image_msg(mm(zeros=0.75), "16UC1", t))
    graph()
    [v] = problems(check.report(2.0))
    assert "only 25% of depth pixels" in v.what and "min_depth_valid 0.5" in v.what


def test_camera_info_of_another_size():
    check, graph = make()
    feed(check, info=lambda t: info_msg(t, h=2 * H, w=2 * W))
    graph()
    [v] = problems(check.report(2.0))
    assert f"{2 * W}x{2 * H}" in v.what and f"{W}x{H}" in v.what and "/camera/camera/color/camera_info" in v.fix


def test_implausible_k():
    def info(t):
        m = info_msg(t)
        m.k = [50.0, 0, 500, 0, 51, 24, 0, 0, 1]   # cx beyond the width
        return m

    check, graph = make()
    feed(check, info=info)
    graph()
    [v] = problems(check.report(2.0))
    assert "principal point (500, 24)" in v.what


def test_stamps_that_never_pair_under_sync_slop():
    check, graph = make(sync_slop=0.005)
    feed(check, depth_offset_ns=15_000_000)   # depth 15 ms after colour (18 ms before the next)
    graph()
    report = check.report(2.0)
    [v] = problems(report)
    assert report.pairing.paired == 0 and report.pairing.median_offset_ms == pytest.approx(15.0, abs=0.01)
    assert "sync_slop 0.005" in v.what and "raise sync_slop above 0.015" in v.fix


def test_undecodable_colour_and_silent_topic():
    check, graph = make()
    feed(check, colour=lambda t: image_msg(rgb()[..., :2].copy(), "yuv422", t))
    graph()
    report = check.report(2.0)
    assert any("yuv422" in v.what and "rgb8" in v.fix for v in problems(report))
    check, graph = make()
    graph()      # publishers, but nothing arrived
    assert any("no message in 2 s" in v.what for v in problems(check.report(2.0)))


def test_old_stamps_warn_but_pass():
    check, graph = make()
    feed(check, age_ns=2_000_000_000)
    graph()
    report = check.report(2.0)
    assert report.ok and any("2.00 s after their stamp" in v.what for v in report.verdicts)


def test_render_prints_table_pairing_verdicts_and_fixes(capsys):
    check, graph = make()
    feed(check, info=lambda t: info_msg(t, h=2 * H, w=2 * W))
    graph()
    console = CliConsole(width=100)
    render_check(check.report(2.0), console)
    out = capsys.readouterr().out
    assert "/cam/color" in out and "rgb8" in out and "colour/depth pairs within sync_slop: 20/20 (100%)" in out
    assert "problem /cam/info" in out and "fix: use the colour camera's camera_info" in out
    assert "1 problem(s)" in out


def test_one_topic_for_two_inputs():
    check, graph = make(topics={**TOPICS, Role.COLOR: "/cam/info"})
    assert check.roles_to_subscribe() == {Role.COLOR: "/cam/info", Role.DEPTH: "/cam/depth"}
    graph()
    report = check.report(2.0)
    assert any("colour and camera_info are the same topic" in v.what for v in problems(report))


def test_seconds_without_check_is_a_usage_error(capsys):
    from edgefuse.cli.main import main

    assert main(["ros", "--seconds", "3"]) == 2
    assert "--seconds is an option of --check" in capsys.readouterr().err


def test_sensor_data_qos_against_a_reliable_camera_is_a_warning():
    """input_qos sensor_data asks best effort of a reliable camera: it connects, but Fast DDS
    loses fragments of large images (benchmarks/ros2_image_qos.py); auto follows the camera."""
    from edgefuse.ros_bridge.config import InputQos, NodeConfig
    from edgefuse.ros_bridge.inputs_check import Offer, requested_reliability

    reliable, best_effort = Offer("/camera", "reliable"), Offer("/camera", "best_effort")
    assert requested_reliability(NodeConfig(), [reliable]) == "reliable"
    assert requested_reliability(NodeConfig(), [reliable, best_effort]) == "best_effort"
    assert requested_reliability(NodeConfig(input_qos=InputQos.SENSOR_DATA), [reliable]) == "best_effort"
    assert requested_reliability(NodeConfig(input_qos=InputQos.RELIABLE), [best_effort]) == "reliable"


def test_best_effort_request_from_a_reliable_camera_is_warned():
    report = report_with_camera_qos("reliable", "sensor_data")
    warned = {v.topic for v in report.verdicts if v.level is Level.WARNING and "loses fragments" in v.what}
    assert "/cam/color" in warned and "/cam/info" not in warned
    assert not [v for v in problems(report) if "requests" in v.what]


@pytest.mark.parametrize("profile, size, warned", [
    ("", (480, 640), True),                        # 921 kB rgb8 on Fast DDS's defaults
    ("/opt/fastdds_shm_large_images.xml", (480, 640), False),
    (None, (480, 640), False),                     # another middleware: not Fast DDS's business
    ("", (240, 320), False)])                      # 230 kB fits the default segment
def test_large_images_on_fast_dds_defaults_are_warned(profile, size, warned):
    config = NodeConfig.from_params({}, {})
    check = InputsCheck(config, dict(TOPICS), "2", fastdds_profile=profile)
    feed(check, colour=lambda t: image_msg(np.zeros((*size, 3), np.uint8), "rgb8", t),
         depth=lambda t: image_msg(mm(*size), "16UC1", t))
    check.set_graph(GRAPH, {t: [Offer("/camera", "reliable", "volatile")] for t in GRAPH}, None)
    report = check.report(2.0)
    found = [v for v in report.verdicts if "Fast DDS" in v.what]
    assert bool(found) is warned
    if warned:
        assert found[0].level is Level.WARNING and "fastdds_shm_large_images.xml" in found[0].fix
