"""Segmentation metrics from a confusion matrix (ESANet / DynMM protocol, docs/models-and-training.md "Metric").

Only non-void pixels count (label 0 = void; class index c = label c + 1). IoU = TP / (TP +
FP + FN) per class; the mean runs over the classes present in the ground truth, so a class
that never occurs in the evaluated frames neither helps nor hurts.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


class ConfusionMatrix:
    """C x C counts, rows = ground truth class, columns = prediction."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = int(num_classes)
        self.counts = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred: torch.Tensor | np.ndarray, target: torch.Tensor | np.ndarray,
               ignore_index: int = -1) -> None:
        """Add a batch: `pred` and `target` hold class indices 0..C-1; `target` == ignore_index
        (void) is skipped."""
        p = torch.as_tensor(pred).reshape(-1).long()
        t = torch.as_tensor(target).reshape(-1).long()
        keep = t != ignore_index
        p, t = p[keep], t[keep]
        if t.numel() and (int(t.max()) >= self.num_classes or int(t.min()) < 0):
            raise ValueError(f"target holds class {int(t.max())}, outside 0..{self.num_classes - 1}")
        idx = t * self.num_classes + p.clamp(0, self.num_classes - 1)
        self.counts += torch.bincount(idx, minlength=self.num_classes ** 2).view(
            self.num_classes, self.num_classes).cpu().numpy()

    def merge(self, other: ConfusionMatrix) -> None:
        self.counts += other.counts

    def scores(self) -> SegScores:
        return scores_from_confusion(self.counts)


@dataclass(frozen=True)
class SegScores:
    miou: float
    pixel_acc: float
    mean_acc: float
    per_class_iou: tuple[float | None, ...]   # None: class absent from ground truth and predictions


def scores_from_confusion(cm: np.ndarray) -> SegScores:
    """mIoU, pixel accuracy, mean (class) accuracy and per-class IoU of a confusion matrix.
    Means are over classes present in the ground truth; an empty matrix scores NaN."""
    cm = np.asarray(cm, dtype=np.float64)
    tp = np.diag(cm)
    gt = cm.sum(axis=1)
    pred = cm.sum(axis=0)
    union = gt + pred - tp
    present = gt > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(union > 0, tp / union, np.nan)
        acc = np.where(gt > 0, tp / gt, np.nan)
    total = cm.sum()
    miou = float(np.mean(iou[present])) if present.any() else float("nan")
    mean_acc = float(np.mean(acc[present])) if present.any() else float("nan")
    pixel_acc = float(tp.sum() / total) if total > 0 else float("nan")
    per_class = tuple(None if np.isnan(v) else float(v) for v in iou)
    return SegScores(miou, pixel_acc, mean_acc, per_class)
