"""Round trips: an edgefuse model written in the official layout (as the official training
script saves) and imported back computes exactly what it computed before, and the
imported model's options reproduce the official architecture's parts."""

import torch

from edgefuse.importers import esanet_layout as layout
from edgefuse.importers import import_checkpoint
from edgefuse.importers.datasets import dataset_preset
from edgefuse.models.registry import build_model
from tests.importers.conftest import SMALL


def _official_like(family: str, seed: int):
    """An edgefuse model with the options an import uses, random weights and BN statistics."""
    nyu = dataset_preset("nyuv2")
    torch.manual_seed(seed)
    model = build_model(f"{family}-r34-nbt1d", encoder="resnet18", block="basic", num_classes=40, class_names=nyu.classes,
                        input_size=SMALL, decoder_channels=(64, 32, 32), decoder_blocks=1, context_bins=(1, 5),
                        context_bn=True, gate_style="dynmm", depth_mean=nyu.depth_mean, depth_std=nyu.depth_std,
                        paths="progressive")
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
    return model.eval()


def _frame(seed: int):
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand((2, 3, *SMALL), generator=g) * 255
    depth = torch.rand((2, 1, *SMALL), generator=g) * 5000
    depth[:, :, :40] = 0   # a band without depth
    return rgb, depth


def test_esanet_round_trip_is_exact(write_official):
    model = _official_like("esanet", 0)
    path = write_official(layout.to_official_state(model.state_dict()))
    imported = import_checkpoint("esanet", path, input_size=SMALL)
    assert imported.config.family.value == "esanet" and imported.config.name == "esanet-r18-nyuv2"
    rgb, depth = _frame(0)
    with torch.no_grad():
        assert torch.equal(imported.model(rgb, depth), model(rgb, depth))


def test_dynmm_round_trip_keeps_every_path_and_the_gate(write_official):
    model = _official_like("dynmm", 1)
    path = write_official(layout.to_official_state(model.state_dict()))
    imported = import_checkpoint("dynmm", path, dataset="nyuv2", input_size=SMALL)
    assert imported.config.gate_style == "dynmm" and imported.model.num_paths == 5
    rgb, depth = _frame(1)
    with torch.no_grad():
        feats_a, feats_b = model.stem(rgb, depth), imported.model.stem(rgb, depth)
        assert torch.equal(model.gate(feats_a), imported.model.gate(feats_b))
        for k in range(5):
            assert torch.equal(model.infer(rgb, depth, path=k)[0], imported.model.infer(rgb, depth, path=k)[0])


def test_dynmm_gate_style_is_the_official_layout():
    """Unpadded 5x5 convs with bias, a 1x1 head without: 120x160 stem features -> 27x37."""
    model = _official_like("dynmm", 2)
    convs = [m for m in model.gate_net.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.padding for c in convs] == [(0, 0), (0, 0)] and all(c.bias is not None for c in convs)
    assert model.gate_net.head.bias is None
    x = torch.randn(1, 128, 120, 160)
    assert model.gate_net.features[:6](x).shape[-2:] == (27, 37)
    # forward_parts (no concatenation) equals the gate on the concatenation, bias included
    a, b = x[:, :64], x[:, 64:]
    assert torch.allclose(model.gate_net.forward_parts(a, b), model.gate_net(x), atol=1e-6)


def test_context_bn_branches_are_conv_bn_relu():
    model = _official_like("esanet", 3)
    branch = model.context.branches[0]
    assert [type(m).__name__ for m in branch] == ["Conv2d", "BatchNorm2d", "ReLU"] and branch[0].bias is None


def test_refined_depth_mode_normalises_zero():
    raw = build_model("esanet-tiny").norm
    refined = build_model("esanet-tiny", depth_mode="refined").norm
    d = torch.tensor([[[[0.0, 1000.0]]]])
    assert raw.depth(d)[0, 0, 0, 0] == 0
    expect = (d - refined.depth_mean) / refined.depth_std
    assert torch.equal(refined.depth(d), expect) and expect[0, 0, 0, 0] < 0
    assert torch.equal(raw.depth(d)[..., 1], expect[..., 1])
