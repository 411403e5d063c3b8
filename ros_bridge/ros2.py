"""ROS 2 adapter (rclpy): wires subscriptions, publishers, parameters and a timer to the core.

Tested against the real rclpy (ROS 2 Jazzy with Fast DDS, from PyPI wheels) in
tests/ros_bridge/test_ros2_live.py; see docs/ros.md for what ran and what did not.

- QoS (REP-2003): publishers reliable (what rviz / rqt subscribe with), subscriptions with the
  sensor-data profile (best effort, keep last), both settable (input_qos / output_qos). A
  subscription that can never match its publisher (reliable request, best-effort camera) is
  said once, naming both profiles, from rclpy's incompatible-QoS event: not silence.
- Parameters given on the command line or in a launch file are read back whole, so an
  unknown one is an error listing the valid ones; the ones rclpy declares on every node
  (use_sim_time, Jazzy's start_type_description_service, whatever a later distribution adds)
  are found on a bare node and never count as options. The rest are declared with their
  defaults so `ros2 param list` shows them. `ros2 param set` changes the live options
  (config.LIVE) on the next frame and refuses the others with the reason.
- Time: stamps are copied from the input; the node's clock (use_sim_time follows /clock) sets
  the depth timeout and the publishing delay.
"""

from __future__ import annotations

import array
import dataclasses
import enum
from typing import Any

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.ros_bridge.config import ROS2_TOPICS, InputQos, NodeConfig, OutputQos
from edgefuse.ros_bridge.core import NodeCore, check_startup
from edgefuse.ros_bridge.messages import IMAGES, DiagnosticsMessage, ImageMessage, InfoMessage, Topic


def _import_ros2() -> dict[str, Any]:
    try:
        import rclpy
        from builtin_interfaces.msg import Time
        from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
        from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
        try:
            from rclpy.event_handler import SubscriptionEventCallbacks
        except ImportError:   # Humble names the module qos_event (event_handler from Iron on)
            from rclpy.qos_event import SubscriptionEventCallbacks
        from rclpy.executors import ExternalShutdownException
        from rclpy.node import Node
        from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
        from sensor_msgs.msg import CameraInfo, Image, RegionOfInterest
        from std_msgs.msg import Header, String
    except ImportError as exc:
        raise EdgefuseError(f"ROS 2 is not importable ({exc}); source /opt/ros/<distro>/setup.bash first, or "
                            "pip install 'ros-jazzy-rclpy[fastrtps]' ros-jazzy-sensor-msgs ros-jazzy-std-msgs "
                            "ros-jazzy-diagnostic-msgs in an environment without ROS 1") from None
    return dict(rclpy=rclpy, Node=Node, QoSProfile=QoSProfile, ReliabilityPolicy=ReliabilityPolicy,
                HistoryPolicy=HistoryPolicy, DurabilityPolicy=DurabilityPolicy,
                qos_profile_sensor_data=qos_profile_sensor_data, ExternalShutdownException=ExternalShutdownException,
                SubscriptionEventCallbacks=SubscriptionEventCallbacks, SetParametersResult=SetParametersResult,
                ParameterDescriptor=ParameterDescriptor, Time=Time, Header=Header, String=String, Image=Image,
                CameraInfo=CameraInfo, RegionOfInterest=RegionOfInterest, DiagnosticArray=DiagnosticArray,
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
        logger = node.get_logger()
        # rclpy's logger binds a severity to each calling line and raises ValueError when one
        # line logs at another (issue 16): one method per severity, each its own call site.
        self._log = {"info": lambda text: logger.info(text),
                     "warn": lambda text: logger.warning(text),
                     "error": lambda text: logger.error(text)}

    def publish(self, topic: Topic, message: Any) -> None:
        self.pubs[topic].publish(self._convert[type(message)](message))

    def subscribed(self, topic: Topic) -> bool:
        return self.pubs[topic].get_subscription_count() > 0

    def now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def log(self, level: str, text: str) -> None:
        self._log[level](text)

    # --- fields -> rclpy messages ---
    def _header(self, stamp_ns: int, frame_id: str) -> Any:
        sec, nanosec = divmod(int(stamp_ns), 1_000_000_000)
        return self.r["Header"](stamp=self.r["Time"](sec=sec, nanosec=nanosec), frame_id=frame_id)

    def _image(self, msg: ImageMessage) -> Any:
        im = msg.image
        out = self.r["Image"](header=self._header(msg.header.stamp_ns, msg.header.frame_id), height=im.height,
                              width=im.width, encoding=im.encoding, is_bigendian=im.is_bigendian, step=im.step)
        # The `data` setter keeps an array('B') as it is; the constructor would copy it element
        # by element (array.array('B', data); benchmarks/ros2_conversion.py measures both).
        data = array.array("B")
        data.frombytes(memoryview(im.data).cast("B"))
        out.data = data
        return out

    def _info(self, msg: InfoMessage) -> Any:
        i = msg.info
        roi = self.r["RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
        return self.r["CameraInfo"](header=self._header(msg.header.stamp_ns, msg.header.frame_id),
                                    height=i["height"], width=i["width"], distortion_model=i["distortion_model"],
                                    d=[float(v) for v in i["d"]], k=[float(v) for v in i["k"]],
                                    r=[float(v) for v in i["r"]], p=[float(v) for v in i["p"]],
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
    """A dataclass value as a ROS 2 parameter value (enums as their strings)."""
    return value.value if isinstance(value, enum.Enum) else value


def client_parameters(r: dict[str, Any], context: Any) -> frozenset[str]:
    """The parameters this rclpy declares on every node by itself (use_sim_time, Jazzy's
    start_type_description_service, ...): read off a bare node that takes no arguments."""
    bare = r["Node"]("edgefuse_parameter_probe", context=context, use_global_arguments=False, enable_rosout=False,
                     start_parameter_services=False)
    try:
        return frozenset(bare.get_parameters_by_prefix(""))
    finally:
        bare.destroy_node()


def read_config(node: Any, overrides: dict[str, Any], own: frozenset[str] = frozenset()) -> NodeConfig:
    """Every parameter the node was given, validated; then the others declared with defaults.
    `own`: the client library's own parameters (not options)."""
    given = {name: p.value for name, p in node.get_parameters_by_prefix("").items()}
    config = NodeConfig.from_params(given, overrides, defaults=ROS2_TOPICS, ignore=own)
    for f in dataclasses.fields(NodeConfig):
        if f.name not in given:
            node.declare_parameter(f.name, _param_value(getattr(config, f.name)))
    return config


class LiveParameters:
    """`ros2 param set` on a running node: live options reach the core on the next frame; the
    others are refused with the reason (rclpy sends it back to the caller)."""

    def __init__(self, core: NodeCore, result_type: Any, own: frozenset[str]) -> None:
        self.core = core
        self.result = result_type
        self.own = own

    def __call__(self, params: list[Any]) -> Any:
        names = {f.name for f in dataclasses.fields(NodeConfig)}
        changes = {p.name: p.value for p in params if p.name in names}
        if not changes:      # use_sim_time and the like: rclpy's own business
            return self.result(successful=True)
        try:
            config = self.core.config.with_live(changes)
        except ConfigError as exc:
            return self.result(successful=False, reason=str(exc))
        self.core.reconfigure(config)
        self.core.transport.log("info", "parameters changed: " + ", ".join(f"{k}={v}" for k, v in changes.items()))
        return self.result(successful=True)


class Inputs:
    """The input subscriptions, each with the reliability input_qos asks for given the
    publishers now on its topic (InputQos.reliable); with `auto`, `follow_publishers()`
    re-subscribes a topic whose publishers changed their mind (a camera started after the
    node, or restarted with other QoS)."""

    def __init__(self, node: Any, r: dict[str, Any], config: NodeConfig, log: Any) -> None:
        self.node, self.r, self.config, self.log = node, r, config, log
        self.report = QosReport(node, config, log)
        self._subs: dict[str, tuple[Any, bool, tuple]] = {}

    def offered(self, topic: str) -> list[bool]:
        reliable = self.r["ReliabilityPolicy"].RELIABLE
        return [p.qos_profile.reliability == reliable for p in self.node.get_publishers_info_by_topic(topic)]

    def profile(self, reliable: bool) -> Any:
        r = self.r
        policy = r["ReliabilityPolicy"].RELIABLE if reliable else r["ReliabilityPolicy"].BEST_EFFORT
        return r["QoSProfile"](depth=5, history=r["HistoryPolicy"].KEEP_LAST, reliability=policy)

    def add(self, msg_type: Any, topic: str, callback: Any, lost: Any = None) -> None:
        reliable = self.config.input_qos.reliable(self.offered(topic))
        qos = self.profile(reliable)
        sub = self.node.create_subscription(msg_type, topic, callback, qos,
                                            event_callbacks=self.report.callbacks(self.r, topic, qos, lost))
        self._subs[topic] = (sub, reliable, (msg_type, callback, lost))

    def follow_publishers(self) -> None:
        for topic, (sub, reliable, args) in list(self._subs.items()):
            offered = self.offered(topic)
            if offered and self.config.input_qos.reliable(offered) != reliable:
                self.node.destroy_subscription(sub)
                self.add(args[0], topic, args[1], args[2])
                self.log("info", f"{topic}: subscribed {'reliable' if not reliable else 'best effort'}, as its "
                                 f"publishers offer (input_qos: auto)")


class QosReport:
    """rclpy's incompatible-QoS event on an input subscription, said once per topic with the
    profile the node requests and the ones its publishers offer."""

    def __init__(self, node: Any, config: NodeConfig, log: Any) -> None:
        self.node = node
        self.config = config
        self.log = log
        self._said: set[str] = set()

    def callbacks(self, r: dict[str, Any], topic: str, requested: Any, lost: Any = None) -> Any:
        """Incompatible QoS said once; `lost(n)`: messages the middleware lost before they
        reached the node (a best-effort reader falling behind), counted like drops."""
        return r["SubscriptionEventCallbacks"](
            incompatible_qos=lambda info: self.incompatible(topic, info, requested),
            message_lost=None if lost is None else (lambda info: lost(int(info.total_count_change))))

    def incompatible(self, topic: str, info: Any, requested: Any) -> None:
        if topic in self._said or self.config.input_qos is InputQos.AUTO:
            return     # auto: Inputs.follow_publishers re-subscribes within a second
        self._said.add(topic)
        kind = getattr(info, "last_policy_kind", "")
        policy = str(getattr(kind, "name", kind)).removeprefix("RMW_QOS_POLICY_").lower()
        offers = sorted({describe_qos(p.qos_profile) for p in self.node.get_publishers_info_by_topic(topic)})
        fix = ("set input_qos:=auto (follows the publishers) or sensor_data (best effort receives from every "
               "publisher)"
               if self.config.input_qos is InputQos.RELIABLE else "make the publisher's QoS match")
        self.log("error", f"{topic}: QoS incompatible ({policy}): this node requests {describe_qos(requested)} "
                          f"(input_qos: {self.config.input_qos.value}) but the publisher offers "
                          f"{' / '.join(offers) or 'an incompatible profile'}; no message will arrive: {fix}")


def describe_qos(profile: Any) -> str:
    """'reliable, volatile, keep_last 5' for a QoS profile."""
    def name(v: Any) -> str:
        return str(getattr(v, "name", v)).lower()

    text = f"{name(profile.reliability)}, {name(profile.durability)}"
    history = name(profile.history)
    # The graph does not carry a remote endpoint's history: only say it where it is known.
    return text if history in ("unknown", "system_default") else f"{text}, {history} {profile.depth}"


def run(overrides: dict[str, Any], argv: list[str], name: str = "edgefuse") -> None:
    """Run the node until shutdown (Ctrl-C, SIGTERM). `argv`: ROS arguments (--ros-args -r ... -p ...)."""
    r = _import_ros2()
    rclpy = r["rclpy"]
    rclpy.init(args=[name, *argv])
    node = core = None
    try:
        own = client_parameters(r, rclpy.get_default_context())
        node = r["Node"](name, automatically_declare_parameters_from_overrides=True)
        config = read_config(node, overrides, own)
        transport = Ros2Transport(node, r, config)
        core = NodeCore(config, transport, name=node.get_name())
        if not node.has_parameter("classes"):
            node.declare_parameter("classes", core.classes, r["ParameterDescriptor"](read_only=True))
        node.add_on_set_parameters_callback(LiveParameters(core, r["SetParametersResult"], own))
        core.start()
        inputs = Inputs(node, r, config, transport.log)
        inputs.add(r["Image"], config.rgb_topic, core.on_color, lost=lambda n: core.diagnostics.count("lost", n))
        if config.use_depth:
            inputs.add(r["Image"], config.depth_topic, core.on_depth)
        inputs.add(r["CameraInfo"], config.camera_info_topic, core.on_info)
        if config.input_qos is InputQos.AUTO:   # follow the publishers as they come and go
            node.create_timer(1.0, inputs.follow_publishers)
        def tick() -> None:
            try:
                core.tick()
            except Exception:   # noqa: BLE001 - a SIGINT / SIGTERM shuts the context down under
                if rclpy.ok():  # a timer already due: its publish fails, nothing is wrong
                    raise

        node.create_timer(config.diagnostics_period, tick)
        transport.log("info", f"edgefuse: {config.bundle} ({config.backend}) on {config.rgb_topic}"
                              f"{' + ' + config.depth_topic if config.use_depth else ' (RGB only)'}; {core.step_line}")

        def image_topics() -> list[str]:   # published by someone (the graph lists our subscriptions too)
            return [t for t, types in node.get_topic_names_and_types()
                    if "sensor_msgs/msg/Image" in types and node.count_publishers(t) > 0]

        if check_startup(core, image_topics, alive=rclpy.ok, step=lambda: rclpy.spin_once(node, timeout_sec=0.05)):
            try:
                rclpy.spin(node)
            except Exception:   # noqa: BLE001 - a SIGINT / SIGTERM can shut the context down between
                if rclpy.ok():  # spin's check and its next wait set (RCLError "context is not valid"):
                    raise       # a normal stop; anything else is a real error
    except (KeyboardInterrupt, r["ExternalShutdownException"]):
        pass
    finally:
        if core is not None:
            core.stop()
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
