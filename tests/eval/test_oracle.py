"""`edgefuse eval --path / --oracle / --report`: every path on every frame, the per-frame
oracle and its curve, on hand-built cases whose answers are known."""

import json

import numpy as np
import pytest
import torch

from edgefuse.checkpoint import save_checkpoint
from edgefuse.cli.main import main
from edgefuse.data.dataset import SegmentationDataset
from edgefuse.eval.evaluate import evaluate
from edgefuse.eval.metrics import scores_from_confusion
from edgefuse.eval.oracle import (PathScores, agreement, biased_choice, oracle_choice, oracle_miou_at,
                                  oracle_report, policy_report, score_paths)
from edgefuse.eval.oracle_report import markdown, write_report
from edgefuse.models.base import SegModel
from edgefuse.models.paths import PathSet
from edgefuse.models.registry import build_model

WALL, FLOOR, CHAIR, TABLE = 11, 4, 3, 9      # class indices (label - 1) in the tiny dataset


class ColourRules(SegModel):
    """A dynamic 'model' whose three paths are colour/depth rules on the tiny dataset
    (tests/conftest.py: wall, floor and one square that is a chair or a table; on hard frames
    the square is grey and only its depth tells which):
      path 0: everything is wall;
      path 1: colour only (red or grey square -> chair, blue -> table);
      path 2: colour and depth (near square -> chair, far -> table): always right.
    Its gate always says path 2 unless `gate_path` says otherwise."""

    feature_names = ("rgb", "depth")

    def __init__(self, gate_path: int = 2) -> None:
        super().__init__()
        self.paths = PathSet(((False, False), (True, False), (True, True)))
        self.gate_path = gate_path

    def stem(self, rgb, depth):
        return {"rgb": rgb, "depth": depth}

    def gate(self, feats):
        logits = torch.zeros(feats["rgb"].shape[0], 3)
        logits[:, self.gate_path] = 1.0
        return logits

    def run_path(self, k, feats):
        rgb, depth = feats["rgb"], feats["depth"][:, 0]
        r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
        cls = torch.full_like(r, WALL, dtype=torch.long)
        if k > 0:
            cls[(r < 130) & (r > 60) & (g < 90)] = FLOOR
            square = ((r - g).abs() < 30) & ((r - b).abs() < 30) & (r < 150)      # grey
            cls[square | ((r > 150) & (g < 100))] = CHAIR
            cls[(b > 150) & (r < 100)] = TABLE
            if k == 2:
                sq = (cls == CHAIR) | (cls == TABLE)
                cls[sq & (depth > 0) & (depth < 1500)] = CHAIR
                cls[sq & (depth > 2200) & (depth < 2800)] = TABLE
        return torch.nn.functional.one_hot(cls, 13).permute(0, 3, 1, 2).float()


@pytest.fixture
def tiny(tiny_dataset):
    return SegmentationDataset(tiny_dataset(frames=8, size=(64, 64)), "test")


def _square_class(item) -> int:
    lab = item["label"].numpy() - 1
    return CHAIR if (lab == CHAIR).any() else TABLE


def test_the_oracle_picks_the_cheapest_path_that_is_right(tiny):
    scores = score_paths(ColourRules(), tiny, batch_size=3, path_madds=[1.0, 2.0, 3.0])
    acc = scores.pixel_acc()
    # colour + depth is right but for depth holes and noise; never worse than colour alone
    assert (acc[:, 2] > 0.97).all() and (acc[:, 2] >= acc[:, 1]).all() and (acc[:, 1] > acc[:, 0]).all()
    # Known answer: path 1 is right on easy frames and on hard frames whose grey square is a
    # chair; a grey table needs depth (path 2). With a huge tolerance: always path 0.
    want = [1 if (not item["hard"] or _square_class(item) == CHAIR) else 2 for item in tiny]
    assert 2 in want and 1 in want
    assert oracle_choice(scores, 0.0).tolist() == want
    assert oracle_choice(scores, 100.0).tolist() == [0] * len(tiny)
    assert scores.hard.tolist() == [bool(item["hard"]) for item in tiny]
    report = oracle_report(scores, tolerance=0.0)
    assert report["oracle"]["pixel_acc"] == pytest.approx(report["forced"][2]["pixel_acc"])
    assert report["forced"][1]["pixel_acc"] < report["forced"][2]["pixel_acc"]
    assert report["oracle"]["mean_madds"] == pytest.approx(np.mean([[1.0, 2.0, 3.0][k] for k in want]))
    assert report["forced"][0]["mean_madds"] == 1.0 and report["forced"][0]["path_ratio"] == [1.0, 0.0, 0.0]
    # the gate (always path 2) is right on every frame, but costlier than the oracle where path 1 would do
    a = report["agreement"]["all"]
    assert a["within_tolerance"] == 1.0 and a["exact"] == pytest.approx(want.count(2) / len(want))
    assert a["costlier"] == pytest.approx(want.count(1) / len(want)) and a["cheaper"] == 0.0
    assert report["agreement"]["easy"]["exact"] == 0.0     # every easy frame: path 1 suffices
    assert report["choices"]["counts"][1][2] == want.count(1)
    # at the gate's cost (3.0) the best oracle point is as good: (about) no distance
    assert -1e-9 <= report["distance"]["gap"] < 0.005


def test_a_gate_on_the_wrong_path_is_below_the_curve(tiny):
    scores = score_paths(ColourRules(gate_path=0), tiny, batch_size=8, path_madds=[1.0, 2.0, 3.0])
    report = oracle_report(scores, tolerance=2.0)
    gate, forced0 = report["gate"], report["forced"][0]
    assert gate == forced0                                  # the gate is path 0 on every frame
    assert report["agreement"]["all"]["cheaper"] == 1.0
    # the oracle curve reaches path 0's cost only with path 0 itself: zero distance there...
    assert report["distance"]["oracle_miou_at_gate_cost"] == pytest.approx(forced0["miou"])
    # ...and a costlier point of the curve is better: the curve is not flat
    assert max(p["miou"] for p in report["curve"]) > forced0["miou"] + 0.3


def test_gate_curve_biases_the_gate_towards_cheaper_paths(tiny, tmp_path):
    scores = score_paths(ColourRules(gate_path=2), tiny, batch_size=8, path_madds=[1.0, 2.0, 3.0])
    assert (biased_choice(scores, 0.0) == scores.gate).all() and set(scores.gate.tolist()) == {2}
    assert set(biased_choice(scores, 2.0).tolist()) == {0}          # a strong bias: the cheapest path
    curve = oracle_report(scores)["gate_curve"]
    assert curve[0]["mean_madds"] == 3.0 and curve[-1]["mean_madds"] == 1.0
    scores.save(tmp_path / "s.npz")
    again = PathScores.load(tmp_path / "s.npz")
    assert oracle_report(again) == oracle_report(scores)


def test_policies_sum_the_chosen_paths_confusion_matrices():
    """Hand-built scores: 2 frames, 2 paths, 2 classes."""
    cms = np.zeros((2, 2, 2, 2), dtype=np.int64)
    cms[0, 0] = [[8, 2], [0, 0]]      # frame 0, path 0: acc 0.8
    cms[0, 1] = [[9, 1], [0, 0]]      # frame 0, path 1: acc 0.9
    cms[1, 0] = [[5, 0], [0, 5]]      # frame 1, path 0: acc 1.0
    cms[1, 1] = [[5, 0], [1, 4]]      # frame 1, path 1: acc 0.9
    scores = PathScores(cms, np.array([1, 1]), np.array([False, True]), np.array([10.0, 20.0]), ["a", "b"])
    assert oracle_choice(scores, 0).tolist() == [1, 0]
    assert oracle_choice(scores, 10).tolist() == [0, 0]      # 0.8 is within 10 points of 0.9
    rep = policy_report(scores, np.array([1, 0]))
    want = scores_from_confusion(cms[0, 1] + cms[1, 0])
    assert rep["miou"] == pytest.approx(want.miou) and rep["pixel_acc"] == pytest.approx(want.pixel_acc)
    assert rep["mean_madds"] == 15.0 and rep["path_ratio"] == [0.5, 0.5]
    assert rep["subsets"]["easy"]["mean_madds"] == 20.0 and rep["subsets"]["hard"]["path_ratio"] == [1.0, 0.0]
    a = agreement(scores, oracle_choice(scores, 0), 0.0)
    assert a["all"]["exact"] == 0.5 and a["hard"]["exact"] == 0.0 and a["easy"]["exact"] == 1.0
    assert a["hard"]["gate_points_below_best"] == pytest.approx(10.0)
    curve = [{"mean_madds": 10.0, "miou": 0.5}, {"mean_madds": 15.0, "miou": 0.9}, {"mean_madds": 20.0, "miou": 0.8}]
    assert oracle_miou_at(curve, 12.0) == 0.5 and oracle_miou_at(curve, 20.0) == 0.9
    assert oracle_miou_at(curve, 5.0) is None


def test_forced_and_gate_points_are_what_eval_reports(tiny_dataset):
    """The oracle's forced-path and gate points are `evaluate`'s (path=k, and the gate as
    deployed) on the same frames, for a real fusion-level DynMM."""
    data = SegmentationDataset(tiny_dataset(frames=4, size=(64, 64)), "test")
    model = build_model("dynmm-tiny", input_size=(64, 64))
    costs = [1.0, 2.0, 3.0, 4.0, 5.0]
    scores = score_paths(model, data, batch_size=1, path_madds=costs)
    for k in (0, 3):
        want = evaluate(model, data, batch_size=1, path_madds=costs, path=k)
        assert policy_report(scores, np.full(4, k)) == want
    assert policy_report(scores, scores.gate) == evaluate(model, data, batch_size=1, path_madds=costs)


def test_cli_path_oracle_and_report(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=4, size=(64, 64))
    model = build_model("dynmm-tiny", input_size=(64, 64))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model)
    out = tmp_path / "p2.json"
    assert main(["eval", str(ckpt), "--data", str(root), "--path", "2", "--json", str(out)]) == 0
    forced = json.loads(out.read_text())
    assert forced["path_ratio"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    rep_dir = tmp_path / "report"
    assert main(["eval", str(ckpt), "--data", str(root), "--report", str(rep_dir), "--tolerance", "5"]) == 0
    assert {p.name for p in rep_dir.iterdir()} == {"oracle.json", "oracle.md", "oracle.png"}
    assert (rep_dir / "oracle.png").read_bytes()[:4] == b"\x89PNG"
    report = json.loads((rep_dir / "oracle.json").read_text())
    assert report["tolerance"] == 5.0 and report["unit"] == "path" and len(report["forced"]) == 5
    assert report["forced"][2]["miou"] == pytest.approx(forced["miou"])
    md = (rep_dir / "oracle.md").read_text()
    assert "forced path 4" in md and "the gate" in md and "oracle.png" in md
    # user errors: a path the model lacks, --path with --oracle, an oracle of a static model
    assert main(["eval", str(ckpt), "--data", str(root), "--path", "5"]) == 2
    assert main(["eval", str(ckpt), "--data", str(root), "--path", "1", "--oracle"]) == 2
    assert main(["eval", str(ckpt), "--data", str(root), "--oracle", "--tolerance", "-1"]) == 2
    static = save_checkpoint(tmp_path / "s.safetensors", build_model("esanet-tiny", input_size=(64, 64)))
    assert main(["eval", str(static), "--data", str(root), "--oracle"]) == 2
    assert main(["eval", str(static), "--data", str(root), "--path", "0"]) == 0


def test_modality_level_oracle_compares_experts(tiny_dataset, tmp_path):
    root = tiny_dataset(frames=2, size=(64, 64))
    model = build_model("dynmm-modality-tiny", input_size=(64, 64))
    ckpt = save_checkpoint(tmp_path / "mod.safetensors", model)
    out = tmp_path / "o.json"
    assert main(["eval", str(ckpt), "--data", str(root), "--oracle", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["unit"] == "expert" and len(report["forced"]) == 2 and len(report["choices"]["counts"]) == 2
    assert "forced expert 1" in markdown(report)
    write_report(report, tmp_path / "r")
