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
