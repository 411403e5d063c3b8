"""Official state-dict layouts recorded from the official code (no network in CI)."""

import json
from pathlib import Path

import pytest
import torch

LAYOUTS = json.loads((Path(__file__).parent / "data" / "official_layouts.json").read_text())
VARIANTS = sorted(LAYOUTS["variants"])
#: the smallest input the (1, 5) pyramid-pooling bins allow: 5x5 at 1/32
SMALL = (160, 160)


def official_state(variant: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """A state dict with the recorded names and shapes of `variant`, random values (BN
    variances positive, counters integral, as in a trained checkpoint)."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in LAYOUTS["variants"][variant]:
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(int(torch.randint(1, 1000, (1,), generator=g)))
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=g) + 0.5
        else:
            state[name] = torch.randn(shape, generator=g) * 0.1
    return state


@pytest.fixture
def write_official(tmp_path):
    """Write a state dict as the official training scripts save it."""
    def write(state, name="ckpt.pth"):
        path = tmp_path / name
        torch.save({"epoch": 3, "state_dict": state, "optimizer": {"state": {}, "param_groups": [{"lr": 0.01}]}},
                   path)
        return path
    return write
