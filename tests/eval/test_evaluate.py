"""`edgefuse eval`: the JSON contract, subsets, and path statistics of dynamic models."""

import json

import pytest
import torch

from edgefuse.checkpoint import save_checkpoint
from edgefuse.cli.main import main
from edgefuse.data.dataset import SegmentationDataset
from edgefuse.eval.evaluate import evaluate
from edgefuse.models.costs import measure_costs
from edgefuse.models.registry import build_model

KEYS = {"miou", "pixel_acc", "mean_acc", "per_class_iou", "path_ratio", "mean_madds", "frames", "subsets"}
SUBSET_KEYS = {"miou", "path_ratio", "mean_madds", "frames"}


@pytest.mark.parametrize("name", ["dynmm-tiny", "esanet-tiny"])
def test_cli_eval_json_contract(tiny_dataset, tmp_path, name):
    root = tiny_dataset(frames=6, size=(64, 64))
    model = build_model(name, input_size=(64, 64))
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model)
    out = tmp_path / "report.json"
    assert main(["eval", str(ckpt), "--data", str(root), "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert set(report) == KEYS
    assert report["frames"] == 6
    assert set(report["per_class_iou"]) == set(SegmentationDataset(root, "test").classes)
    assert set(report["subsets"]) == {"easy", "hard"}
    assert all(set(s) == SUBSET_KEYS for s in report["subsets"].values())
    assert sum(s["frames"] for s in report["subsets"].values()) == 6
    costs = measure_costs(model).madds()
    if model.is_dynamic:
        assert len(report["path_ratio"]) == model.num_paths
        assert sum(report["path_ratio"]) == pytest.approx(1.0)
        expected = sum(r * c for r, c in zip(report["path_ratio"], costs))
        assert report["mean_madds"] == pytest.approx(expected, rel=1e-6)
    else:
        assert report["path_ratio"] is None and report["mean_madds"] == pytest.approx(costs[0])


def test_path_statistics_follow_the_gate(tiny_dataset):
    """Force the gate to path 2 on every frame: ratio one-hot, mean MAdds = path 2's cost."""
    root = tiny_dataset(frames=4, size=(64, 64))
    model = build_model("dynmm-tiny", input_size=(64, 64))
    with torch.no_grad():
        model.gate_net.head.bias.zero_()
        model.gate_net.head.bias[2] = 100.0
        model.gate_net.head.weight.zero_()
    costs = [1.0, 2.0, 30.0, 4.0, 5.0]
    report = evaluate(model, SegmentationDataset(root, "test"), path_madds=costs)
    assert report["path_ratio"] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert report["mean_madds"] == 30.0
    assert report["subsets"]["hard"]["path_ratio"] == [0.0, 0.0, 1.0, 0.0, 0.0]


def test_perfect_predictions_score_one(tiny_dataset):
    """A 'model' that returns the labels as logits scores mIoU 1 (the void pixels are ignored)."""
    root = tiny_dataset(frames=4, size=(64, 64))
    data = SegmentationDataset(root, "test")
    model = build_model("rgb-tiny", input_size=(64, 64))
    labels = {}

    def infer(rgb, depth, path=None):
        target = torch.stack([labels[float(x.sum())] for x in rgb]) - 1
        return torch.nn.functional.one_hot(target.clamp_min(0), 13).permute(0, 3, 1, 2).float(), \
            torch.zeros(rgb.shape[0], dtype=torch.long)

    for i in range(len(data)):
        labels[float(data[i]["rgb"].sum())] = data[i]["label"]
    model.infer = infer
    report = evaluate(model, data, path_madds=[1.0])
    assert report["miou"] == 1.0 and report["pixel_acc"] == 1.0 and report["mean_acc"] == 1.0
    present = {c for c, v in report["per_class_iou"].items() if v is not None}
    assert "wall" in present and present <= {"chair", "floor", "table", "wall"}


def test_mixed_frame_sizes_run_at_input_size_and_score_at_label_size():
    """SUN RGB-D frames come in several sizes: with input_size the model sees every frame at
    that size (depth resized nearest: holes stay 0) and its logits are upsampled back to each
    label's own size, so a prediction that is right at the model's size scores 1."""
    model = build_model("rgb-tiny", input_size=(64, 64))
    frames = []
    for i, (h, w) in enumerate([(48, 64), (96, 128), (64, 96)]):
        label = torch.full((h, w), 1 + i, dtype=torch.long)
        label[: h // 2] = 5                                  # top half another class
        depth = torch.full((1, h, w), 1000.0)
        depth[..., ::2] = 0.0                                # every other column missing
        frames.append({"rgb": torch.full((3, h, w), float(i)), "depth": depth, "label": label, "hard": False})
    seen = []

    def infer(rgb, depth, path=None):
        seen.append((tuple(rgb.shape), float(depth.min()), float(depth.max())))
        cls = rgb[:, 0, 0, 0].long()                         # frame i -> class i (label 1 + i)
        logits = torch.zeros(rgb.shape[0], 13, *rgb.shape[-2:])
        logits[torch.arange(rgb.shape[0]), cls] = 1.0
        logits[:, 4, : rgb.shape[-2] // 2] = 2.0             # top half: label 5 -> index 4
        return logits, torch.zeros(rgb.shape[0], dtype=torch.long)

    model.infer = infer
    report = evaluate(model, frames, batch_size=2, path_madds=[1.0], input_size=(64, 64))
    assert report["frames"] == 3 and report["miou"] == 1.0
    assert all(shape[-2:] == (64, 64) for shape, _, _ in seen)
    assert {(lo, hi) for _, lo, hi in seen} == {(0.0, 1000.0)}  # nearest: no blended depth
    assert sum(shape[0] for shape, _, _ in seen) == 3 and seen[0][0][0] == 2  # batched after resizing
    # without input_size, frames of different sizes still run (one forward per size)
    seen.clear()
    assert evaluate(model, frames, batch_size=3, path_madds=[1.0])["miou"] == 1.0
    assert sorted(shape[-2:] for shape, _, _ in seen) == [(48, 64), (64, 96), (96, 128)]
