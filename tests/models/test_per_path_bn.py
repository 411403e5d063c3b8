"""Per-path BatchNorm (issue 17, edgefuse/models/path_bn.py): path k normalises with its own
set, init_from a static ESANet copies its BatchNorms into every set (the full path is then
the ESANet), precise BN re-estimates one path's set only, and models without the option are
unchanged."""

import pytest
import torch
from torch import nn

from edgefuse.checkpoint import load_model, save_checkpoint
from edgefuse.errors import ConfigError
from edgefuse.models.path_bn import PathBatchNorm, recalibrate_paths
from edgefuse.models.registry import build_model

SIZE = (64, 64)


def _scramble(model, seed: int) -> None:
    """Distinct statistics and affine parameters in every BatchNorm (each set of each layer)."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.rand(n, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(n, generator=g) * 0.2 - 0.1)


def _frames(n=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(n, 3, *SIZE, generator=g) * 255
    depth = torch.rand(n, 1, *SIZE, generator=g) * 4000 + 500
    return rgb, depth


def _shared_copy(per_path, k: int):
    """The same network with shared BatchNorms holding per_path's set k."""
    shared = build_model("dynmm-tiny", input_size=SIZE)
    state = {}
    for key, value in per_path.state_dict().items():
        if ".sets." in key:
            head, rest = key.split(".sets.", 1)
            j, leaf = rest.split(".", 1)
            if int(j) != k:
                continue
            key = f"{head}.{leaf}"
        state[key] = value
    shared.load_state_dict(state, strict=True)
    return shared.eval()


def test_only_layers_after_the_first_skippable_fusion_get_a_set_per_path():
    model = build_model("dynmm-tiny", input_size=SIZE, per_path_bn=True)
    per_path = {n for n, m in model.named_modules() if isinstance(m, PathBatchNorm)}
    assert per_path and all(len(m.sets) == 5 for m in model.modules() if isinstance(m, PathBatchNorm))
    tops = {n.split(".")[0] + ("." + n.split(".")[1] if n.startswith("encoder_") else "") for n in per_path}
    assert tops == {"encoder_rgb.layer2", "encoder_rgb.layer3", "encoder_rgb.layer4", "context", "decoder"}
    shared = [n for n, m in model.named_modules() if type(m) is nn.BatchNorm2d and ".sets." not in n]
    assert any(n.startswith("encoder_rgb.layer1") for n in shared)
    assert any(n.startswith("encoder_depth.layer4") for n in shared)
    assert any(n.startswith("gate_net") for n in shared)


@torch.no_grad()
def test_path_k_uses_set_k_and_no_other():
    torch.manual_seed(0)
    model = build_model("dynmm-tiny", input_size=SIZE, per_path_bn=True).eval()
    _scramble(model, 1)
    rgb, depth = _frames()
    feats = model.stem(rgb, depth)
    outs = {k: model.run_path(k, feats) for k in (1, 3, 4)}
    for k in (1, 4):
        ref = _shared_copy(model, k)
        assert torch.allclose(outs[k], ref.run_path(k, ref.stem(rgb, depth)), atol=1e-5)
        # the same path with another path's set is another network
        other = _shared_copy(model, (k + 1) % 5)
        assert not torch.allclose(outs[k], other.run_path(k, other.stem(rgb, depth)), atol=1e-3)
    # a path module (what export traces) and grouped inference agree with run_path
    assert torch.allclose(model.path_module(3)(*(feats[n] for n in model.path_inputs(3))), outs[3], atol=1e-6)
    mixed = model.run_grouped(feats, torch.tensor([1, 4]))
    assert torch.allclose(mixed[0], outs[1][0], atol=1e-5) and torch.allclose(mixed[1], outs[4][1], atol=1e-5)
    assert all(m.active == 0 for m in model.modules() if isinstance(m, PathBatchNorm))


@torch.no_grad()
def test_init_from_esanet_copies_its_batchnorm_into_every_set(tiny_dataset, tmp_path):
    from edgefuse.data.dataset import SegmentationDataset
    from edgefuse.train.config import ModelSpec
    from edgefuse.train.trainer import build_train_model

    data = SegmentationDataset(tiny_dataset(frames=2, size=SIZE), "train")
    torch.manual_seed(2)
    esanet = build_model("esanet-tiny", input_size=SIZE, num_classes=13)
    _scramble(esanet, 3)
    src = save_checkpoint(tmp_path / "esanet.safetensors", esanet)
    model = build_train_model(ModelSpec(name="dynmm-tiny", init_from=str(src),
                                        overrides={"input_size": list(SIZE), "per_path_bn": True}), data).eval()
    bn = dict(esanet.named_modules())["encoder_rgb.layer3.0.bn1"]
    sets = dict(model.named_modules())["encoder_rgb.layer3.0.bn1"].sets
    for s in sets:
        assert torch.equal(s.running_var, bn.running_var) and torch.equal(s.weight, bn.weight)
    rgb, depth = _frames(seed=4)
    assert torch.equal(model(rgb, depth, path=4), esanet.eval()(rgb, depth))   # the full path is the ESANet
    # and a per-path checkpoint round-trips through safetensors
    back = load_model(save_checkpoint(tmp_path / "ppbn.safetensors", model)).model.eval()
    assert back.config.per_path_bn and torch.equal(back(rgb, depth, path=2), model(rgb, depth, path=2))


@torch.no_grad()
def test_precise_bn_re_estimates_one_paths_set_only(tiny_dataset):
    from edgefuse.data.dataset import SegmentationDataset

    torch.manual_seed(0)
    model = build_model("dynmm-tiny", input_size=SIZE, num_classes=13, per_path_bn=True).eval()
    _scramble(model, 5)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    loader = torch.utils.data.DataLoader(SegmentationDataset(tiny_dataset(frames=4, size=SIZE), "train"),
                                         batch_size=2)
    recalibrate_paths(model, loader, [1])
    after = model.state_dict()
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all(".sets.1.running_" in k or ".sets.1.num_batches" in k for k in changed)
    assert any(k.startswith("decoder") for k in changed)
    assert not model.training and not any(m.training for m in model.modules())   # as it was


def test_default_models_are_unchanged_and_the_option_is_fusion_dynmm_only():
    model = build_model("dynmm-tiny", input_size=SIZE)
    assert not any(isinstance(m, PathBatchNorm) for m in model.modules())
    assert "per_path_bn" not in model.config.to_dict()        # configs and manifests as before
    assert build_model("dynmm-tiny", input_size=SIZE, per_path_bn=True).config.to_dict()["per_path_bn"] is True
    with pytest.raises(ConfigError, match="per_path_bn"):
        build_model("esanet-tiny", input_size=SIZE, per_path_bn=True)
    with pytest.raises(ConfigError, match="paths that differ"):
        build_model("dynmm-tiny", input_size=SIZE, paths="full", per_path_bn=True)
