"""The 'supervised' gate mode (issue 13): every path runs and trains on its own loss, and the
gate regresses each path's per-sample loss plus lambda times its cost, so its argmax is the
path with the least expected loss + lambda x cost; `freeze_network` trains the gate alone."""

import pytest
import torch
import torch.nn.functional as F

from edgefuse.checkpoint import load_model
from edgefuse.data.dataset import SegmentationDataset
from edgefuse.models.losses import gate_regression_loss, per_sample_loss
from edgefuse.models.registry import build_model
from edgefuse.models.costs import measure_costs
from edgefuse.train.config import ClassWeighting, TrainConfig
from edgefuse.train.trainer import class_weights_for, train

SIZE = (64, 64)
MADDS = torch.tensor([2.0, 3.0, 4.0, 5.0, 6.0])


def test_per_sample_loss_is_each_samples_weighted_cross_entropy():
    logits = torch.randn(3, 4, 5, 6)
    target = torch.randint(-1, 4, (3, 5, 6))
    target[2] = -1                                        # a frame without labels: loss 0
    w = torch.tensor([0.5, 1.0, 2.0, 3.0])
    got = per_sample_loss(logits, target, w)
    for i in range(2):
        assert got[i] == pytest.approx(float(F.cross_entropy(logits[i:i + 1], target[i:i + 1], weight=w,
                                                             ignore_index=-1)), rel=1e-5)
    assert got[2] == 0.0


@pytest.mark.parametrize("temperature", [None, 0.05])
@pytest.mark.parametrize("lam, want", [(0.0, [1, 2]), (1.0, [1, 0]), (10.0, [0, 0])])
def test_the_objectives_optimum_picks_least_loss_plus_lambda_cost(lam, want, temperature):
    """Free logits fitted to the target (regression, or soft target at a temperature): their
    argmax is argmin(loss + lam C / max C)."""
    losses = torch.tensor([[1.0, 0.2, 0.25, 0.9, 0.9],      # path 1 best; path 0 costs 0.8 more
                           [0.5, 0.45, 0.3, 0.35, 0.3]])    # 2 and 4 tie on loss: 2 is cheaper
    logits = torch.zeros(2, 5, requires_grad=True)
    opt = torch.optim.Adam([logits], lr=0.1)
    for _ in range(300):
        opt.zero_grad()
        gate_regression_loss(logits, losses, MADDS, lam, temperature).backward()
        opt.step()
    assert logits.argmax(1).tolist() == want
    target = losses + lam * MADDS / MADDS.max()
    assert target.argmin(1).tolist() == want


def _cfg(root, out, stages, model=None, batch_size=4):
    return TrainConfig.from_dict({
        "model": model or {"name": "dynmm-tiny", "overrides": {"input_size": list(SIZE)}},
        "data": {"root": str(root), "eval_split": None}, "out_dir": str(out),
        "optim": {"kind": "adamw", "lr": 0.01, "schedule": "constant"},
        "stages": stages, "batch_size": batch_size, "progress": False, "threads": 1})


def test_supervised_stage_trains_every_path(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=4, size=SIZE)
    result = train(_cfg(root, tmp_path / "run", [{"name": "s", "epochs": 6, "gate_mode": "supervised"}]))
    task = [h["task_loss"] for h in result.history]
    assert min(task[-2:]) < 0.8 * task[0], task
    assert all(h["gate_loss"] > 0 for h in result.history)
    assert sum(result.history[0]["path_counts"]) == 4      # the gate's argmax, one per frame


@pytest.mark.parametrize("lam", [0.0, 100.0])
def test_frozen_network_gate_learns_the_paths_losses(tiny_dataset, tmp_path, lam):
    """Network frozen: every parameter and buffer outside the gate is unchanged, and the gate
    learns the per-frame choice argmin(loss_k + lam C_k) of that network on its frames."""
    root = tiny_dataset(frames=4, size=SIZE)
    start = train(_cfg(root, tmp_path / "s1", [{"name": "s1", "epochs": 2, "gate_mode": "random"}])).checkpoint
    stage = {"name": "gate", "epochs": 15 if lam == 0 else 4, "gate_mode": "supervised", "freeze_network": True,
             "resource_lambda": lam, "gate_lr": 0.05}
    # batch 1: the gate's BatchNorm sees one frame at a time, as at inference
    result = train(_cfg(root, tmp_path / "gate", [stage], model={"checkpoint": str(start)}, batch_size=1))
    # the paths' losses are constants here: after the first epoch only the stem and gate run,
    # and the reported task loss is their (cached) mean
    task = [h["task_loss"] for h in result.history]
    assert task[1:] == pytest.approx([task[1]] * (len(task) - 1))
    before, after = load_model(start).model, load_model(result.checkpoint).model
    a, b = before.state_dict(), after.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert changed and all(k.startswith("gate_net.") for k in changed), sorted(changed)[:5]
    data = SegmentationDataset(root, "train")
    rgb = torch.stack([data[i]["rgb"] for i in range(4)])
    depth = torch.stack([data[i]["depth"] for i in range(4)])
    target = torch.stack([data[i]["label"] for i in range(4)]) - 1
    weights = class_weights_for(data, ClassWeighting.MEDIAN_FREQUENCY)    # as the trainer's
    costs = torch.tensor(measure_costs(after).madds())
    with torch.no_grad():
        after.eval()
        feats = after.stem(rgb, depth)
        losses = torch.stack([per_sample_loss(after.run_path(k, feats), target, weights) for k in range(5)], 1)
        want = (losses + lam * costs / costs.max()).argmin(1)
        chosen, _ = after.choose(feats)
    if lam:
        assert chosen.tolist() == want.tolist() == [0, 0, 0, 0]
    else:
        # Per frame the gate's path is (nearly) the best: its regret (loss above the frame's
        # best path) is well under that of the best fixed path. Near-ties may go either way.
        rows = torch.arange(4)
        regret = float((losses[rows, chosen] - losses.min(1).values).mean())
        fixed = float(min((losses[:, k] - losses.min(1).values).mean() for k in range(5)))
        assert fixed > 0 and regret < 0.5 * fixed, (chosen.tolist(), want.tolist(), losses)


def test_freeze_network_keeps_the_network_in_eval_mode():
    model = build_model("dynmm-tiny", input_size=SIZE)
    model.freeze_network(True)
    model.train()
    assert model.training and model.gate_net.training and not model.encoder_rgb.training
    assert not any(p.requires_grad for n, p in model.named_parameters() if not n.startswith("gate_net."))
    assert model.path_module(2).training is False
    model.freeze_network(False)
    assert model.encoder_rgb.training and all(p.requires_grad for p in model.parameters())


def test_routed_stage_trains_the_network_on_the_gates_choices(tiny_dataset, tmp_path):
    """'routed': each frame through the gate's argmax path (the gate in eval mode, as deployed);
    the network learns, the gate does not."""
    root = tiny_dataset(frames=4, size=SIZE)
    model = build_model("dynmm-tiny", input_size=SIZE, depth_mean=2500.0, depth_std=800.0)
    with torch.no_grad():
        model.gate_net.head.bias.copy_(torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0]))   # path 2 on every frame
    from edgefuse.checkpoint import save_checkpoint

    start = save_checkpoint(tmp_path / "start.safetensors", model)
    result = train(_cfg(root, tmp_path / "r", [{"name": "r", "epochs": 2, "gate_mode": "routed"}],
                        model={"checkpoint": str(start)}))
    assert [h["path_counts"] for h in result.history] == [[0, 0, 4, 0, 0]] * 2
    a, b = load_model(start).model.state_dict(), load_model(result.checkpoint).model.state_dict()
    changed = {k for k in a if not torch.equal(a[k], b[k])}
    assert not any(k.startswith("gate_net.") for k in changed)
    # only what path 2 runs has learnt: depth stages 3-4 and fusion cells 3-4 are untouched
    assert any(k.startswith("encoder_depth.layer2.") for k in changed)
    assert not any(k.startswith(("encoder_depth.layer3.", "encoder_depth.layer4.", "fuse.2.", "fuse.3."))
                   for k in changed)
