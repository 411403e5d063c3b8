"""Modality-level DynMM trained "experts first": experts initialised from static checkpoints
(model.init_experts), then a gate stage with the experts frozen leaves them bit-identical."""

import pytest
import torch

from edgefuse.checkpoint import load_model, save_checkpoint
from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.models.registry import build_model
from edgefuse.train.config import TrainConfig
from edgefuse.train.trainer import train

SIZE = (64, 64)


def _cfg(root, out, model, stages):
    return TrainConfig.from_dict({
        "model": model, "data": {"root": str(root), "eval_split": None}, "out_dir": str(out),
        "optim": {"kind": "adamw", "lr": 0.01, "schedule": "constant"}, "stages": stages,
        "batch_size": 4, "progress": False, "threads": 1})


def test_init_experts_then_frozen_gate_stage(tiny_dataset, tmp_path):
    from edgefuse.data.dataset import SegmentationDataset

    root = tiny_dataset(frames=8, size=SIZE)
    data = SegmentationDataset(root, "train")
    mean, std = data.depth_stats
    common = dict(input_size=SIZE, num_classes=data.num_classes, class_names=tuple(data.classes),
                  depth_mean=mean, depth_std=std)
    sources = []
    for k, family in enumerate(("rgb", "esanet")):
        torch.manual_seed(10 + k)
        sources.append(save_checkpoint(tmp_path / f"{family}.safetensors", build_model(f"{family}-tiny", **common)))
    model = {"name": "dynmm-modality-tiny", "overrides": {"input_size": list(SIZE), "modality": {"gate_size": [16, 16]}},
             "init_experts": [str(s) for s in sources]}
    stages = [{"name": "gate", "epochs": 2, "gate_mode": "gumbel_hard", "freeze_experts": True,
               "resource_lambda": 0.5}]
    result = train(_cfg(root, tmp_path / "run", model, stages))
    trained = load_model(result.checkpoint).model.state_dict()
    for k, src in enumerate(sources):
        for name, t in load_model(src).model.state_dict().items():
            assert torch.equal(trained[f"experts.{k}.{name}"], t), name   # parameters and BN buffers
    fresh = build_model("dynmm-modality-tiny", **common, modality={"gate_size": [16, 16]}).state_dict()
    assert any(not torch.equal(trained[n], fresh[n]) for n in trained if n.startswith("gate_net.") and "weight" in n)


def test_init_experts_needs_a_modality_model_and_no_checkpoint(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=4, size=SIZE)
    cfg = _cfg(root, tmp_path / "run", {"name": "rgb-tiny", "overrides": {"input_size": list(SIZE)},
                                        "init_experts": ["x", "y"]}, [{"name": "train", "epochs": 1}])
    with pytest.raises(EdgefuseError, match="modality-level DynMM only"):
        train(cfg)
    with pytest.raises(ConfigError, match="init_experts"):
        _cfg(root, tmp_path / "r", {"checkpoint": "rgb-tiny-synth", "init_experts": [None, None]}, [{"name": "t"}])
