"""Metrics on hand-computed confusion matrices."""

import math

import numpy as np
import pytest
import torch

from edgefuse.eval.metrics import ConfusionMatrix, scores_from_confusion


def test_scores_by_hand():
    # rows = ground truth, cols = prediction; class 2 never occurs in the ground truth
    cm = np.array([[3, 1, 0],
                   [2, 4, 1],
                   [0, 0, 0]])
    s = scores_from_confusion(cm)
    iou0 = 3 / (3 + 2 + 1)          # TP 3, FP 2 (from row 1), FN 1
    iou1 = 4 / (4 + 1 + 3)          # TP 4, FP 1, FN 3
    assert s.per_class_iou[0] == pytest.approx(iou0)
    assert s.per_class_iou[1] == pytest.approx(iou1)
    assert s.per_class_iou[2] == pytest.approx(0.0)    # predicted once, never present: IoU 0 ...
    assert s.miou == pytest.approx((iou0 + iou1) / 2)   # ... but not in the mean (absent from GT)
    assert s.pixel_acc == pytest.approx(7 / 11)
    assert s.mean_acc == pytest.approx((3 / 4 + 4 / 7) / 2)


def test_absent_everywhere_is_none_and_empty_is_nan():
    s = scores_from_confusion(np.array([[5, 0], [0, 0]]))
    assert s.per_class_iou == (1.0, None) and s.miou == 1.0
    assert math.isnan(scores_from_confusion(np.zeros((2, 2))).miou)


def test_update_ignores_void_and_counts_by_row_and_column():
    cm = ConfusionMatrix(3)
    target = torch.tensor([[0, 1, -1], [2, 2, 1]])
    pred = torch.tensor([[0, 2, 1], [2, 0, 1]])
    cm.update(pred, target)
    expected = np.zeros((3, 3), np.int64)
    for t, p in [(0, 0), (1, 2), (2, 2), (2, 0), (1, 1)]:
        expected[t, p] += 1
    np.testing.assert_array_equal(cm.counts, expected)
    with pytest.raises(ValueError, match="outside"):
        cm.update(torch.tensor([0]), torch.tensor([3]))
