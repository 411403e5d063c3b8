"""The import rules between folders (docs/architecture.md "Imports between folders"), checked
on the source: a static scan of every import statement, lazy ones inside functions included."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# top-level folder -> the package it is installed as (pyproject.toml's package-dir)
PACKAGES = {"edgefuse": "edgefuse", "export": "edgefuse.export", "calibration": "edgefuse.calibration",
            "ros_bridge": "edgefuse.ros_bridge"}


def _modules():
    for folder, package in PACKAGES.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            yield ".".join((package, *parts)), path


def _imports(module: str, path: Path) -> set[str]:
    """Every module `path` imports (absolute names; relative imports resolved)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level] if path.name != "__init__.py" else \
                    module.split(".")[: len(module.split(".")) - node.level + 1]
                base = ".".join([*package, *([node.module] if node.module else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


GRAPH = {module: _imports(module, path) for module, path in _modules()}


def _importers(prefix: str, of: str) -> list[str]:
    """Modules under `prefix` that import anything under `of`."""
    return sorted(m for m, imported in GRAPH.items() if (m == prefix or m.startswith(prefix + "."))
                  and any(i == of or i.startswith(of + ".") for i in imported))


@pytest.mark.parametrize("importer, imported, why", [
    ("edgefuse.runtime", "edgefuse.ros_bridge", "the runtime imports no edge: the CLI hands the bag sink in"),
    ("edgefuse.runtime", "edgefuse.cli", "the runtime imports no edge"),
    ("edgefuse.models", "edgefuse.checkpoint", "models sit below checkpoints: load_experts takes loaded models"),
    ("edgefuse.models", "edgefuse.runtime", "models know nothing of running them"),
    ("edgefuse.cameras", "edgefuse.runtime", "cameras sit below the runtime"),
    ("edgefuse.export", "edgefuse.calibration", "INT8 calibration is part of export; calibration/ is cameras only"),
    ("edgefuse.export", "edgefuse.ros_bridge", "export imports no edge"),
    ("edgefuse.calibration", "edgefuse.runtime", "camera calibration needs no runtime"),
    ("edgefuse.calibration", "edgefuse.export", "camera calibration needs no export"),
])
def test_no_arrow_against_the_layering(importer, imported, why):
    assert _importers(importer, imported) == [], why


def test_no_core_module_imports_a_ros_client_library():
    ros = ("rospy", "rclpy", "genpy", "message_filters")
    offenders = sorted(m for m, imported in GRAPH.items() if not m.startswith("edgefuse.ros_bridge")
                       and any(i.split(".")[0] in ros for i in imported))
    assert offenders == []


def test_the_frame_module_is_the_bottom_of_cameras():
    """cameras/frame.py (Frame, Intrinsics, errors) imports nothing else from cameras, and no
    camera module imports cameras/sources.py (open_source) back: no circle."""
    assert _importers("edgefuse.cameras.frame", "edgefuse.cameras") == []
    cameras = [m for m in GRAPH if m.startswith("edgefuse.cameras.") and m != "edgefuse.cameras.sources"]
    assert [m for m in cameras if "edgefuse.cameras.sources" in GRAPH[m]] == []
    assert [m for m in cameras if m != "edgefuse.cameras" and "edgefuse.cameras" in GRAPH[m]] == []
