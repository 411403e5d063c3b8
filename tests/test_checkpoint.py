"""Checkpoints: unreadable or incompatible files are user errors that say what to do."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from edgefuse.checkpoint import load_model, save_checkpoint
from edgefuse.cli.main import main
from edgefuse.errors import EdgefuseError
from edgefuse.models.registry import build_model


def test_weights_that_do_not_fit_the_config_are_a_clear_error(tmp_path, tiny_dataset):
    model = build_model("esanet-tiny", input_size=(64, 64))
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    state = load_file(str(path))
    config = model.config.to_dict()
    config["decoder_channels"] = [c // 2 for c in config["decoder_channels"]]   # config edited
    save_file(state, str(tmp_path / "edited.safetensors"),
              metadata={"edgefuse_config": json.dumps(config), "edgefuse_meta": "{}"})
    with pytest.raises(EdgefuseError, match="do not fit the model.*size mismatch"):
        load_model(tmp_path / "edited.safetensors")
    root = tiny_dataset(frames=2, size=(64, 64))
    assert main(["eval", str(tmp_path / "edited.safetensors"), "--data", str(root)]) == 2


def test_a_pickle_is_never_unpickled_with_code(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"config": {}, "state_dict": {}, "obj": object()}, path)   # needs weights_only=False
    with pytest.raises(EdgefuseError, match="never unpickles") as info:
        load_model(path)
    assert "weights_only=False" not in str(info.value)
