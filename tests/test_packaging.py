"""Packaging: every subpackage is listed in pyproject, and `import edgefuse` stays light."""

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"edgefuse": "edgefuse", "export": "edgefuse.export",
          "calibration": "edgefuse.calibration", "ros_bridge": "edgefuse.ros_bridge"}


def test_every_subpackage_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = set()
    for folder, name in MAPPED.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder).parts
            found.add(".".join((name, *rel)))
    assert found == listed, f"add to pyproject packages: {sorted(found - listed)}; stale: {sorted(listed - found)}"


def test_import_edgefuse_imports_nothing_heavy():
    code = ("import sys, edgefuse; heavy = [m for m in ('torch', 'onnxruntime', 'open3d', 'pyrealsense2', "
            "'cv2', 'rospy', 'tensorrt', 'matplotlib') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_no_generic_top_level_packages_installed():
    code = "import importlib.util as u; print([m for m in ('export', 'calibration', 'ros_bridge') if u.find_spec(m)])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd="/")
    assert out.stdout.strip() == "[]"
