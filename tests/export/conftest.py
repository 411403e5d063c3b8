"""Shared export fixtures: tiny models at 64x128 (context bins (1, 2) need H/32 and W/32
even), saved as checkpoints so that tests can rebuild the exact exported weights."""

import pytest
import torch

from edgefuse.checkpoint import save_checkpoint
from edgefuse.models.registry import build_model

SIZE = (64, 128)


def make_checkpoint(path, name: str, seed: int = 0):
    """A randomly initialised model with non-trivial BatchNorm statistics (so that folding
    BN into the convs is actually exercised), saved as a checkpoint."""
    torch.manual_seed(seed)
    model = build_model(name, input_size=SIZE)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return save_checkpoint(path, model)


@pytest.fixture(scope="session")
def checkpoint_factory():
    """make_checkpoint(path, name, seed=0) -> checkpoint path."""
    return make_checkpoint


@pytest.fixture(scope="session")
def dynmm_checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "dynmm-tiny.safetensors", "dynmm-tiny")


@pytest.fixture(scope="session")
def dynmm_bundle(dynmm_checkpoint, tmp_path_factory):
    """fp32 bundle of every path of dynmm-tiny, verified on 3 synthetic frames."""
    from edgefuse.export.exporter import export_bundle
    from edgefuse.export.verify import single_thread

    with single_thread():   # session fixtures run before the per-test thread setting below
        return export_bundle(dynmm_checkpoint, tmp_path_factory.mktemp("bundles") / "dynmm", verify_frames=3)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Export and verification run single-threaded (verify.py does so itself); on a shared,
    busy machine two spinning OpenMP threads make tracing many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
