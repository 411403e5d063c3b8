"""The trainer on a tiny written dataset: losses fall for every family, resume is exact,
stage II's resource loss moves the gate, DDP ranks agree."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from edgefuse.checkpoint import load_model
from edgefuse.data.dataset import SegmentationDataset
from edgefuse.eval.evaluate import evaluate
from edgefuse.train.config import TrainConfig
from edgefuse.train.trainer import train

SIZE = (64, 64)
TINY = {"input_size": list(SIZE)}


def _cfg(root, out, model="dynmm-tiny", stages=None, **extra):
    return TrainConfig.from_dict({
        "model": {"name": model, "overrides": TINY} if isinstance(model, str) else model,
        "data": {"root": str(root), "eval_split": None},
        "out_dir": str(out),
        "optim": {"kind": "adamw", "lr": 0.01, "schedule": "constant"},
        "stages": stages or [{"name": "train", "epochs": 4}],
        "batch_size": 4, "progress": False, "threads": 1, **extra})


@pytest.mark.parametrize("model, stage", [
    ("rgb-tiny", {"name": "train"}),
    ("esanet-tiny", {"name": "train"}),
    ("depth-tiny", {"name": "train"}),
    ("early-tiny", {"name": "train"}),
    ("dynmm-tiny", {"name": "stage1", "gate_mode": "random"}),
    ("dynmm-tiny", {"name": "stage2", "gate_mode": "gumbel_hard", "resource_lambda": 0.1}),
    ("cen-tiny", {"name": "train", "cen_l1": 2e-4}),
    ("dynmm-modality-tiny", {"name": "stage1", "gate_mode": "random"}),
])
def test_a_few_steps_lower_the_loss(tiny_dataset, tmp_path, model, stage):
    root = tiny_dataset(frames=4, size=SIZE)
    overrides = dict(TINY)
    if model == "dynmm-modality-tiny":
        overrides["modality"] = {"gate_size": [16, 16]}
    cfg = _cfg(root, tmp_path / "run", model={"name": model, "overrides": overrides},
               stages=[{**stage, "epochs": 8}])
    result = train(cfg)        # 4 frames, batch 4: one step per epoch on the same frames
    losses = [h["task_loss"] for h in result.history]
    assert len(losses) == 8
    assert min(losses[-2:]) < 0.8 * losses[0], losses


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=8, size=SIZE)
    stages = [{"name": "stage1", "epochs": 2, "gate_mode": "random"},
              {"name": "stage2", "epochs": 2, "gate_mode": "gumbel_hard", "resource_lambda": 0.5,
               "tau_start": 2.0, "tau_end": 0.5}]
    full = train(_cfg(root, tmp_path / "full", stages=stages, optim={"kind": "sgd", "lr": 0.01}))
    cfg = _cfg(root, tmp_path / "cut", stages=stages, optim={"kind": "sgd", "lr": 0.01})
    first = train(cfg, stop_after_epochs=3)          # stops inside stage II
    assert not first.completed and not Path(first.checkpoint).exists()
    state = torch.load(tmp_path / "cut" / "train_state.pt", weights_only=True)
    assert (state["stage"], state["epoch"]) == (1, 1)
    second = train(cfg, resume=True)
    assert second.completed
    a, b = load_model(full.checkpoint), load_model(second.checkpoint)
    assert a.weights_sha256 == b.weights_sha256
    assert [h["path_counts"] for h in full.history] == [h["path_counts"] for h in second.history]


def _gate_bias_to_costliest(tmp_path, root):
    """A dynmm-tiny checkpoint whose gate strongly prefers the most expensive path."""
    from edgefuse.checkpoint import save_checkpoint
    from edgefuse.models.registry import build_model

    data = SegmentationDataset(root, "train")
    model = build_model("dynmm-tiny", input_size=SIZE, depth_mean=2500.0, depth_std=800.0)
    with torch.no_grad():
        model.gate_net.head.bias.zero_()
        model.gate_net.head.bias[-1] = 3.0
    assert evaluate(model, data)["path_ratio"][-1] == 1.0
    return save_checkpoint(tmp_path / "start.safetensors", model)


@pytest.mark.parametrize("lam", [0.0, 50.0])
def test_stage2_resource_lambda_moves_the_gate(tiny_dataset, tmp_path, lam):
    root = tiny_dataset(frames=8, size=SIZE)
    start = _gate_bias_to_costliest(tmp_path, root)
    stage = {"name": "stage2", "epochs": 10, "gate_mode": "gumbel_hard", "resource_lambda": lam}
    result = train(_cfg(root, tmp_path / f"l{lam}", model={"checkpoint": str(start)}, stages=[stage],
                        optim={"kind": "sgd", "lr": 0.01, "schedule": "constant"}))
    ratio = evaluate(load_model(result.checkpoint).model, SegmentationDataset(root, "train"))["path_ratio"]
    if lam == 0.0:
        assert ratio[-1] > 0.5, ratio      # nothing pushes it off the costliest path
    else:
        assert ratio[0] == 1.0, ratio      # a huge lambda drives every frame to the cheapest path


def test_static_model_rejects_gated_stage(tiny_dataset, tmp_path):
    from edgefuse.errors import EdgefuseError

    root = tiny_dataset(frames=4, size=SIZE)
    with pytest.raises(EdgefuseError, match="fixed"):
        train(_cfg(root, tmp_path / "x", model="esanet-tiny", stages=[{"gate_mode": "random"}]))


def test_ddp_two_cpu_processes_agree(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=8, size=SIZE)
    out = tmp_path / "ddp"
    cfg = _cfg(root, out, stages=[{"name": "stage1", "epochs": 1, "gate_mode": "random"},
                                  {"name": "stage2", "epochs": 1, "gate_mode": "gumbel_hard",
                                   "resource_lambda": 0.2}], batch_size=2)
    script = tmp_path / "ddp_train.py"
    script.write_text(textwrap.dedent("""
        import json, os, sys, torch
        torch.set_num_threads(1)
        from edgefuse.checkpoint import state_sha256
        from edgefuse.train import trainer
        from edgefuse.train.config import TrainConfig
        cfg = TrainConfig.from_dict(json.loads(sys.argv[1]))
        built = {}
        original = trainer.build_train_model
        def keep(spec, dataset):
            built["model"] = original(spec, dataset)
            return built["model"]
        trainer.build_train_model = keep
        result = trainer.train(cfg)
        rank = os.environ["RANK"]
        with open(os.path.join(cfg.out_dir, f"rank{rank}.json"), "w") as f:
            json.dump({"sha": state_sha256(built["model"].state_dict()), "world": os.environ["WORLD_SIZE"],
                       "history": result.history}, f)
    """))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           "--standalone", str(script), json.dumps(cfg.to_dict())],
                          capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["world"] == "2"
    assert ranks[0]["sha"] == ranks[1]["sha"]                   # DDP kept the replicas equal
    # each rank saw its own half of the frames: 8 frames / 2 ranks / batch 2 = 2 steps
    assert [sum(h["path_counts"]) for h in ranks[0]["history"]] == [4, 4]
    assert load_model(out / "model.safetensors").weights_sha256 == load_model(out / "last.safetensors").weights_sha256


def test_cli_train_writes_weights_history_and_eval(tiny_dataset, tmp_path):
    from edgefuse.cli.main import main

    root = tiny_dataset(frames=4, size=SIZE)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: {{name: esanet-tiny, overrides: {{input_size: [64, 64]}}}}\n"
                   f"data: {{root: {root}, eval_split: test}}\n"
                   f"stages: [{{name: train, epochs: 1}}]\nbatch_size: 2\nprogress: false\n"
                   f"out_dir: {tmp_path / 'out'}\n")
    assert main(["train", str(cfg)]) == 0
    out = tmp_path / "out"
    loaded = load_model(out / "model.safetensors")
    assert loaded.config.depth_mean == 2500.0          # depth statistics taken from dataset.json
    assert loaded.meta["command"] == f"edgefuse train {cfg}"
    assert set(json.loads((out / "eval-train.json").read_text())) >= {"miou", "subsets"}
    assert len((out / "history.jsonl").read_text().splitlines()) == 1
    assert main(["train", str(tmp_path / "missing.yaml")]) == 2   # a user error, not a traceback


# --- data.augment ---------------------------------------------------------------------------
AUG_FRAMES = (128, 128)   # stored frames; the model below is 64x64, so the crops are 64x64
# The tiny dataset's depth is a function of the label (void rows and wall 3000, floor 2000,
# chair 1000, table 2500), or 0 in a hole: still true after a joint flip / crop / nearest resize.
DEPTH_OF_LABEL = {0: 3000.0, 12: 3000.0, 5: 2000.0, 4: 1000.0, 10: 2500.0}


def _assert_aligned(item):
    label, depth = item["label"].numpy(), item["depth"][0].numpy()
    assert set(label.ravel().tolist()) <= set(DEPTH_OF_LABEL)          # nearest: no blended labels
    for value, mm in DEPTH_OF_LABEL.items():
        assert set(depth[label == value].tolist()) <= {mm, 0.0}, value   # nor blended depth


def test_trainer_augments_the_training_split_only(tiny_dataset, tmp_path, monkeypatch):
    from dataclasses import replace

    import numpy as np

    from edgefuse.data.transforms import TrainTransform, TransformConfig

    root = tiny_dataset(frames=4, size=AUG_FRAMES)
    served = []                                   # (split, epoch, index, item) as the loader saw them
    original = SegmentationDataset.__getitem__

    def record(self, index):
        item = original(self, index)
        served.append((self.split, self.epoch, index, item))
        return item

    monkeypatch.setattr(SegmentationDataset, "__getitem__", record)
    cfg = _cfg(root, tmp_path / "aug", model="esanet-tiny", stages=[{"name": "train", "epochs": 2}],
               data={"root": str(root), "eval_split": "test", "augment": {}}, seed=3)
    result = train(cfg)
    assert len(result.history) == 2 and all(np.isfinite(h["loss"]) for h in result.history)

    seen = {(e, i): item for split, e, i, item in served if split == "train"}
    assert sorted(seen) == [(e, i) for e in (0, 1) for i in range(4)]       # set_epoch reached the data
    tc = TransformConfig(size=SIZE)               # augment: {} at the model's input size
    redo = SegmentationDataset(root, "train", TrainTransform(tc), seed=3)
    plain = TrainTransform(replace(tc, flip=False))
    flipped = []
    for (epoch, index), item in seen.items():
        assert item["rgb"].shape == (3, *SIZE) and item["label"].shape == SIZE   # the model's size
        _assert_aligned(item)
        # a function of (seed, epoch, index) only: what a resumed run gets for this epoch
        redo.set_epoch(epoch)
        again = original(redo, index)
        for key in ("rgb", "depth", "label"):
            assert torch.equal(item[key], again[key]), (epoch, index, key)
        # the same crop with or without the flip (the flip draw comes after the crop's)
        geometry = plain(redo.load(index), np.random.default_rng([3, epoch, index]))["label"]
        label = item["label"].numpy()
        assert np.array_equal(label, geometry) or np.array_equal(label, geometry[:, ::-1])
        flipped.append(not np.array_equal(label, geometry))
    assert any(flipped) and not all(flipped)
    assert any(not torch.equal(seen[0, i]["label"], seen[1, i]["label"]) for i in range(4))  # new crops per epoch
    assert sum(bool((item["depth"] == 0).any()) for item in seen.values()) >= 6   # holes stay holes

    # evaluation read the test frames as stored: full size, not augmented, and gives the same report
    tests = [item for split, _, _, item in served if split == "test"]
    assert len(tests) == 4 and all(item["label"].shape == AUG_FRAMES for item in tests)
    model = load_model(result.checkpoint).model
    assert result.eval == evaluate(model, SegmentationDataset(root, "test"))


def test_augmented_training_resumes_exactly(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=8, size=AUG_FRAMES)
    stages = [{"name": "stage1", "epochs": 1, "gate_mode": "random"},
              {"name": "stage2", "epochs": 2, "gate_mode": "gumbel_hard", "resource_lambda": 0.5}]
    data = {"root": str(root), "eval_split": None, "augment": {"scale": [1.0, 1.5], "size": list(SIZE)}}
    full = train(_cfg(root, tmp_path / "full", stages=stages, data={**data, "workers": 1}))
    cfg = _cfg(root, tmp_path / "cut", stages=stages, data=data)
    assert not train(cfg, stop_after_epochs=2).completed
    second = train(cfg, resume=True)
    assert load_model(full.checkpoint).weights_sha256 == load_model(second.checkpoint).weights_sha256
    assert [h["loss"] for h in full.history] == [h["loss"] for h in second.history]


def test_augment_size_must_be_the_model_input_size(tiny_dataset, tmp_path):
    from edgefuse.errors import ConfigError

    root = tiny_dataset(frames=4, size=SIZE)
    cfg = _cfg(root, tmp_path / "x", model="esanet-tiny",
               data={"root": str(root), "eval_split": None, "augment": {"size": [96, 128]}})
    with pytest.raises(ConfigError, match="input size"):
        train(cfg)


# --- model.pretrained (ImageNet weights from a local file) ----------------------------------
def test_pretrained_initialises_every_encoder_before_training(tiny_dataset, tmp_path):
    from edgefuse.models.resnet import ResNetEncoder
    from edgefuse.train.config import ModelSpec
    from edgefuse.train.trainer import build_train_model

    root = tiny_dataset(frames=4, size=SIZE)
    probe = build_train_model(ModelSpec(name="esanet-tiny", overrides=TINY), SegmentationDataset(root, "train"))
    spec = next(m for m in probe.modules() if isinstance(m, ResNetEncoder)).spec
    g = torch.Generator().manual_seed(3)
    state = {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v
             for k, v in ResNetEncoder(spec, 3).state_dict().items()}
    torch.save(state, tmp_path / "imagenet.pth")
    model = build_train_model(ModelSpec(name="esanet-tiny", overrides=TINY, pretrained=str(tmp_path / "imagenet.pth")),
                              SegmentationDataset(root, "train"))
    torch.testing.assert_close(model.encoder_rgb.layer3[0].conv2.weight, state["layer3.0.conv2.weight"])
    torch.testing.assert_close(model.encoder_depth.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))
    with pytest.raises(Exception, match="drop one of them"):
        ModelSpec(checkpoint="esanet-tiny-synth", pretrained=str(tmp_path / "imagenet.pth"))

    from edgefuse.cli.main import main

    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"model: {{name: esanet-tiny, overrides: {{input_size: [64, 64]}}}}\n"
                   f"data: {{root: {root}, eval_split: null}}\nstages: [{{name: train, epochs: 1}}]\n"
                   f"batch_size: 2\nprogress: false\nout_dir: {tmp_path / 'out'}\n")
    assert main(["train", str(cfg), "--pretrained", str(tmp_path / "missing.pth")]) == 2
    assert main(["train", str(cfg), "--pretrained", str(tmp_path / "imagenet.pth")]) == 0
    meta = load_model(tmp_path / "out" / "model.safetensors").meta
    assert "--pretrained" in meta["command"]
