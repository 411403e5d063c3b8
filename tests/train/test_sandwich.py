"""DynMM from a trained static model (issue 17): `init_from` copies every ESANet weight into
fusion-level DynMM (a checkpoint of another architecture is one error), and stage I by the
sandwich rule with in-place distillation."""

import pytest
import torch

from edgefuse.checkpoint import load_model, save_checkpoint
from edgefuse.errors import EdgefuseError
from edgefuse.models.base import SegOutput, sandwich_paths
from edgefuse.models.registry import build_model
from edgefuse.train.config import StageConfig, TrainConfig
from edgefuse.train.losses import sandwich_loss
from edgefuse.train.trainer import train


def test_sandwich_takes_the_full_the_cheapest_and_distinct_random_paths():
    model = build_model("dynmm-tiny", input_size=(64, 64))     # progressive: path 0 RGB only, 4 fuses all
    seen = set()
    for _ in range(20):
        full, cheapest, others = sandwich_paths(model, 2)
        assert (full, cheapest) == (4, 0) and len(set(others)) == 2 and set(others) <= {1, 2, 3}
        seen |= set(others)
    assert seen == {1, 2, 3}
    assert sandwich_paths(model, 0)[2] == [] and len(sandwich_paths(model, 9)[2]) == 3


def test_sub_paths_learn_the_full_paths_soft_prediction_and_only_the_full_path_the_labels():
    torch.manual_seed(0)
    target = torch.randint(0, 3, (2, 4, 4))
    target[0, 0, 0] = -1
    full = torch.randn(2, 3, 4, 4, requires_grad=True)
    sub = torch.randn(2, 3, 4, 4, requires_grad=True)
    out = SegOutput(full, sub_outputs=(SegOutput(sub),))
    sandwich_loss(out, target, None, StageConfig(gate_mode="sandwich")).backward()
    alone = full.detach().clone().requires_grad_(True)
    torch.nn.functional.cross_entropy(alone, target, ignore_index=-1).backward()
    assert torch.allclose(full.grad, alone.grad)       # the distillation term sends the teacher nothing
    assert sub.grad.abs().sum() > 0
    # a student equal to the teacher has nothing to learn from it
    same = SegOutput(full.detach(), sub_outputs=(SegOutput(full.detach().clone()),))
    zero = sandwich_loss(same, target, None, StageConfig(gate_mode="sandwich"))
    assert zero.item() == pytest.approx(torch.nn.functional.cross_entropy(full, target, ignore_index=-1).item(),
                                        abs=1e-5)
    # without distillation every path learns the labels
    sub2 = sub.detach().clone().requires_grad_(True)
    plain = sandwich_loss(SegOutput(full.detach(), sub_outputs=(SegOutput(sub2),)), target, None,
                          StageConfig(gate_mode="sandwich", distill=False))
    want = (torch.nn.functional.cross_entropy(full, target, ignore_index=-1)
            + torch.nn.functional.cross_entropy(sub2, target, ignore_index=-1))
    assert plain.item() == pytest.approx(want.item(), abs=1e-5)


def test_dynmm_from_esanet_then_a_sandwich_step(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=4, size=(64, 64))
    torch.manual_seed(1)
    esanet = build_model("esanet-tiny", input_size=(64, 64), num_classes=13)
    src = save_checkpoint(tmp_path / "esanet.safetensors", esanet)
    cfg = TrainConfig.from_dict({
        "model": {"name": "dynmm-tiny", "init_from": str(src), "overrides": {"input_size": [64, 64]}},
        "data": {"root": str(root), "eval_split": None}, "out_dir": str(tmp_path / "run"),
        "optim": {"kind": "adamw", "lr": 0.001, "schedule": "constant"},
        "stages": [{"name": "sandwich", "epochs": 1, "gate_mode": "sandwich", "sandwich_random": 1}],
        "batch_size": 2, "threads": 1, "progress": False})
    result = train(cfg)
    trained = load_model(result.checkpoint).model
    hist = result.history[0]
    assert hist["path_counts"][4] == 4 and sum(hist["path_counts"]) == 4   # the full path on every sample
    moved = [k for k, v in esanet.state_dict().items()
             if v.is_floating_point() and not torch.equal(v, trained.state_dict()[k])]
    assert any(k.startswith("encoder_depth.layer4") for k in moved)   # the full path trained
    assert any(k.startswith("encoder_rgb.layer1") for k in moved)


def test_init_from_copies_every_esanet_weight_and_refuses_another_architecture(tiny_dataset, tmp_path):
    from edgefuse.data.dataset import SegmentationDataset
    from edgefuse.train.config import ModelSpec
    from edgefuse.train.trainer import build_train_model

    data = SegmentationDataset(tiny_dataset(frames=2, size=(64, 64)), "train")
    torch.manual_seed(2)
    esanet = build_model("esanet-tiny", input_size=(64, 64), num_classes=13)
    src = save_checkpoint(tmp_path / "e.safetensors", esanet)
    model = build_train_model(ModelSpec(name="dynmm-tiny", init_from=str(src), overrides={"input_size": (64, 64)}),
                              data)
    own = model.state_dict()
    assert all(torch.equal(own[k], v) for k, v in esanet.state_dict().items())
    assert {k.split(".")[0] for k in own if k not in esanet.state_dict()} == {"gate_net"}
    # the full path of the new DynMM is the ESANet, output for output
    model.eval()
    rgb, depth = torch.rand(1, 3, 64, 64) * 255, torch.rand(1, 1, 64, 64) * 4000
    with torch.no_grad():
        assert torch.allclose(model.infer(rgb, depth, path=4)[0], esanet.eval()(rgb, depth), atol=1e-5)
    wrong = save_checkpoint(tmp_path / "r.safetensors", build_model("rgb-tiny", input_size=(64, 64), num_classes=13))
    with pytest.raises(EdgefuseError, match=r"does not fit dynmm-tiny: \d+ of its \d+ tensors differ"):
        build_train_model(ModelSpec(name="dynmm-tiny", init_from=str(wrong), overrides={"input_size": (64, 64)}),
                          data)


def _ppbn_config(root, tmp_path, stages, overrides=None):
    return TrainConfig.from_dict({
        "model": {"name": "dynmm-tiny", "overrides": {"input_size": [64, 64], **(overrides or {})}},
        "data": {"root": str(root), "eval_split": None}, "out_dir": str(tmp_path / "run"),
        "optim": {"kind": "adamw", "lr": 0.001, "schedule": "constant"},
        "stages": stages, "batch_size": 2, "threads": 1, "progress": False, "seed": 3})


def test_a_precise_bn_stage_re_estimates_every_paths_set_as_recalibrate_paths_does(tiny_dataset, tmp_path):
    from edgefuse.data.dataset import SegmentationDataset
    from edgefuse.models.path_bn import recalibrate_paths

    root = tiny_dataset(frames=6, size=(64, 64))
    # The same start twice (same seed): one run without the stage's precise BN, one with it
    plain = train(_ppbn_config(root, tmp_path / "a", [{"name": "bn", "epochs": 0}], {"per_path_bn": True}))
    result = train(_ppbn_config(root, tmp_path / "b", [{"name": "bn", "epochs": 0, "precise_bn_frames": 4}],
                                {"per_path_bn": True}))
    got = load_model(result.checkpoint).model.state_dict()
    ref = load_model(plain.checkpoint).model
    start = {k: v.clone() for k, v in ref.state_dict().items()}
    # by hand: recalibrate_paths on the first 4 training frames as stored, every path
    data = torch.utils.data.Subset(SegmentationDataset(root, "train"), range(4))
    recalibrate_paths(ref, torch.utils.data.DataLoader(data, batch_size=2), range(5))
    want = ref.state_dict()
    stats = [k for k in want if ".sets." in k and k.endswith(("running_mean", "running_var"))]
    assert stats and all(not torch.equal(want[k], start[k]) for k in stats)   # every set moved
    for k in stats:
        torch.testing.assert_close(got[k], want[k], rtol=1e-4, atol=1e-5)
    # weights untouched: a BN-statistics stage trains nothing
    assert all(torch.equal(got[k], start[k]) for k in want if k.endswith(".weight"))


def test_precise_bn_on_a_model_without_per_path_sets_is_one_error(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=4, size=(64, 64))
    cfg = _ppbn_config(root, tmp_path, [{"name": "bn", "epochs": 0, "precise_bn_frames": 4}])
    with pytest.raises(EdgefuseError, match="precise_bn_frames.*per_path_bn: true"):
        train(cfg)
    with pytest.raises(Exception, match="precise_bn_frames must be >= 0"):
        StageConfig(name="bn", precise_bn_frames=-1)
