"""ROS 1 adapter (rospy): wires subscriptions, publishers, parameters and a timer to the core.

Image subscriptions use queue_size=1 and a large buff_size (rospy otherwise queues old images
in its socket buffer: the classic stale-frame complaint); publishers keep a short queue so a
slow subscriber loses messages rather than blocking the worker. Outputs live in the node's
private namespace (~mask = /edgefuse/mask for the default name), so renaming the node
(__name:=left) or pushing it into a namespace moves them along.
"""

from __future__ import annotations

import os
from typing import Any

from edgefuse.errors import EdgefuseError
from edgefuse.ros_bridge.config import NodeConfig
from edgefuse.ros_bridge.core import NodeCore, check_startup
from edgefuse.ros_bridge.messages import IMAGES, DiagnosticsMessage, ImageMessage, InfoMessage, Topic


class Ros1Transport:
    """The core's Outlet + log on rospy publishers."""

    def __init__(self, rospy: Any, msgs: dict[str, Any]) -> None:
        self.rospy = rospy
        self.m = msgs
        image, string = msgs["Image"], msgs["String"]
        pub = rospy.Publisher
        self.pubs = {t: pub(f"~{t.value}", image, queue_size=2) for t in IMAGES}
        self.pubs[Topic.CAMERA_INFO] = pub(f"~{Topic.CAMERA_INFO.value}", msgs["CameraInfo"], queue_size=2)
        self.pubs[Topic.FRAME_INFO] = pub(f"~{Topic.FRAME_INFO.value}", string, queue_size=10)
        self.pubs[Topic.CLASSES] = pub(f"~{Topic.CLASSES.value}", string, queue_size=1, latch=True)
        self.pubs[Topic.DIAGNOSTICS] = pub(Topic.DIAGNOSTICS.value, msgs["DiagnosticArray"], queue_size=2)
        self._convert = {ImageMessage: self._image, InfoMessage: self._info, str: self._string,
                         DiagnosticsMessage: self._diagnostics}

    def publish(self, topic: Topic, message: Any) -> None:
        self.pubs[topic].publish(self._convert[type(message)](message))

    def subscribed(self, topic: Topic) -> bool:
        return self.pubs[topic].get_num_connections() > 0

    def now_ns(self) -> int:
        return int(self.rospy.Time.now().to_nsec())

    def log(self, level: str, text: str) -> None:
        {"info": self.rospy.loginfo, "warn": self.rospy.logwarn, "error": self.rospy.logerr}[level](text)

    # --- fields -> rospy messages ---
    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        sec, nsec = divmod(int(stamp_ns), 1_000_000_000)
        return self.m["Header"](stamp=self.rospy.Time(sec, nsec), frame_id=frame_id)

    def _image(self, msg: ImageMessage) -> Any:
        im = msg.image
        return self.m["Image"](header=self._header(msg.header.stamp_ns, msg.header.frame_id), height=im.height,
                               width=im.width, encoding=im.encoding, is_bigendian=im.is_bigendian, step=im.step,
                               data=im.data.tobytes())

    def _info(self, msg: InfoMessage) -> Any:
        i = msg.info
        return self.m["CameraInfo"](header=self._header(msg.header.stamp_ns, msg.header.frame_id),
                                    height=i["height"], width=i["width"], distortion_model=i["distortion_model"],
                                    D=i["d"], K=i["k"], R=i["r"], P=i["p"])

    def _string(self, text: str) -> Any:
        return self.m["String"](data=text)

    def _diagnostics(self, msg: DiagnosticsMessage) -> Any:
        m = self.m
        status = [m["DiagnosticStatus"](level=s.level, name=s.name, message=s.message, hardware_id=s.hardware_id,
                                        values=[m["KeyValue"](key=k, value=v) for k, v in s.values])
                  for s in msg.status]
        return m["DiagnosticArray"](header=self._header(msg.stamp_ns, ""), status=status)


def _import_ros1() -> tuple[Any, dict[str, Any]]:
    try:
        import rosgraph
        import rospy
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        from sensor_msgs.msg import CameraInfo, Image
        from std_msgs.msg import Header, String
    except ImportError as exc:
        raise EdgefuseError(f"ROS 1 is not importable ({exc}); source /opt/ros/<distro>/setup.bash, or on Debian "
                            "`apt install python3-rospy python3-sensor-msgs python3-std-msgs "
                            "python3-diagnostic-msgs`") from None
    msgs = dict(Image=Image, CameraInfo=CameraInfo, Header=Header, String=String, DiagnosticArray=DiagnosticArray,
                DiagnosticStatus=DiagnosticStatus, KeyValue=KeyValue)
    return rospy, {"rosgraph": rosgraph, **msgs}


def run(overrides: dict[str, Any], argv: list[str], name: str = "edgefuse") -> None:
    """Run the node until shutdown (Ctrl-C, rosnode kill). `argv`: ROS arguments (remaps,
    __name:=, _param:=value); `overrides`: the command line's options, which win over params."""
    rospy, msgs = _import_ros1()
    rosgraph = msgs.pop("rosgraph")
    uri = os.environ.get("ROS_MASTER_URI", "http://localhost:11311")
    if not rosgraph.is_master_online():
        raise EdgefuseError(f"no ROS master at {uri}: start roscore, or set ROS_MASTER_URI to the robot's master")
    rospy.init_node(name, argv=[name, *argv])
    params = rospy.get_param("~", {})
    config = NodeConfig.from_params(params if isinstance(params, dict) else {}, overrides)
    transport = Ros1Transport(rospy, msgs)
    core = NodeCore(config, transport, name=rospy.get_name())
    rospy.set_param("~classes", core.classes)
    core.start()
    try:
        sub = dict(queue_size=1, buff_size=config.buff_size, tcp_nodelay=True)
        rospy.Subscriber(config.rgb_topic, msgs["Image"], core.on_color, **sub)
        if config.use_depth:
            rospy.Subscriber(config.depth_topic, msgs["Image"], core.on_depth, **sub)
        rospy.Subscriber(config.camera_info_topic, msgs["CameraInfo"], core.on_info, queue_size=1)
        rospy.Timer(rospy.Duration(config.diagnostics_period), lambda _event: core.tick())
        transport.log("info", f"edgefuse: {config.bundle} ({config.backend}) on {config.rgb_topic}"
                              f"{' + ' + config.depth_topic if config.use_depth else ' (RGB only)'}; {core.step_line}")
        if check_startup(core, lambda: [t for t, ty in rospy.get_published_topics() if ty == "sensor_msgs/Image"],
                         alive=lambda: not rospy.is_shutdown()):
            rospy.spin()
    finally:
        core.stop()
        if not rospy.is_shutdown():
            rospy.signal_shutdown("edgefuse stopped")
