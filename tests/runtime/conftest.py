"""Runtime fixtures: one tiny dynmm bundle per session (64x128: context bins (1, 2) need
H/32 and W/32 even), exported from a saved checkpoint so the torch backend can rebuild the
exact weights; fake frame sources for fault injection (runtime_fakes.py)."""

from __future__ import annotations

import shutil

import pytest
import torch
from runtime_fakes import SIZE, ListSource


@pytest.fixture(scope="session")
def runtime_checkpoint(tmp_path_factory):
    from edgefuse.checkpoint import save_checkpoint
    from edgefuse.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("dynmm-tiny", input_size=SIZE)
    return save_checkpoint(tmp_path_factory.mktemp("rt_ckpt") / "dynmm-tiny-rt.safetensors", model)


@pytest.fixture(scope="session")
def bundle_dir(runtime_checkpoint, tmp_path_factory):
    from edgefuse.export.exporter import export_bundle

    out = tmp_path_factory.mktemp("rt_bundle") / "bundle"
    export_bundle(str(runtime_checkpoint), out, input_size=SIZE, verify_frames=1, force=True)
    return out


@pytest.fixture
def bundle_copy(bundle_dir, tmp_path):
    """A private copy of the bundle a test may modify."""
    dst = tmp_path / "bundle"
    shutil.copytree(bundle_dir, dst)
    return dst


@pytest.fixture
def list_source():
    return ListSource
