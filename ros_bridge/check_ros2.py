"""`edgefuse ros --check` on ROS 2 (rclpy): subscribe to the node's inputs for a few seconds and
feed inputs_check.InputsCheck; then ask the graph which topics exist, who publishes each input
and with which QoS.

The listener takes the node's name (default edgefuse; `-r __node:=left` renames both), so a
parameters file keyed by the node's name and node-scoped remaps apply to it exactly as to the
node (ROS 2 allows two nodes of one name; the check lives for a few seconds).

QoS: every input is subscribed as the node would with input_qos auto where the publishers are
reliable, else best effort (sensor data), which receives reliable and
best-effort publishers alike, so the check sees any camera. What the node itself would get is
judged from each publisher's offered QoS (`get_publishers_info_by_topic`) against the node's
request (input_qos); with input_qos reliable a second subscription with exactly the node's
profile counts what it really receives.
"""

from __future__ import annotations

import os
import time
from typing import Any

from edgefuse.ros_bridge.config import ROS2_TOPICS, InputQos, NodeConfig
from edgefuse.ros_bridge.inputs_check import InputsCheck, Offer, Report, Role

DISCOVERY_S = 5.0   # s at most to discover the inputs' publishers before listening


def _distro_parameters(rclpy: Any) -> set[str]:
    """The parameters every node of this ROS 2 distribution declares by itself (use_sim_time,
    Jazzy's start_type_description_service...): those of a bare node without any overrides."""
    bare = rclpy.create_node("edgefuse_check_bare", use_global_arguments=False, start_parameter_services=False)
    try:
        return set(bare.get_parameters_by_prefix(""))
    finally:
        bare.destroy_node()


def _config(rclpy: Any, node: Any, overrides: dict[str, Any]) -> NodeConfig:
    own = _distro_parameters(rclpy)
    given = {n: p.value for n, p in node.get_parameters_by_prefix("").items()}
    fields = NodeConfig.__dataclass_fields__
    given = {n: v for n, v in given.items() if n in fields or n not in own}
    return NodeConfig.from_params(given, overrides, defaults=ROS2_TOPICS)


def _offer(info: Any) -> Offer:
    qos = info.qos_profile
    name = f"{info.node_namespace.rstrip('/')}/{info.node_name}"
    return Offer(name, qos.reliability.name.lower(), qos.durability.name.lower())


def check(overrides: dict[str, Any], argv: list[str], seconds: float, name: str = "edgefuse") -> Report:
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init(args=[name, *argv])
    node = None
    try:
        node = Node(name, automatically_declare_parameters_from_overrides=True)
        config = _config(rclpy, node, overrides)
        wanted = {Role.COLOR: config.rgb_topic, Role.DEPTH: config.depth_topic,
                  Role.CAMERA_INFO: config.camera_info_topic}
        if not config.use_depth:
            del wanted[Role.DEPTH]
        clock = node.get_clock()
        got: dict[Role, int] = {role: 0 for role in wanted}
        # remaps applied (rclpy before Jazzy has no resolve_topic_name: the name as given)
        resolve = getattr(node, "resolve_topic_name", lambda topic: topic)
        state = InputsCheck(config, {role: resolve(topic) for role, topic in wanted.items()}, ros="2",
                            fastdds_profile=fastdds_profile())

        def on(role: Role):
            def callback(msg: Any) -> None:
                args = (msg, clock.now().nanoseconds, time.monotonic())
                state.add_info(*args) if role is Role.CAMERA_INFO else state.add_image(role, *args)
            return callback

        def count(role: Role):
            def callback(_msg: Any) -> None:
                got[role] += 1
            return callback

        msg_type = {Role.COLOR: Image, Role.DEPTH: Image, Role.CAMERA_INFO: CameraInfo}
        listen = state.roles_to_subscribe()
        # DDS discovery first (a loaded machine or a real network can take seconds): the
        # listening time starts once every input has a publisher, or after DISCOVERY_S.
        discovery = time.monotonic() + DISCOVERY_S
        while (time.monotonic() < discovery and rclpy.ok()
               and not all(node.get_publishers_info_by_topic(t) for t in listen.values())):
            rclpy.spin_once(node, timeout_sec=0.1)
        for role, topic in listen.items():
            # Listen as the node does with input_qos auto (reliable from a reliable camera: a
            # best-effort reader would lose fragments of large images and under-count the
            # rate); otherwise best effort, which hears every publisher.
            offered = [p.qos_profile.reliability == ReliabilityPolicy.RELIABLE
                       for p in node.get_publishers_info_by_topic(topic)]
            follow = config.input_qos is InputQos.AUTO and InputQos.AUTO.reliable(offered)
            qos = (QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
                   if follow else qos_profile_sensor_data)
            node.create_subscription(msg_type[role], topic, on(role), qos)
        reliable = config.input_qos is InputQos.RELIABLE
        if reliable:   # exactly the node's subscription (ros_bridge/ros2.py)
            node_qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
            for role, topic in listen.items():
                node.create_subscription(msg_type[role], topic, count(role), node_qos)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and rclpy.ok():
            rclpy.spin_once(node, timeout_sec=0.05)
        me = f"{node.get_namespace().rstrip('/')}/{node.get_name()}"
        types: dict[str, list[str]] = {}
        offers: dict[str, list[Offer]] = {}
        for topic, _ in node.get_topic_names_and_types():
            pubs = [p for p in node.get_publishers_info_by_topic(topic) if _offer(p).node != me]
            if pubs:   # a topic only we subscribe to does not exist for the user
                types[topic] = sorted({p.topic_type for p in pubs})
                offers[topic] = [_offer(p) for p in pubs]
        state.set_graph(types, offers, requested_got=got if reliable else None)
        return state.report(seconds)
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


def fastdds_profile() -> str | None:
    """The Fast DDS profile file participants of this environment load ('' none; None when
    the middleware is not Fast DDS): the node, started alike, gets the same."""
    if os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp") != "rmw_fastrtps_cpp":
        return None
    return os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE") or os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") or ""
