"""Evaluate a segmentation model on a dataset split: the `edgefuse eval` report.

Dynamic models run as deployed: `model.infer` picks each frame's path with the gate's
argmax and runs only that path; the path each frame took, and that path's *measured*
MAdds (models/costs.py), give the path selection ratio and the mean MAdds per frame.
Frames flagged `hard` in meta.jsonl (the synthetic benchmark) are also scored as the
subsets `easy` and `hard`.

With `path`, every frame is forced through that path instead (a dynamic model's path k as
a static network; same report). edgefuse/eval/oracle.py runs every path on every frame.

JSON contract (other tools read it):
{"miou", "pixel_acc", "mean_acc", "per_class_iou": {name: value}, "path_ratio": [..] or null,
 "mean_madds", "frames", "subsets": {name: {"miou", "path_ratio", "mean_madds", "frames"}}}
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from edgefuse.eval.metrics import ConfusionMatrix
from edgefuse.models.base import SegModel

ProgressFn = Callable[[int, int], None]


class _Tally:
    """Confusion matrix and path counts of one group of frames."""

    def __init__(self, num_classes: int, num_paths: int) -> None:
        self.cm = ConfusionMatrix(num_classes)
        self.paths = np.zeros(num_paths, dtype=np.int64)

    @property
    def frames(self) -> int:
        return int(self.paths.sum())

    def path_ratio(self, dynamic: bool) -> list[float] | None:
        if not dynamic or not self.frames:
            return None
        return [float(c) / self.frames for c in self.paths]

    def mean_madds(self, costs: Sequence[float]) -> float | None:
        if not self.frames:
            return None
        return float(np.dot(self.paths, np.asarray(costs, dtype=np.float64)) / self.frames)


def build_report(total: _Tally, subsets: dict[str, _Tally], names: Sequence[str], costs: Sequence[float],
                 dynamic: bool) -> dict[str, Any]:
    """The JSON-contract report of a group of frames and its subsets."""
    scores = total.cm.scores()
    return {
        "miou": _num(scores.miou),
        "pixel_acc": _num(scores.pixel_acc),
        "mean_acc": _num(scores.mean_acc),
        "per_class_iou": {n: v for n, v in zip(names, scores.per_class_iou)},
        "path_ratio": total.path_ratio(dynamic),
        "mean_madds": total.mean_madds(costs),
        "frames": total.frames,
        "subsets": {name: {"miou": _num(t.cm.scores().miou), "path_ratio": t.path_ratio(dynamic),
                           "mean_madds": t.mean_madds(costs), "frames": t.frames}
                    for name, t in subsets.items() if t.frames},
    }


def class_names_for(model: SegModel, dataset, class_names: Sequence[str] | None = None) -> list[str]:
    num_classes = int(model.config.num_classes) if hasattr(model, "config") else dataset.num_classes
    names = list(class_names or getattr(dataset, "classes", None) or getattr(model.config, "class_names", ())
                 or [str(i) for i in range(num_classes)])
    if len(names) != num_classes:
        raise ValueError(f"{len(names)} class names for a model with {num_classes} classes")
    return names


def has_hard_flags(dataset) -> bool:
    """Frames flagged `hard` in meta.jsonl (the synthetic benchmark): score easy/hard subsets."""
    return bool(getattr(dataset, "meta", None)) and any("hard" in m for m in dataset.meta.values())


def prediction(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Class map of one frame's logits (1 x C x h x w), upsampled bilinearly to the label's size
    when they differ (labels are scored at their stored resolution)."""
    if logits.shape[-2:] != target.shape[-2:]:
        logits = F.interpolate(logits, size=tuple(target.shape[-2:]), mode="bilinear", align_corners=False)
    return logits[0].argmax(dim=0)


def check_path(model: SegModel, path: int | None) -> None:
    from edgefuse.errors import EdgefuseError

    if path is not None and not 0 <= path < model.num_paths:
        what = "paths" if model.is_dynamic else "path (a static model)"
        raise EdgefuseError(f"--path {path}: the model has {model.num_paths} {what}, 0..{model.num_paths - 1}")


def _num(x: float) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


@torch.no_grad()
def _model_batches(samples: list[dict[str, Any]], size: tuple[int, int] | None):
    """Yield (indices, rgb, depth) batches of `samples` for one forward each.

    With `size`, every frame is resized to it (RGB bilinear; depth nearest, so a missing
    measurement stays 0 and no depth is invented across edges) and the batch is stacked;
    without, frames run at their own size, stacked where all sizes agree."""
    def prep(s: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        rgb, depth = s["rgb"][None], s["depth"][None]
        if size is not None and tuple(rgb.shape[-2:]) != tuple(size):
            rgb = F.interpolate(rgb, size=size, mode="bilinear", align_corners=False)
            depth = F.interpolate(depth, size=size, mode="nearest")
        return rgb, depth

    prepared = [prep(s) for s in samples]
    shapes = {tuple(r.shape[-2:]) for r, _ in prepared}
    groups = [list(range(len(samples)))] if len(shapes) == 1 else [[i] for i in range(len(samples))]
    for idx in groups:
        yield idx, torch.cat([prepared[i][0] for i in idx]), torch.cat([prepared[i][1] for i in idx])


def frame_batches(dataset, batch_size: int, input_size: tuple[int, int] | None,
                  progress: ProgressFn | None = None):
    """Yield (samples, indices, rgb, depth) per forward over `dataset` in order, `batch_size`
    frames per loader batch (see _model_batches); `progress(done, total)` after each batch."""
    # A list collate: frames (and labels) of different sizes cannot be stacked by default.
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0,
                                         collate_fn=list)
    done = 0
    for samples in loader:
        for idx, rgb, depth in _model_batches(samples, input_size):
            yield samples, idx, rgb, depth
        done += len(samples)
        if progress:
            progress(done, len(dataset))


@torch.no_grad()
def evaluate(model: SegModel, dataset, batch_size: int = 4, path_madds: Sequence[float] | None = None,
             class_names: Sequence[str] | None = None, progress: ProgressFn | None = None,
             device: torch.device | str = "cpu", input_size: tuple[int, int] | None = None,
             path: int | None = None) -> dict[str, Any]:
    """Score `model` on `dataset` (a SegmentationDataset or any dataset of its items) and return
    the JSON-contract report. `path_madds` defaults to the model's measured costs at its input
    size. `path` forces every frame through that path (default: the gate's choice).

    Labels are always scored at their stored resolution (ESANet's protocol): with
    `input_size` the model sees frames resized to it and its logits are upsampled
    (bilinear) back to each label's size, so frames of mixed sizes (SUN RGB-D) work."""
    from edgefuse.models.costs import measure_costs

    check_path(model, path)
    was_training = model.training
    model.eval()
    names = class_names_for(model, dataset, class_names)
    num_classes = len(names)
    costs = list(path_madds) if path_madds is not None else measure_costs(model).madds()
    dynamic = model.is_dynamic
    total = _Tally(num_classes, model.num_paths)
    subsets: dict[str, _Tally] = {}
    if has_hard_flags(dataset):
        subsets = {"easy": _Tally(num_classes, model.num_paths), "hard": _Tally(num_classes, model.num_paths)}
    try:
        for samples, idx, rgb, depth in frame_batches(dataset, batch_size, input_size, progress):
            logits, index = model.infer(rgb.to(device), depth.to(device), path)
            for j, i in enumerate(idx):
                target = samples[i]["label"].to(device) - 1        # 0 void -> -1 ignored
                pred = prediction(logits[j:j + 1], target)
                groups = [total]
                if subsets:
                    groups.append(subsets["hard" if bool(samples[i]["hard"]) else "easy"])
                for g in groups:
                    g.cm.update(pred, target)
                    g.paths[int(index[j])] += 1
    finally:
        model.train(was_training)
    return build_report(total, subsets, names, costs, dynamic)


def load_for_eval(spec: str, data_dir: str, split: str = "test",
                  input_size: tuple[int, int] | None = None) -> tuple[SegModel, Any, list[float]]:
    """The model `spec` (checkpoint path, shipped weights name), the dataset DIR/split and the
    model's path costs measured at the size it will see: `input_size` (frames resized, labels
    scored at their own size) or, by default, the frames' own size."""
    from edgefuse.checkpoint import load_model
    from edgefuse.data.dataset import SegmentationDataset
    from edgefuse.errors import EdgefuseError

    loaded = load_model(spec)
    dataset = SegmentationDataset(data_dir, split)
    if dataset.num_classes != loaded.config.num_classes:
        raise EdgefuseError(f"{spec} predicts {loaded.config.num_classes} classes but {data_dir} has "
                            f"{dataset.num_classes}; evaluate on a dataset with the model's classes")
    if input_size is not None:
        h, w = input_size
    else:
        h, w = dataset[0]["label"].shape if len(dataset) else loaded.config.input_size
    model = loaded.model
    if (h, w) != tuple(loaded.config.input_size):
        # The model runs at any size its context bins allow; costs are measured at the data's.
        from edgefuse.models.context import check_bins

        check_bins(loaded.config.context_bins, h, w)
    from edgefuse.models.costs import measure_costs

    return model, dataset, measure_costs(model, (h, w)).madds()


def evaluate_checkpoint(spec: str, data_dir: str, split: str = "test", batch_size: int = 4,
                        progress: ProgressFn | None = None, input_size: tuple[int, int] | None = None,
                        path: int | None = None) -> dict[str, Any]:
    """Load `spec` (checkpoint path, shipped weights name) and evaluate it on DIR/split (see
    load_for_eval for `input_size`); `path` forces every frame through that path."""
    model, dataset, costs = load_for_eval(spec, data_dir, split, input_size)
    check_path(model, path)
    return evaluate(model, dataset, batch_size, costs, progress=progress, input_size=input_size, path=path)
