"""Debian's ROS 1 on the venv's path (Makefile `ros-deps`): rospy comes from Debian, and
every package the venv installs still comes from the venv (the .pth appends, never prepends)."""

from __future__ import annotations

import subprocess
import sys

import pytest

pytestmark = pytest.mark.ros1

DEBIAN = "/usr/lib/python3/dist-packages"


def test_venv_packages_win_over_debian(ros1_env):
    code = ("import sys, importlib; mods = ['rospy', 'genpy', 'numpy', 'cv2', 'yaml', 'PIL', 'onnxruntime', "
            "'scipy']; print(' '.join(importlib.import_module(m).__file__ for m in mods)); "
            f"print(sys.path.index({DEBIAN!r}) > max(i for i, p in enumerate(sys.path) if 'site-packages' in p))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=ros1_env)
    assert out.returncode == 0, out.stderr
    files, appended = out.stdout.split("\n")[:2]
    rospy, genpy, *venv = files.split()
    assert rospy.startswith(DEBIAN) and genpy.startswith(DEBIAN)
    assert not [f for f in venv if f.startswith(DEBIAN)]
    assert appended == "True"
