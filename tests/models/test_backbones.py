"""ResNet encoders: torchvision-compatible parameter names, pretrained loading, blocks."""

import pytest
import torch

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.models.blocks import NonBottleneck1D
from edgefuse.models.resnet import EncoderSpec, ResNetEncoder, load_pretrained


def torchvision_resnet_keys(depth: int) -> dict[str, tuple[int, ...]]:
    """torchvision's ResNet state-dict keys and shapes, written out from its architecture
    rules (torchvision is not installable here): conv1/bn1, layerN.M.convK/bnK,
    layerN.0.downsample.{0,1}, fc."""
    bottleneck = depth >= 50
    layers = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3), 50: (3, 4, 6, 3)}[depth]
    keys: dict[str, tuple[int, ...]] = {}

    def bn(prefix, c):
        for n in ("weight", "bias", "running_mean", "running_var"):
            keys[f"{prefix}.{n}"] = (c,)
        keys[f"{prefix}.num_batches_tracked"] = ()

    keys["conv1.weight"] = (64, 3, 7, 7)
    bn("bn1", 64)
    c_in = 64
    exp = 4 if bottleneck else 1
    for i, n in enumerate(layers):
        planes = 64 * 2**i
        for j in range(n):
            p = f"layer{i + 1}.{j}"
            if bottleneck:
                keys[f"{p}.conv1.weight"] = (planes, c_in, 1, 1); bn(f"{p}.bn1", planes)
                keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3); bn(f"{p}.bn2", planes)
                keys[f"{p}.conv3.weight"] = (planes * 4, planes, 1, 1); bn(f"{p}.bn3", planes * 4)
            else:
                keys[f"{p}.conv1.weight"] = (planes, c_in, 3, 3); bn(f"{p}.bn1", planes)
                keys[f"{p}.conv2.weight"] = (planes, planes, 3, 3); bn(f"{p}.bn2", planes)
            if j == 0 and (i > 0 or c_in != planes * exp):
                keys[f"{p}.downsample.0.weight"] = (planes * exp, c_in, 1, 1)
                bn(f"{p}.downsample.1", planes * exp)
            c_in = planes * exp
    keys["fc.weight"] = (1000, 512 * exp)
    keys["fc.bias"] = (1000,)
    return keys


@pytest.mark.parametrize("depth,block", [(18, "basic"), (34, "basic"), (50, "bottleneck")])
def test_parameter_names_match_torchvision(depth, block):
    enc = ResNetEncoder(EncoderSpec(f"resnet{depth}", block), 3)
    ours = {k: tuple(v.shape) for k, v in enc.state_dict().items()}
    theirs = {k: v for k, v in torchvision_resnet_keys(depth).items() if not k.startswith("fc.")}
    assert ours == theirs


def test_load_torchvision_state_dict_from_local_file(tmp_path):
    g = torch.Generator().manual_seed(0)
    state = {k: (torch.randn(s, generator=g) if s else torch.tensor(7))
             for k, s in torchvision_resnet_keys(18).items()}
    path = tmp_path / "resnet18-imagenet.pth"
    torch.save(state, path)
    rgb = ResNetEncoder(EncoderSpec("resnet18", "basic"), 3)
    depth = ResNetEncoder(EncoderSpec("resnet18", "basic"), 1)
    assert load_pretrained(rgb, path) == []
    assert load_pretrained(depth, path) == []
    torch.testing.assert_close(rgb.layer3[1].conv2.weight, state["layer3.1.conv2.weight"])
    # the depth encoder's first conv is the RGB conv1 summed over input channels (ESANet)
    torch.testing.assert_close(depth.conv1.weight, state["conv1.weight"].sum(1, keepdim=True))


def test_pretrained_errors_are_clear(tmp_path):
    enc = ResNetEncoder(EncoderSpec("resnet18", "basic"), 3)
    with pytest.raises(EdgefuseError, match="not found"):
        load_pretrained(enc, tmp_path / "missing.pth")
    bad = tmp_path / "r50.pth"
    torch.save({k: torch.zeros(s) for k, s in torchvision_resnet_keys(50).items()}, bad)
    with pytest.raises(EdgefuseError, match="shape mismatch"):
        load_pretrained(enc, bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(EdgefuseError, match="weights-only"):
        load_pretrained(enc, junk)


def test_width_multiplier_scales_channels():
    spec = EncoderSpec("resnet18", "basic", width=0.25)
    assert spec.stage_channels == (16, 32, 64, 128)
    assert EncoderSpec("resnet50", "bottleneck", 0.5).stage_channels == (128, 256, 512, 1024)
    feats = ResNetEncoder(spec, 3)(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in feats] == [16, 32, 64, 128]
    assert [f.shape[-1] for f in feats] == [16, 8, 4, 2]


def test_nonbottleneck1d_uses_factorised_convs_and_eps():
    block = NonBottleneck1D(16, 16)
    assert block.conv3x1_1.kernel_size == (3, 1) and block.conv1x3_1.kernel_size == (1, 3)
    assert block.bn1.eps == 1e-3
    assert block(torch.rand(1, 16, 8, 8)).shape == (1, 16, 8, 8)


def test_invalid_encoder_specs():
    with pytest.raises(ConfigError, match="unknown encoder"):
        EncoderSpec("resnet101", "bottleneck")
    with pytest.raises(ConfigError, match="width"):
        EncoderSpec("resnet18", "basic", width=0)


@pytest.mark.parametrize("name", ["esanet-tiny", "dynmm-tiny", "rgb-tiny", "depth-tiny", "early-tiny",
                                  "dynmm-modality-tiny"])
def test_every_family_loads_imagenet_weights_into_each_encoder(tmp_path, name):
    from edgefuse.models.registry import build_model

    model = build_model(name)
    encoders = [m for m in model.modules() if isinstance(m, ResNetEncoder)]
    assert encoders
    g = torch.Generator().manual_seed(1)
    state = {k: torch.randn(v.shape, generator=g) if v.is_floating_point() else v
             for k, v in ResNetEncoder(encoders[0].spec, 3).state_dict().items()}
    path = tmp_path / "imagenet.pth"
    torch.save(state, path)
    assert model.load_pretrained(str(path)) == []
    w = state["conv1.weight"]
    expected = {3: w, 1: w.sum(1, keepdim=True), 4: torch.cat([w, w.mean(1, keepdim=True)], 1)}
    for enc in encoders:  # tiny models use BasicBlocks: torchvision names throughout
        torch.testing.assert_close(enc.layer2[0].conv1.weight, state["layer2.0.conv1.weight"])
        torch.testing.assert_close(enc.conv1.weight, expected[enc.conv1.weight.shape[1]])
