"""The ROS 2 adapter (rclpy cannot be installed here): its wiring against a small fake of
exactly the rclpy calls it makes, with the real ROS 2 message layouts (rosbags' Humble and
Jazzy typestores: a misspelt field fails, and what it publishes must serialise to CDR), and
a static check that every rclpy name it uses exists in both Humble's and Jazzy's rclpy."""

from __future__ import annotations

import ast
import enum
import json
import sys
import threading
import time
import types
from pathlib import Path

import numpy as np
import pytest
from ros_fixtures import FRAME_ID, H, W, bag_messages, stamp

pytest.importorskip("rosbags")

from rosbags.typesys import Stores, get_typestore  # noqa: E402

from edgefuse.errors import ConfigError  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "ros_bridge" / "ros2.py"
VOCAB = Path(__file__).parent / "data" / "rclpy-api"


# --- the fake: rclpy's surface the adapter uses, nothing more ----------------------------------
class ReliabilityPolicy(enum.Enum):
    RELIABLE = 1
    BEST_EFFORT = 2


class HistoryPolicy(enum.Enum):
    KEEP_LAST = 1


class DurabilityPolicy(enum.Enum):
    TRANSIENT_LOCAL = 1


class QoSProfile:
    def __init__(self, *, depth, history=None, reliability=None, durability=None):
        self.depth, self.history, self.reliability, self.durability = depth, history, reliability, durability


class ExternalShutdownException(Exception):
    pass


class Parameter:
    def __init__(self, value):
        self.value = value


class Publisher:
    def __init__(self, msg_type, topic, qos):
        self.msg_type, self.topic, self.qos = msg_type, topic, qos
        self.sent: list = []
        self.subscribers = 0

    def publish(self, msg):
        assert isinstance(msg, self.msg_type), (self.topic, type(msg))
        self.sent.append(msg)

    def get_subscription_count(self):
        return self.subscribers


class Logger:
    def __init__(self):
        self.lines: list[tuple[str, str]] = []

    def info(self, text):
        self.lines.append(("info", text))

    def warning(self, text):
        self.lines.append(("warn", text))

    def error(self, text):
        self.lines.append(("error", text))


class Clock:
    def now(self):
        return types.SimpleNamespace(nanoseconds=time.time_ns())


class Node:
    """rclpy.node.Node as the adapter uses it; `overrides`: parameters from a launch file."""

    overrides: dict = {}
    last: Node | None = None

    def __init__(self, name, *, automatically_declare_parameters_from_overrides=False):
        assert automatically_declare_parameters_from_overrides   # else unknown parameters would vanish
        self.name = name
        self.params = {"use_sim_time": False, **self.overrides}
        self.pubs: dict[str, Publisher] = {}
        self.subs: dict[str, tuple] = {}
        self.timers: list = []
        self.logger = Logger()
        self.destroyed = False
        Node.last = self

    def get_parameters_by_prefix(self, prefix):
        assert prefix == ""
        return {k: Parameter(v) for k, v in self.params.items()}

    def declare_parameter(self, name, value):
        assert name not in self.params, f"{name} declared twice"
        assert not isinstance(value, enum.Enum)         # ROS parameters hold plain values
        self.params[name] = value

    def has_parameter(self, name):
        return name in self.params

    def create_publisher(self, msg_type, topic, qos):
        self.pubs[topic] = Publisher(msg_type, topic, qos)
        return self.pubs[topic]

    def create_subscription(self, msg_type, topic, callback, qos):
        self.subs[topic] = (msg_type, callback, qos)

    def create_timer(self, period, callback):
        self.timers.append((period, callback))

    def get_logger(self):
        return self.logger

    def get_clock(self):
        return Clock()

    def get_name(self):
        return self.name

    def get_topic_names_and_types(self):
        return [(t, ["sensor_msgs/msg/Image"]) for t in self.pubs]

    def destroy_node(self):
        self.destroyed = True


class Rclpy(types.ModuleType):
    """The rclpy module: init / ok / spin_once / spin / try_shutdown. `script(node)` plays the
    camera while the adapter spins."""

    def __init__(self, script):
        super().__init__("rclpy")
        self.script = script
        self.shut = False

    def init(self, *, args):
        self.args = args

    def ok(self):
        return not self.shut

    def spin_once(self, node, *, timeout_sec):
        self.script(node, first_only=True)

    def spin(self, node):
        self.script(node, first_only=False)

    def try_shutdown(self):
        self.shut = True


def install_fake(monkeypatch, store, script, overrides):
    ts = get_typestore(store)
    t = ts.types
    rclpy = Rclpy(script)
    modules = {
        "rclpy": rclpy,
        "rclpy.node": dict(Node=Node),
        "rclpy.qos": dict(QoSProfile=QoSProfile, ReliabilityPolicy=ReliabilityPolicy, HistoryPolicy=HistoryPolicy,
                          DurabilityPolicy=DurabilityPolicy,
                          qos_profile_sensor_data=QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                                                             reliability=ReliabilityPolicy.BEST_EFFORT)),
        "rclpy.executors": dict(ExternalShutdownException=ExternalShutdownException),
        "builtin_interfaces.msg": dict(Time=t["builtin_interfaces/msg/Time"]),
        "std_msgs.msg": dict(Header=t["std_msgs/msg/Header"], String=t["std_msgs/msg/String"]),
        "sensor_msgs.msg": dict(Image=t["sensor_msgs/msg/Image"], CameraInfo=t["sensor_msgs/msg/CameraInfo"],
                                RegionOfInterest=t["sensor_msgs/msg/RegionOfInterest"]),
        "diagnostic_msgs.msg": {k: t[f"diagnostic_msgs/msg/{k}"] for k in ("DiagnosticArray", "DiagnosticStatus",
                                                                           "KeyValue")},
    }
    for name, content in modules.items():
        module = content if isinstance(content, types.ModuleType) else types.ModuleType(name)
        if not isinstance(content, types.ModuleType):
            module.__dict__.update(content)
        monkeypatch.setitem(sys.modules, name, module)
    for parent in ("builtin_interfaces", "std_msgs", "sensor_msgs", "diagnostic_msgs"):
        monkeypatch.setitem(sys.modules, parent, types.ModuleType(parent))
    monkeypatch.setattr(Node, "overrides", overrides)
    return ts, rclpy


def _wait(condition, timeout=30.0):
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)


def _cdr(ts, msg, msgtype):
    """Serialise what the adapter published (rclpy holds uint8[] as array('B'), rosbags wants
    numpy) and read it back: proves the message is a valid ROS 2 message of that type."""
    def numpy_fields(m):
        for name in getattr(m, "__dataclass_fields__", {}):
            v = getattr(m, name)
            if hasattr(v, "typecode"):
                setattr(m, name, np.frombuffer(v, np.uint8))
            elif isinstance(v, list) and v and isinstance(v[0], float):
                setattr(m, name, np.asarray(v, np.float64))
            elif isinstance(v, list):
                for item in v:
                    numpy_fields(item)
            elif isinstance(v, bytes) and name == "level":
                setattr(m, name, v[0])                   # rclpy: byte = bytes of 1; rosbags: int
            else:
                numpy_fields(v)
    numpy_fields(msg)
    return ts.deserialize_cdr(ts.serialize_cdr(msg, msgtype), msgtype)


@pytest.mark.parametrize("store", [Stores.ROS2_HUMBLE, Stores.ROS2_JAZZY])
def test_ros2_node_wiring_with_real_message_layouts(monkeypatch, bundle_dir, store):
    from edgefuse.ros_bridge import ros2

    def script(node, first_only):
        ts = get_typestore(store)
        _, on_color, _ = node.subs["/camera/camera/color/image_raw"]
        _, on_depth, _ = node.subs["/camera/camera/aligned_depth_to_color/image_raw"]
        _, on_info, _ = node.subs["/camera/camera/color/camera_info"]
        for i in range(1) if first_only else range(1, 4):
            # One frame at a time: the newest-only slot would drop a frame sent while the
            # worker is busy (that is test_node_core's subject, not this one's).
            _wait(lambda: len(node.pubs["~/frame_info"].sent) >= i)
            if i == 3:
                break
            msgs = bag_messages(ts, i, ros1=False)
            on_info(msgs["info"])
            on_depth(msgs["depth"])
            on_color(msgs["color"])
        if not first_only:
            for _, tick in node.timers:
                tick()

    ts, rclpy = install_fake(monkeypatch, store, script, {"mask_size": "network", "threads": 1})
    ros2.run({"bundle": str(bundle_dir)}, ["--ros-args", "-r", "__node:=seg"], name="edgefuse")
    node = Node.last
    assert rclpy.args == ["edgefuse", "--ros-args", "-r", "__node:=seg"] and rclpy.shut and node.destroyed
    # QoS: sensor data in, reliable out, classes transient local (latched).
    assert {q.reliability for _, _, q in node.subs.values()} == {ReliabilityPolicy.BEST_EFFORT}
    assert node.pubs["~/mask"].qos.reliability is ReliabilityPolicy.RELIABLE
    assert node.pubs["~/classes"].qos.durability is DurabilityPolicy.TRANSIENT_LOCAL
    assert set(node.pubs) == {"~/mask", "~/mask_color", "~/overlay", "~/camera_info", "~/frame_info", "~/classes",
                              "/diagnostics"}
    # Parameters: the given ones read, every other option declared with its default.
    assert node.params["mask_size"] == "network" and node.params["depth_timeout"] == 1.0
    assert node.params["input_qos"] == "sensor_data" and node.params["classes"][0] == "void"
    # Outputs: exact stamps and frame_id, network size, CDR-serialisable, lazy ones absent.
    masks = node.pubs["~/mask"].sent
    assert len(masks) == 3
    for i, m in enumerate(masks):
        m = _cdr(ts, m, "sensor_msgs/msg/Image")
        assert (m.header.stamp.sec, m.header.stamp.nanosec) == divmod(stamp(i), 1_000_000_000)
        assert m.header.frame_id == FRAME_ID and (m.encoding, m.height, m.width, m.step) == ("mono8", 64, 128, 128)
    assert node.pubs["~/overlay"].sent == [] and node.pubs["~/mask_color"].sent == []
    info = _cdr(ts, node.pubs["~/camera_info"].sent[0], "sensor_msgs/msg/CameraInfo")
    assert (info.width, info.height) == (128, 64) and info.k[0] == pytest.approx(50.0 * 128 / W)
    record = json.loads(node.pubs["~/frame_info"].sent[-1].data)
    assert record["stamp_ns"] == stamp(2) and record["publish_delay_ms"] > 0
    assert json.loads(node.pubs["~/classes"].sent[0].data)["classes"][0] == "void"
    (diag,) = node.pubs["/diagnostics"].sent
    diag = _cdr(ts, diag, "diagnostic_msgs/msg/DiagnosticArray")
    assert diag.status[0].name == "edgefuse: segmentation" and diag.status[0].level in (0, 1)
    assert dict((kv.key, kv.value) for kv in diag.status[0].values)["frames out (total)"] == "3"
    assert any("edgefuse:" in text for _, text in node.logger.lines)


def test_ros2_lazy_outputs_follow_the_subscription_count(monkeypatch, bundle_dir):
    from edgefuse.ros_bridge import ros2

    def script(node, first_only):
        if not first_only:
            node.pubs["~/overlay"].subscribers = 1
        msgs = bag_messages(get_typestore(Stores.ROS2_JAZZY), 0, ros1=False)
        node.subs["/cam/depth"][1](msgs["depth"])
        node.subs["/cam/color"][1](msgs["color"])
        _wait(lambda: len(node.pubs["~/frame_info"].sent) >= (1 if first_only else 2))

    install_fake(monkeypatch, Stores.ROS2_JAZZY, script, {"rgb_topic": "/cam/color", "depth_topic": "/cam/depth",
                                                          "input_qos": "reliable", "output_qos": "best_effort"})
    ros2.run({"bundle": str(bundle_dir), "threads": 1}, [])
    node = Node.last
    assert len(node.pubs["~/overlay"].sent) == 1 and len(node.pubs["~/mask"].sent) == 2
    overlay = node.pubs["~/overlay"].sent[0]
    assert (overlay.encoding, overlay.height, overlay.width) == ("rgb8", H, W)
    assert node.subs["/cam/color"][2].reliability is ReliabilityPolicy.RELIABLE
    assert node.pubs["~/mask"].qos.reliability is ReliabilityPolicy.BEST_EFFORT


def test_ros2_unknown_parameter_is_an_error_and_the_node_is_released(monkeypatch, bundle_dir):
    from edgefuse.ros_bridge import ros2

    _, rclpy = install_fake(monkeypatch, Stores.ROS2_JAZZY, lambda node, first_only: None, {"rgb_topc": "/x"})
    with pytest.raises(ConfigError, match="'rgb_topc'.*valid keys"):
        ros2.run({"bundle": str(bundle_dir)}, [])
    assert Node.last.destroyed and rclpy.shut


def test_ros2_missing_input_is_a_startup_error(monkeypatch, bundle_dir):
    from edgefuse.errors import EdgefuseError
    from edgefuse.ros_bridge import ros2

    _, rclpy = install_fake(monkeypatch, Stores.ROS2_JAZZY, lambda node, first_only: None, {"input_timeout": 0.3})
    before = threading.active_count()
    with pytest.raises(EdgefuseError, match="no image arrived on /camera/camera/color/image_raw within 0.3 s"):
        ros2.run({"bundle": str(bundle_dir), "threads": 1}, [])
    assert Node.last.destroyed and rclpy.shut
    assert threading.active_count() <= before          # the inference worker was stopped


# --- the static check -----------------------------------------------------------------------------
def _vocab(name: str) -> set[str]:
    return set((VOCAB / f"rclpy-{name}-python-names.txt").read_text().split())


def _rclpy_imports(tree: ast.AST) -> set[str]:
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rclpy":
            names.update(node.module.split("."))
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.Import):
            names.update(part for a in node.names if a.name.split(".")[0] == "rclpy" for part in a.name.split("."))
    return names


def rclpy_names(source: str) -> set[str]:
    """Every rclpy name ros2.py uses: its rclpy imports, the attributes and keyword arguments
    used on an rclpy object (the module, the node, its publishers / logger / clock, QoS
    classes), followed through assignments; message classes (r["Image"]) are left to the
    layout test above."""
    tree = ast.parse(source)
    imports = _rclpy_imports(tree)
    roots = {"rclpy", "node", "self.node", "self._logger", "self.pubs", "pub"}

    def key(n):
        if isinstance(n, ast.Name):
            return n.id
        if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name):
            return f"{n.value.id}.{n.attr}"
        return None

    def chain(n):
        """(root key, [attributes], [call keywords]) of an expression, or None when not rclpy."""
        attrs, keywords = [], []
        while True:
            if isinstance(n, ast.Attribute) and key(n) not in roots:
                attrs.append(n.attr)
                n = n.value
            elif isinstance(n, ast.Call):
                keywords += [k.arg for k in n.keywords if k.arg]
                n = n.func
            elif isinstance(n, ast.Subscript):
                if isinstance(n.slice, ast.Constant) and key(n.value) in ("r", "self.r"):
                    name = n.slice.value
                    return (name, attrs, keywords) if name in imports else None   # a message class: not rclpy
                n = n.value
            else:
                k = key(n)
                return (k, attrs, keywords) if k in roots else None

    changed = True
    while changed:   # fixpoint: pub = node.create_publisher; self._logger = node.get_logger()
        changed = False
        for n in ast.walk(tree):
            if isinstance(n, ast.Assign) and chain(n.value) is not None:
                for target in n.targets:
                    k = key(target)
                    if k and k not in roots:
                        roots.add(k)
                        changed = True
    used = set(imports)
    for n in ast.walk(tree):
        if isinstance(n, (ast.Attribute, ast.Call, ast.Subscript)):
            found = chain(n)
            if found is not None:
                root, attrs, keywords = found
                used.update(attrs)
                used.update(keywords)
                if root in imports:
                    used.add(root)
    return used


def test_every_rclpy_name_exists_in_humble_and_jazzy():
    used = rclpy_names(ADAPTER.read_text())
    # The check sees the calls that matter (it would miss everything if the walk broke).
    assert {"create_publisher", "create_subscription", "get_subscription_count", "get_parameters_by_prefix",
            "declare_parameter", "automatically_declare_parameters_from_overrides", "QoSProfile",
            "TRANSIENT_LOCAL", "qos_profile_sensor_data", "nanoseconds", "spin_once", "timeout_sec",
            "try_shutdown", "warning"} <= used
    for release in ("humble", "jazzy"):
        missing = sorted(used - _vocab(release))
        assert not missing, f"not in {release}'s rclpy: {missing}"


def test_the_fake_only_offers_rclpy_names():
    fake = {n for cls in (Node, Publisher, Logger, Clock, QoSProfile, Rclpy) for n in vars(cls)
            if not n.startswith("_") and n not in ("overrides", "last", "script", "pubs", "subs", "timers")}
    fake |= {"QoSProfile", "ReliabilityPolicy", "HistoryPolicy", "DurabilityPolicy", "ExternalShutdownException"}
    assert not sorted(fake - _vocab("humble") - {"lines", "sent", "subscribers", "shut", "destroyed", "params",
                                                 "logger", "args", "name"})
    assert not sorted(fake - _vocab("jazzy") - {"lines", "sent", "subscribers", "shut", "destroyed", "params",
                                                "logger", "args", "name"})
