"""Runtime fixtures: the session's tiny bundle (`bundle_dir`, in tests/conftest.py: the ROS
node tests share it) and a private copy; fake frame sources for fault injection
(runtime_fakes.py)."""

from __future__ import annotations

import shutil

import pytest
from runtime_fakes import ListSource


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path):
    """A private copy of the bundle a test may modify."""
    dst = tmp_path / "bundle"
    shutil.copytree(bundle_dir, dst)
    return dst


@pytest.fixture
def list_source():
    return ListSource
