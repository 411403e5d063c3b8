"""The operating point (issue 17): a cost bias chosen for a target, recorded in the
checkpoint, applied by `choose` / eval, marked by `eval --oracle`, re-chosen by `edgefuse tune`."""

import json

import numpy as np
import pytest
import torch

from edgefuse.checkpoint import load_model, save_checkpoint
from edgefuse.cli.main import main
from edgefuse.data.dataset import SegmentationDataset
from edgefuse.errors import EdgefuseError
from edgefuse.eval.evaluate import evaluate
from edgefuse.eval.oracle import oracle_report, score_paths
from edgefuse.eval.tune import Target, choose
from edgefuse.models.base import SegModel
from edgefuse.models.operating_point import OperatingPoint, cost_share
from edgefuse.models.paths import PathSet
from edgefuse.models.registry import build_model


class ThreePaths(SegModel):
    """A gate with fixed logits [0, 0, 1] over three paths (nothing else is run here)."""

    feature_names = ("rgb", "depth")

    def __init__(self) -> None:
        super().__init__()
        self.paths = PathSet(((False, False), (True, False), (True, True)))

    def stem(self, rgb, depth):
        return {"rgb": rgb, "depth": depth}

    def gate(self, feats):
        return torch.tensor([[0.0, 0.0, 1.0]]).repeat(feats["rgb"].shape[0], 1)


def test_strength_lowers_costlier_paths_in_proportion_to_their_cost():
    op = OperatingPoint.from_strength(2.0, [10.0, 20.0, 30.0], target="miou:40")
    assert cost_share([10.0, 20.0, 30.0]) == [0.0, 0.5, 1.0]
    assert op.gate_bias == (0.0, -1.0, -2.0)
    again = OperatingPoint.from_dict(json.loads(json.dumps(op.to_dict())), 3)
    assert again == op
    with pytest.raises(EdgefuseError, match="3 gate biases for a model with 4 paths"):
        OperatingPoint.from_dict(op.to_dict(), 3 + 1)
    with pytest.raises(EdgefuseError, match="malformed"):
        OperatingPoint.from_dict({"strength": 1.0}, 3)


def test_choose_applies_the_bias_and_returns_the_raw_logits():
    model = ThreePaths()
    feats = {"rgb": torch.zeros(2, 3, 4, 4), "depth": torch.zeros(2, 1, 4, 4)}
    assert model.choose(feats)[0].tolist() == [2, 2]
    model.set_operating_point(OperatingPoint.from_strength(1.5, [1.0, 2.0, 3.0]))   # 1 - 1.5 < 0 - 0
    index, logits = model.choose(feats)
    assert index.tolist() == [0, 0] and logits[0].tolist() == [0.0, 0.0, 1.0]
    with pytest.raises(EdgefuseError, match="2 gate biases"):
        model.set_operating_point(OperatingPoint.from_strength(1.0, [1.0, 2.0]))


def test_the_operating_point_travels_with_the_checkpoint_and_eval_applies_it(tiny_dataset, tmp_path):
    data = SegmentationDataset(tiny_dataset(frames=4, size=(64, 64)), "test")
    model = build_model("dynmm-tiny", input_size=(64, 64))
    costs = [1.0, 2.0, 3.0, 4.0, 5.0]
    plain = evaluate(model, data, batch_size=2, path_madds=costs)
    model.set_operating_point(OperatingPoint.from_strength(-1e6, costs, target="miou:1"))  # costliest path
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    loaded = load_model(path)
    assert loaded.model.operating_point == model.operating_point
    assert loaded.meta["operating_point"]["target"] == "miou:1"
    biased = evaluate(loaded.model, data, batch_size=2, path_madds=costs)
    assert biased["path_ratio"] == [0.0, 0.0, 0.0, 0.0, 1.0] and plain["path_ratio"] != biased["path_ratio"]
    # the oracle report scores the gate as deployed and marks the point on the gate's curve
    report = oracle_report(score_paths(loaded.model, data, path_madds=costs))
    assert report["gate"]["path_ratio"] == biased["path_ratio"]
    shipped = [p for p in report["gate_curve"] if p.get("shipped")]
    assert len(shipped) == 1 and shipped[0]["miou"] == pytest.approx(report["gate"]["miou"])
    assert report["operating_point"]["strength"] == -1e6


@pytest.mark.parametrize("text, want", [
    ("match:esanet-tiny-synth", Target("match", 0.0, "esanet-tiny-synth")),
    ("match:runs/a.safetensors+0.5", Target("match", 0.5, "runs/a.safetensors")),
    ("miou:45", Target("miou", 45.0)), ("full:1", Target("full", 1.0)), ("madds:0.8", Target("madds", 0.8)),
    ("madds:0.78@95", Target("madds", 0.78, confidence=0.95))])
def test_targets_parse(text, want):
    assert Target.parse(text) == want and Target.parse(str(want)) == want


@pytest.mark.parametrize("text", ["", "match", "match:", "fast", "madds:1.5", "miou:x", "full:-1", "madds:0.8@100",
                                  "madds:0.8@", "madds:@95", "miou:40@95"])
def test_bad_targets_are_one_clear_error(text):
    with pytest.raises(EdgefuseError, match="not a target"):
        Target.parse(text)


def test_targets_pick_the_cheapest_point_that_clears_the_bar():
    curve = [{"strength": s, "bias": s, "miou": m, "mean_madds": c, "path_ratio": None}
             for s, m, c in [(0.0, 0.50, 10.0), (0.1, 0.49, 9.0), (0.2, 0.47, 8.0), (0.3, 0.40, 7.0)]]
    full = {"miou": 0.495, "mean_madds": 10.0}
    assert choose(curve, Target("match", 0.0, "x"), full, reference_miou=0.48)[0]["strength"] == 0.1
    assert choose(curve, Target("match", 2.0, "x"), full, reference_miou=0.48)[0]["strength"] == 0.0
    point, met, bar = choose(curve, Target("miou", 60.0), full)
    assert not met and point["strength"] == 0.0 and bar == pytest.approx(0.6)     # unreachable: the best mIoU
    assert choose(curve, Target("full", 3.0), full)[0]["strength"] == 0.2
    assert choose(curve, Target("madds", 0.85), full)[0]["strength"] == 0.2
    assert choose(curve, Target("madds", 0.75), full)[0]["strength"] == 0.3
    assert choose(curve, Target("madds", 0.9), full)[:2] == (curve[1], True)


def test_a_cost_bound_held_on_resampled_splits_picks_a_cheaper_point_than_the_mean():
    """madds:F@P: a split of other frames may cost more than the tuning mean; the bound must
    hold on P% of resampled splits. Three paths costing 1 / 2 / 3, the gate's logits favour the
    costlier path on a third of the frames, more so on some."""
    from edgefuse.eval.oracle import PathScores
    from edgefuse.eval.tune import strength_curve

    rng = np.random.default_rng(4)
    frames = 300
    cms = np.zeros((frames, 3, 2, 2), dtype=np.int64)
    cms[:, :, 0, 0] = 50                            # every path right on 50 pixels of class a;
    cms[:, :2, 1, 0] = 10                           # 10 of class b: paths 0-1 wrong,
    cms[:, 2, 1, 1] = 10                            # the costliest path right
    logits = np.stack([np.zeros(frames), np.zeros(frames), rng.normal(0, 1, frames)], axis=1)
    scores = PathScores(cms, logits.argmax(1), None, np.array([1.0, 2.0, 3.0]), ["a", "b"], True, logits)
    plain = strength_curve(scores)
    bounded = strength_curve(scores, confidence=0.95)
    full = {"miou": 1.0, "mean_madds": 3.0}
    for a, b in zip(plain, bounded):
        assert a["mean_madds"] == b["mean_madds"] and "madds_bound" not in a
        assert b["madds_bound"] >= b["mean_madds"] - 1e-12     # the 95th percentile of split means
    mean_pick, met, _ = choose(plain, Target("madds", 0.6), full)
    bound_pick, met_b, _ = choose(bounded, Target("madds", 0.6, confidence=0.95), full)
    assert met and met_b and bound_pick["madds_bound"] <= 1.8 + 1e-9
    assert bound_pick["mean_madds"] < mean_pick["mean_madds"] <= 1.8 + 1e-9   # a margin for other splits
    with pytest.raises(ValueError, match="confidence"):
        choose(plain, Target("madds", 0.6, confidence=0.95), full)   # a curve without bounds


def test_tune_cli_writes_the_same_weights_with_the_chosen_point(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=4, size=(64, 64))
    torch.manual_seed(3)
    src = save_checkpoint(tmp_path / "m.safetensors", build_model("dynmm-tiny", input_size=(64, 64)))
    out, js = tmp_path / "tuned.safetensors", tmp_path / "tune.json"
    assert main(["tune", str(src), "--data", str(root), "--data", str(root), "--target", "madds:0.9",
                 "--out", str(out), "--json", str(js)]) == 0
    tuned, before = load_model(out), load_model(src)
    assert tuned.weights_sha256 == before.weights_sha256 and before.model.operating_point is None
    op = tuned.model.operating_point
    report = json.loads(js.read_text())
    assert op is not None and op.target == "madds:0.9" and report["frames"] == 2 * 4   # both --data pooled
    assert report["mean_madds"] <= 0.9 * report["full_path"]["mean_madds"] * (1 + 1e-9) and report["met"]
    assert "tune" in tuned.meta["tuned"]["command"]
    # eval --oracle of the tuned checkpoint: the gate is the chosen point
    rep = tmp_path / "o.json"
    assert main(["eval", str(out), "--data", str(root), "--oracle", "--json", str(rep)]) == 0
    o = json.loads(rep.read_text())
    assert o["operating_point"]["target"] == "madds:0.9"
    assert o["gate"]["mean_madds"] == pytest.approx(report["mean_madds"] * 1.0, rel=1e-6)
    # match: a static reference on the same frames; a tuned checkpoint can be tuned again
    static = save_checkpoint(tmp_path / "s.safetensors", build_model("esanet-tiny", input_size=(64, 64)))
    assert main(["tune", str(out), "--data", str(root), "--target", f"match:{static}", "--out",
                 str(tmp_path / "t2.safetensors"), "--json", str(js)]) == 0
    assert json.loads(js.read_text())["reference"]["spec"] == str(static)
    # madds:F@P through the CLI: the bound is recorded in the report and the checkpoint
    assert main(["tune", str(src), "--data", str(root), "--target", "madds:0.9@95", "--out",
                 str(tmp_path / "t3.safetensors"), "--json", str(js)]) == 0
    bounded = json.loads(js.read_text())
    assert bounded["target"] == "madds:0.9@95" and bounded["madds_bound"]["confidence"] == 0.95
    assert bounded["mean_madds"] <= bounded["madds_bound"]["madds"] + 1e-6
    if bounded["met"]:
        assert bounded["madds_bound"]["madds"] <= 0.9 * bounded["full_path"]["mean_madds"] * (1 + 1e-9)
    assert load_model(tmp_path / "t3.safetensors").model.operating_point.target == "madds:0.9@95"


def test_tune_cli_usage_errors(tiny_dataset, tmp_path, capsys):
    root = tiny_dataset(frames=2, size=(64, 64))
    src = save_checkpoint(tmp_path / "m.safetensors", build_model("dynmm-tiny", input_size=(64, 64)))
    static = save_checkpoint(tmp_path / "s.safetensors", build_model("esanet-tiny", input_size=(64, 64)))
    out = str(tmp_path / "o.safetensors")
    cases = [
        ([str(src), "--data", str(root), "--target", "fastest", "--out", out], "not a target"),
        ([str(static), "--data", str(root), "--target", "madds:0.8", "--out", out], "static"),
        ([str(src), "--data", str(tmp_path / "nope"), "--target", "madds:0.8", "--out", out], "no such folder"),
        ([str(src), "--data", str(root), "--target", "madds:0.8", "--out", str(tmp_path / "o.pt")], ".safetensors"),
        ([str(src), "--data", str(root), "--target", "match:no-such-model", "--out", out], "no-such-model"),
    ]
    for args, message in cases:
        capsys.readouterr()
        assert main(["tune", *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
    assert main(["tune", str(src), "--data", str(root), "--out", out]) == 2     # --target missing: usage
    assert not (tmp_path / "o.safetensors").exists()


def test_training_from_a_tuned_checkpoint_drops_its_operating_point(tiny_dataset, tmp_path):
    from edgefuse.train.config import ModelSpec
    from edgefuse.train.trainer import build_train_model

    model = build_model("dynmm-tiny", input_size=(64, 64))
    model.set_operating_point(OperatingPoint.from_strength(1.0, np.arange(5.0)))
    path = save_checkpoint(tmp_path / "m.safetensors", model)
    data = SegmentationDataset(tiny_dataset(frames=2, size=(64, 64)), "train")
    assert build_train_model(ModelSpec(checkpoint=str(path)), data).operating_point is None
