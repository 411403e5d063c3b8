"""`edgefuse ros --check` on ROS 1 (rospy): subscribe to the node's inputs for a few seconds and
feed inputs_check.InputsCheck; then ask the master which topics exist and who publishes them.

The listener is a node of its own (an anonymous name): taking the node's name would make the
master shut down a running node of that name. It reads the node's parameters the way the node
does — the node's private namespace (`__name:=`, default edgefuse; a launch file's params)
overlaid with `_param:=value` arguments — and rospy applies the same remaps.
"""

from __future__ import annotations

import os
import time
from typing import Any

from edgefuse.errors import EdgefuseError
from edgefuse.ros_bridge.config import NodeConfig
from edgefuse.ros_bridge.inputs_check import InputsCheck, Offer, Report, Role


def _node_name(argv: list[str], default: str = "edgefuse") -> str:
    """The name the node would take (`__name:=left`) ; the listener reads its parameters."""
    for arg in argv:
        if arg.startswith("__name:="):
            return arg.split(":=", 1)[1]
    return default


def check(overrides: dict[str, Any], argv: list[str], seconds: float) -> Report:
    import rosgraph
    import rospy
    from sensor_msgs.msg import CameraInfo, Image

    uri = os.environ.get("ROS_MASTER_URI", "http://localhost:11311")
    if not rosgraph.is_master_online():
        raise EdgefuseError(f"no ROS master at {uri}: start roscore, or set ROS_MASTER_URI to the robot's master")
    name = _node_name(argv)
    own_args = [a for a in argv if not a.startswith("__name:=")]
    rospy.init_node("edgefuse_check", argv=["edgefuse_check", *own_args], anonymous=True, disable_signals=True)
    try:
        params = rospy.get_param(rospy.resolve_name(name), {})
        given = dict(params) if isinstance(params, dict) else {}
        mine = rospy.get_param("~", {})
        given.update(mine if isinstance(mine, dict) else {})
        config = NodeConfig.from_params(given, overrides)
        wanted = {Role.COLOR: config.rgb_topic, Role.DEPTH: config.depth_topic,
                  Role.CAMERA_INFO: config.camera_info_topic}
        if not config.use_depth:
            del wanted[Role.DEPTH]
        topics = {role: rospy.resolve_name(topic) for role, topic in wanted.items()}   # remaps applied
        state = InputsCheck(config, topics, ros="1")

        def now_ns() -> int:
            return int(rospy.Time.now().to_nsec())

        def on(role: Role):
            add = state.add_info if role is Role.CAMERA_INFO else (lambda m, n, t: state.add_image(role, m, n, t))
            return lambda msg: add(msg, now_ns(), time.monotonic())

        sub = dict(queue_size=10, buff_size=config.buff_size, tcp_nodelay=True)
        subs = [rospy.Subscriber(topic, CameraInfo if r is Role.CAMERA_INFO else Image, on(r), **sub)
                for r, topic in state.roles_to_subscribe().items()]
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not rospy.is_shutdown():
            time.sleep(0.05)
        for s in subs:
            s.unregister()
        master = rosgraph.Master(rospy.get_name())
        types: dict[str, list[str]] = {}
        for topic, type_name in master.getPublishedTopics(""):   # topics with a publisher
            types.setdefault(topic, []).append(type_name)
        me = rospy.get_name()
        publishers = {topic: [Offer(n) for n in nodes if n != me] for topic, nodes in master.getSystemState()[0]}
        state.set_graph(types, {t: publishers.get(t, []) for t in topics.values()})
        return state.report(seconds)
    finally:
        rospy.signal_shutdown("edgefuse check done")
