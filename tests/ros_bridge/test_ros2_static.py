"""What cannot run here, checked statically: ROS 2 Humble has no wheels for this Python, so
every rclpy name the adapter (ros_bridge/ros2.py) uses is checked against the identifiers of
Humble's rclpy sources (and Jazzy's, which the live tests in test_ros2_live.py also run for real).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ADAPTER = ROOT / "ros_bridge" / "ros2.py"
VOCAB = Path(__file__).parent / "data" / "rclpy-api"


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
    live tests."""
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
            "try_shutdown", "warning", "add_on_set_parameters_callback", "SubscriptionEventCallbacks",
            "incompatible_qos", "message_lost", "get_publishers_info_by_topic", "count_publishers"} <= used
    for release in ("humble", "jazzy"):
        missing = sorted(used - _vocab(release))
        assert not missing, f"not in {release}'s rclpy: {missing}"
