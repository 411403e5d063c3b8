"""ROS 2 adapter (rclpy): wires subscriptions, publishers, parameters and a timer to the core.

QoS (REP-2003): publishers reliable (what rviz / rqt subscribe with), subscriptions with the
sensor-data profile (best effort, keep last), both settable by the input_qos / output_qos
parameters. Lazy outputs check the subscription count. Parameters given on the command line
or in a launch file are read back whole (automatically declared from the overrides), so an
unknown one is an error listing the valid ones; the rest are declared with their defaults so
`ros2 param list` shows them.

rclpy cannot be installed on the development machines: this file is exercised against a fake
of exactly the rclpy calls it makes (tests/ros_bridge/test_ros2_adapter.py), and every rclpy
name it uses is checked against Humble's and Jazzy's rclpy.
"""

from __future__ import annotations

import array
import dataclasses
import enum
from typing import Any

from edgefuse.errors import EdgefuseError
from edgefuse.ros_bridge.config import ROS2_TOPICS, InputQos, NodeConfig, OutputQos
from edgefuse.ros_bridge.core import NodeCore, check_startup
from edgefuse.ros_bridge.messages import IMAGES, DiagnosticsMessage, ImageMessage, InfoMessage, Topic


def _import_ros2() -> dict[str, Any]:
    try:
        import rclpy
        from builtin_interfaces.msg import Time
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        from rclpy.executors import ExternalShutdownException
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
        from std_msgs.msg import Header, String
    except ImportError as exc:
        raise EdgefuseError(f"ROS 2 is not importable ({exc}); source /opt/ros/<distro>/setup.bash first") from None
    return dict(rclpy=rclpy, Node=Node, QoSProfile=QoSProfile, ReliabilityPolicy=ReliabilityPolicy,
                HistoryPolicy=HistoryPolicy, DurabilityPolicy=DurabilityPolicy,
                qos_profile_sensor_data=qos_profile_sensor_data, ExternalShutdownException=ExternalShutdownException,
                Time=Time, Header=Header, String=String, Image=Image, CameraInfo=CameraInfo,
                RegionOfInterest=RegionOfInterest, DiagnosticArray=DiagnosticArray,
                DiagnosticStatus=DiagnosticStatus, KeyValue=KeyValue)


class Ros2Transport:
    """The core's Outlet + log on rclpy publishers."""

    def __init__(self, node: Any, r: dict[str, Any], config: NodeConfig) -> None:
        self.node = node
        self.r = r
        reliability = {OutputQos.RELIABLE: r["ReliabilityPolicy"].RELIABLE,
                       OutputQos.BEST_EFFORT: r["ReliabilityPolicy"].BEST_EFFORT}[config.output_qos]
        qos = r["QoSProfile"](depth=2, history=r["HistoryPolicy"].KEEP_LAST, reliability=reliability)
        latched = r["QoSProfile"](depth=1, history=r["HistoryPolicy"].KEEP_LAST,
                                  reliability=r["ReliabilityPolicy"].RELIABLE,
                                  durability=r["DurabilityPolicy"].TRANSIENT_LOCAL)
        pub = node.create_publisher
        self.pubs = {t: pub(r["Image"], f"~/{t.value}", qos) for t in IMAGES}
        self.pubs[Topic.CAMERA_INFO] = pub(r["CameraInfo"], f"~/{Topic.CAMERA_INFO.value}", qos)
        self.pubs[Topic.FRAME_INFO] = pub(r["String"], f"~/{Topic.FRAME_INFO.value}", qos)
        self.pubs[Topic.CLASSES] = pub(r["String"], f"~/{Topic.CLASSES.value}", latched)
        self.pubs[Topic.DIAGNOSTICS] = pub(r["DiagnosticArray"], Topic.DIAGNOSTICS.value, qos)
        self._convert = {ImageMessage: self._image, InfoMessage: self._info, str: self._string,
                         DiagnosticsMessage: self._diagnostics}
        self._logger = node.get_logger()

    def publish(self, topic: Topic, message: Any) -> None:
        self.pubs[topic].publish(self._convert[type(message)](message))

    def subscribed(self, topic: Topic) -> bool:
        return self.pubs[topic].get_subscription_count() > 0

    def now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def log(self, level: str, text: str) -> None:
        {"info": self._logger.info, "warn": self._logger.warning, "error": self._logger.error}[level](text)

    # --- fields -> rclpy messages ---
    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self.r["Header"](stamp=self.r["Time"](sec=sec, nanosec=nanosec), frame_id=frame_id)

    def _image(self, msg: ImageMessage) -> Any:
        im = msg.image
        # array('B', bytes) is one memcpy; rclpy would check a bytes object element by element.
        return self.r["Image"](header=self._header(msg.header.stamp_ns, msg.header.frame_id), height=im.height,
                               width=im.width, encoding=im.encoding, is_bigendian=im.is_bigendian, step=im.step,
                               data=array.array("B", im.data.tobytes()))

    def _info(self, msg: InfoMessage) -> Any:
        i = msg.info
        roi = self.r["RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self.r["CameraInfo"](header=self._header(msg.header.stamp_ns, msg.header.frame_id),
                                    height=i["height"], width=i["width"], distortion_model=i["distortion_model"],
                                    d=list(i["d"]), k=list(i["k"]), r=list(i["r"]), p=list(i["p"]),
                                    binning_x=0, binning_y=0, roi=roi)

    def _string(self, text: str) -> Any:
        return self.r["String"](data=text)

    def _diagnostics(self, msg: DiagnosticsMessage) -> Any:
        r = self.r
        # `byte` fields are bytes of length 1 in rclpy (DiagnosticStatus.OK == b'\x00').
        status = [r["DiagnosticStatus"](level=bytes([s.level]), name=s.name, message=s.message,
                                        hardware_id=s.hardware_id,
                                        values=[r["KeyValue"](key=k, value=v) for k, v in s.values])
                  for s in msg.status]
        return r["DiagnosticArray"](header=self._header(msg.stamp_ns, ""), status=status)


def _param_value(value: Any) -> Any:
    """A dataclass default as a ROS 2 parameter value (enums as their strings)."""
    return value.value if isinstance(value, enum.Enum) else value


def read_config(node: Any, overrides: dict[str, Any]) -> NodeConfig:
    """Every parameter the node was given, validated; then the others declared with defaults."""
    given = {name: p.value for name, p in node.get_parameters_by_prefix("").items()}
    config = NodeConfig.from_params(given, overrides, defaults=ROS2_TOPICS)
    for f in dataclasses.fields(NodeConfig):
        if f.name not in given:
            node.declare_parameter(f.name, _param_value(getattr(config, f.name)))
    return config


def run(overrides: dict[str, Any], argv: list[str], name: str = "edgefuse") -> None:
    """Run the node until shutdown. `argv`: ROS arguments (--ros-args -r ... -p ...)."""
    r = _import_ros2()
    rclpy = r["rclpy"]
    rclpy.init(args=[name, *argv])
    node = r["Node"](name, automatically_declare_parameters_from_overrides=True)
    core = None
    try:
        config = read_config(node, overrides)
        transport = Ros2Transport(node, r, config)
        core = NodeCore(config, transport, name=node.get_name())
        if not node.has_parameter("classes"):
            node.declare_parameter("classes", core.classes)
        core.start()
        sub_qos = (r["qos_profile_sensor_data"] if config.input_qos is InputQos.SENSOR_DATA else
                   r["QoSProfile"](depth=5, history=r["HistoryPolicy"].KEEP_LAST,
                                   reliability=r["ReliabilityPolicy"].RELIABLE))
        node.create_subscription(r["Image"], config.rgb_topic, core.on_color, sub_qos)
        if config.use_depth:
            node.create_subscription(r["Image"], config.depth_topic, core.on_depth, sub_qos)
        node.create_subscription(r["CameraInfo"], config.camera_info_topic, core.on_info, sub_qos)
        node.create_timer(config.diagnostics_period, core.tick)
        transport.log("info", f"edgefuse: {config.bundle} ({config.backend}) on {config.rgb_topic}"
                              f"{' + ' + config.depth_topic if config.use_depth else ' (RGB only)'}")

        def image_topics() -> list[str]:
            return [t for t, types in node.get_topic_names_and_types() if "sensor_msgs/msg/Image" in types]

        if check_startup(core, image_topics, alive=rclpy.ok, step=lambda: rclpy.spin_once(node, timeout_sec=0.05)):
            rclpy.spin(node)
    except (KeyboardInterrupt, r["ExternalShutdownException"]):
        pass
    finally:
        if core is not None:
            core.stop()
        node.destroy_node()
        rclpy.try_shutdown()
