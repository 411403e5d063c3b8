"""Training config: YAML in, typed dataclasses out, unknown keys rejected with the valid ones."""

import pytest

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.train.config import GateMode, OptimizerKind, TrainConfig, load_config


def _base(**extra):
    return {"model": {"name": "dynmm-tiny"}, "data": {"root": "d"}, "out_dir": "o", **extra}


def test_yaml_round_trip(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: {name: dynmm-tiny, overrides: {decoder_blocks: 2}}\n"
                    "data: {root: d}\nout_dir: o\noptim: {kind: adamw, lr: 0.001}\n"
                    "stages:\n  - {name: s1, epochs: 2, gate_mode: random}\n"
                    "  - {name: s2, epochs: 1, gate_mode: gumbel_soft, tau_start: 1.0, tau_end: 0.01,"
                    " resource_lambda: 0.1, budget: 0.7}\n")
    cfg = load_config(path)
    assert cfg.optim.kind is OptimizerKind.ADAMW
    assert [s.gate_mode for s in cfg.stages] == [GateMode.RANDOM, GateMode.GUMBEL_SOFT]
    assert cfg.stages[1].budget == 0.7 and cfg.total_epochs == 3
    assert cfg.model.overrides == {"decoder_blocks": 2}
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize("data, word", [
    (_base(epochz=3), "epochz"),
    (_base(optim={"lr": 0.1, "nesterof": True}), "nesterof"),
    (_base(stages=[{"name": "s", "lambda": 1.0}]), "lambda"),
])
def test_unknown_keys_are_rejected_with_valid_keys(data, word):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(data)
    assert word in str(err.value) and "valid keys" in str(err.value)


def test_invalid_values_say_what_to_fix():
    with pytest.raises(ConfigError, match="exactly one"):
        TrainConfig.from_dict({**_base(), "model": {"name": "x", "checkpoint": "y"}})
    with pytest.raises(ConfigError, match="budget"):
        TrainConfig.from_dict(_base(stages=[{"budget": 1.5}]))
    with pytest.raises(ConfigError, match="gumbel_hard"):
        TrainConfig.from_dict(_base(stages=[{"gate_mode": "gumbel"}]))


def test_missing_file(tmp_path):
    with pytest.raises(EdgefuseError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_and_example_configs_parse():
    from pathlib import Path

    configs = sorted((Path(__file__).parents[2] / "configs").rglob("*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        load_config(path)


# --- data.augment ---------------------------------------------------------------------------
def test_augment_parses_from_yaml_and_round_trips(tmp_path):
    from edgefuse.data.transforms import TransformConfig
    from edgefuse.train.config import AugmentConfig

    path = tmp_path / "c.yaml"
    path.write_text("model: {name: esanet-tiny}\nout_dir: o\n"
                    "data:\n  root: d\n  augment:\n    scale: [1.0, 1.2]\n    flip: false\n"
                    "    hue_deg: 5\n    saturation: [0.8, 1.2]\n    value: 10\n")
    cfg = load_config(path)
    aug = cfg.data.augment
    assert aug == AugmentConfig(scale=(1.0, 1.2), flip=False, hue_deg=5.0, saturation=(0.8, 1.2), value=10.0)
    assert aug.size is None
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    # the transform is built at the model's input size
    assert aug.transform_config((64, 96)) == TransformConfig(size=(64, 96), scale=(1.0, 1.2), flip=False,
                                                              hue_deg=5.0, saturation=(0.8, 1.2), value=10.0)
    # an empty block is ESANet's recipe (TransformConfig's defaults)
    empty = TrainConfig.from_dict(_base(data={"root": "d", "augment": {}})).data.augment
    assert empty.transform_config((48, 64)) == TransformConfig(size=(48, 64))


def test_augment_is_off_unless_given():
    assert TrainConfig.from_dict(_base()).data.augment is None
    assert TrainConfig.from_dict(_base(data={"root": "d", "augment": None})).data.augment is None


def test_augment_exposes_every_transform_setting():
    """A new TransformConfig knob must be reachable from YAML (and keep its default)."""
    import dataclasses

    from edgefuse.data.transforms import TransformConfig
    from edgefuse.train.config import AugmentConfig

    names = [f.name for f in dataclasses.fields(TransformConfig)]
    assert [f.name for f in dataclasses.fields(AugmentConfig)] == names
    assert dataclasses.replace(AugmentConfig().transform_config((7, 9)), size=TransformConfig().size) \
        == TransformConfig()


def test_augment_unknown_key_lists_the_valid_ones():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict(_base(data={"root": "d", "augment": {"flip": True, "scael": [1.0, 1.4]}}))
    msg = str(err.value)
    assert "data.augment" in msg and "'scael'" in msg and "valid keys" in msg
    for key in ("flip", "hue_deg", "saturation", "scale", "size", "value"):
        assert key in msg


def test_augment_bad_values_and_size_mismatch():
    from edgefuse.train.config import AugmentConfig

    with pytest.raises(ConfigError, match="data.augment.*padding"):
        TrainConfig.from_dict(_base(data={"root": "d", "augment": {"scale": [0.5, 1.4]}}))
    with pytest.raises(ConfigError, match="data.augment"):
        TrainConfig.from_dict(_base(data={"root": "d", "augment": {"flip": "yes"}}))
    aug = AugmentConfig(size=(64, 64))
    assert aug.transform_config((64, 64)).size == (64, 64)
    with pytest.raises(ConfigError, match="input size"):
        aug.transform_config((96, 128))


def test_existing_configs_and_shipped_weights_keep_their_meaning():
    """Augmentation is opt-in: the synthetic/shipped configs and the training configs recorded
    in the shipped weights parse with none; the real-dataset examples turn it on."""
    import json
    from pathlib import Path

    repo = Path(__file__).parents[2]
    for path in sorted((repo / "edgefuse" / "resources" / "weights").glob("*.json")):
        recorded = json.loads(path.read_text())["train_config"]
        assert recorded["data"].get("augment") is None   # absent (older cards) or null
        assert TrainConfig.from_dict(recorded).data.augment is None, path
    for path in sorted((repo / "configs").rglob("*.yaml")):
        cfg = load_config(path)
        real = "nyuv2" in path.stem or "sunrgbd" in path.stem
        assert (cfg.data.augment is not None) == real, path
