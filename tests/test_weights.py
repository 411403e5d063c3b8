"""Shipped weights (edgefuse/resources/weights): `edgefuse info --weights` lists each with its
card, each card's recorded hash is that of its file, and the names work wherever a checkpoint
path does."""

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from edgefuse.checkpoint import WEIGHTS_DIR, load_model, shipped_weights, state_sha256
from edgefuse.cli.main import main
from edgefuse.weights import list_weights

SHIPPED = ("dynmm-tiny-synth", "esanet-tiny-synth", "rgb-tiny-synth", "dynmm-modality-tiny-synth")


def _card(name):
    return json.loads((WEIGHTS_DIR / f"{name}.json").read_text())


def test_info_weights_json_lists_each_card(capsys):
    assert main(["info", "--weights", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert sorted(rows) == sorted(SHIPPED) == sorted(shipped_weights())
    assert rows == {r["name"]: r for r in list_weights()}
    for name, row in rows.items():
        card = _card(name)
        path = WEIGHTS_DIR / row["file"]
        assert row["file"] == f"{name}.safetensors" and row["size_bytes"] == path.stat().st_size
        assert row["command"] == card["command"] and "edgefuse train" in row["command"]
        assert row["data"] == card["data"]
        assert row["model"] == card["model"] == card["model_config"]["name"]
        assert row["model_config"] == card["model_config"]
        assert row["weights_sha256"] == card["weights_sha256"]
        # eval figures: the card's report, with the headline mIoU also on its own
        assert row["eval"] == card["eval"] and row["miou"] == card["eval"]["miou"]
        assert 0.0 < row["miou"] < 1.0 and len(row["eval"]["per_class_iou"]) == 13
    # only the dynamic model reports a path mix, one share per path of its path set
    dyn = rows["dynmm-tiny-synth"]["eval"]
    assert len(dyn["path_ratio"]) == 5 and sum(dyn["path_ratio"]) == pytest.approx(1.0)


def test_info_weights_table_shows_names_and_miou(capsys):
    assert main(["info", "--weights"]) == 0
    out = capsys.readouterr().out
    for name in SHIPPED:
        card = _card(name)
        assert name in out and card["model"] in out
        assert f"{100 * card['eval']['miou']:.1f}" in out


@pytest.mark.parametrize("name", SHIPPED)
def test_card_hash_and_config_are_those_of_the_file(name):
    card = _card(name)
    path = WEIGHTS_DIR / f"{name}.safetensors"
    # hashed independently of load_model: the tensors as stored
    assert state_sha256(load_file(str(path))) == card["weights_sha256"]
    with safe_open(str(path), framework="pt") as f:
        assert json.loads(f.metadata()["edgefuse_config"]) == card["model_config"]
    loaded = load_model(name)
    assert loaded.kind == "shipped" and loaded.weights_sha256 == card["weights_sha256"]
    assert loaded.config.to_dict() == card["model_config"]
    assert tuple(loaded.config.input_size) == (192, 256)
    # stored as float16 (card "storage"), run as float32, in eval mode
    assert card["storage"] == "float16"
    assert all(p.dtype == torch.float32 for p in loaded.model.parameters())
    assert not loaded.model.training


@pytest.mark.parametrize("name", SHIPPED)
def test_a_shipped_name_loads_the_same_model_as_its_file(name):
    by_name, by_path = load_model(name), load_model(WEIGHTS_DIR / f"{name}.safetensors")
    assert (by_name.kind, by_path.kind) == ("shipped", "checkpoint")
    assert by_name.weights_sha256 == by_path.weights_sha256
    a, b = by_name.model.state_dict(), by_path.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_eval_takes_a_shipped_name_for_a_checkpoint(tiny_dataset, tmp_path):
    """`edgefuse eval NAME` on a tiny dataset at the weights' own 192x256 (the dynamic model:
    it also reports the gate's path mix). `edgefuse export NAME`: tests/export/test_shipped.py."""
    root = tiny_dataset(frames=2, size=(192, 256))
    report = tmp_path / "report.json"
    assert main(["eval", "dynmm-tiny-synth", "--data", str(root), "--json", str(report)]) == 0
    r = json.loads(report.read_text())
    assert r["frames"] == 2 and 0.0 < r["miou"] <= 1.0
    assert len(r["path_ratio"]) == 5 and sum(r["path_ratio"]) == pytest.approx(1.0)
    assert r["mean_madds"] > 0
    assert main(["eval", "dynmm-tiny-synth-nope", "--data", str(root)]) == 2   # a misspelt name: user error
