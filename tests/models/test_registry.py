"""Every registered configuration builds and runs (train and eval), and bad configs fail clearly."""

import pytest
import torch

from edgefuse.errors import ConfigError
from edgefuse.models.base import SegOutput
from edgefuse.models.config import ModelConfig
from edgefuse.models.registry import build_model, get_config, list_configs

# Full-size configs run at a small input that their context bins allow (1/32 map divisible
# by the bins): 160x160 -> 5x5 at 1/32 for bins (1, 5); tiny configs use their own size.
def _small_size(name):
    bins = get_config(name).context_bins
    return (160, 160) if 5 in bins else (64, 64)


@pytest.mark.parametrize("name", list_configs())
def test_forward_shapes_train_and_eval(name):
    size = _small_size(name)
    model = build_model(name, input_size=size)     # registered widths: the real channel counts
    cfg = model.config
    rgb = torch.rand(2, 3, *size) * 255
    depth = torch.rand(2, 1, *size) * 4000
    model.train()
    out = model(rgb, depth)
    assert isinstance(out, SegOutput)
    assert out.logits.shape == (2, cfg.num_classes, *size)
    if cfg.family.value not in ("cen",):
        # side outputs at 1/8, 1/16, 1/32
        assert [tuple(s.shape[-2:]) for s in out.side] == [
            (size[0] // 8, size[1] // 8), (size[0] // 16, size[1] // 16), (size[0] // 32, size[1] // 32)]
    model.eval()
    with torch.no_grad():
        logits = model(rgb, depth)
    assert logits.shape == (2, cfg.num_classes, *size)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize("name", list_configs())
def test_eval_forward_at_the_registered_input_size(name):
    """Every configuration exactly as registered (width, classes, input size, bins)."""
    model = build_model(name).eval()
    h, w = model.config.input_size
    with torch.no_grad():
        logits = model(torch.rand(1, 3, h, w) * 255, torch.rand(1, 1, h, w) * 4000)
    assert logits.shape == (1, model.config.num_classes, h, w) and torch.isfinite(logits).all()


def test_registry_has_the_required_names():
    for name in ("esanet-r34-nbt1d", "esanet-r50", "dynmm-r50", "cen-r18"):
        assert name in list_configs()
    assert any("tiny" in n for n in list_configs())


def test_unknown_model_lists_registered_names():
    with pytest.raises(ConfigError, match="esanet-r50"):
        get_config("esanet-r51")


def test_unknown_config_key_lists_valid_keys():
    with pytest.raises(ConfigError, match="valid keys are:.*decoder_channels"):
        get_config("dynmm-tiny", decodr_channels=(1, 2, 3))
    with pytest.raises(ConfigError, match="unknown key"):
        ModelConfig.from_dict({"family": "dynmm", "bogus": 1})


def test_bad_values_are_rejected():
    with pytest.raises(ConfigError, match="not one of"):
        ModelConfig.from_dict({"family": "nope"})
    with pytest.raises(ConfigError, match="resnet50"):
        build_model("esanet-tiny", encoder="resnet50")  # basic block on resnet50
    with pytest.raises(ConfigError, match="decision string"):
        build_model("dynmm-tiny", paths="0000,12")


def test_input_size_the_bins_do_not_allow_is_a_clear_error():
    with pytest.raises(ConfigError, match=r"bin\(s\) \[5\].*try 480x480"):
        build_model("esanet-r34-nbt1d", input_size=(512, 512))
    with pytest.raises(ConfigError, match="multiple of 32.*try 480x640"):
        build_model("esanet-r34-nbt1d", input_size=(470, 640))
    # the suggestion always satisfies the bins too (tiny models: bins (1, 2))
    with pytest.raises(ConfigError, match=r"multiple of 32.*try 128x256"):
        build_model("dynmm-tiny", input_size=(100, 250))
    build_model("dynmm-tiny", input_size=(128, 256))
