"""Transforms: invalid depth stays exactly 0, depth and labels are nearest-neighbour, the
Generator is the only source of randomness."""

import numpy as np
import pytest

from edgefuse.data.transforms import EvalTransform, TrainTransform, TransformConfig, resize_nearest
from edgefuse.errors import ConfigError


def _sample(h=30, w=40, seed=0):
    rng = np.random.default_rng(seed)
    depth = rng.integers(500, 5000, size=(h, w)).astype(np.float32)
    depth[rng.random((h, w)) < 0.3] = 0.0  # holes
    label = rng.integers(0, 14, size=(h, w)).astype(np.int64)
    rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
    return {"rgb": rgb, "depth": depth, "label": label}


@pytest.mark.parametrize("seed", range(5))
def test_train_transform_keeps_depth_and_label_values(seed):
    s = _sample(seed=seed)
    t = TrainTransform(TransformConfig(size=(24, 32)))
    out = t(s, np.random.default_rng(seed))
    assert out["rgb"].shape == (24, 32, 3) and out["rgb"].dtype == np.uint8
    assert out["depth"].shape == (24, 32) and out["label"].shape == (24, 32)
    # nearest neighbour: no value is invented (no blending of a hole with its neighbours)
    assert set(np.unique(out["depth"])) <= set(np.unique(s["depth"]))
    assert set(np.unique(out["label"])) <= set(np.unique(s["label"]))
    assert (out["depth"] == 0).mean() == pytest.approx((s["depth"] == 0).mean(), abs=0.12)


def test_holes_and_labels_move_together():
    """Depth and labels go through the same geometry: a hole pixel stays aligned with its label."""
    s = _sample()
    s["label"] = np.where(s["depth"] == 0, 0, 1 + (s["depth"].astype(np.int64) % 13))
    out = TrainTransform(TransformConfig(size=(30, 40), scale=(1.2, 1.4)))(s, np.random.default_rng(1))
    np.testing.assert_array_equal(out["label"] == 0, out["depth"] == 0)
    np.testing.assert_array_equal(out["label"][out["depth"] > 0], 1 + (out["depth"][out["depth"] > 0].astype(np.int64) % 13))


def test_deterministic_given_the_generator():
    s = _sample()
    t = TrainTransform({"size": [24, 32]})
    a, b = t(s, np.random.default_rng(7)), t(s, np.random.default_rng(7))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    c = t(s, np.random.default_rng(8))
    assert any((a[k] != c[k]).any() for k in a)


def test_torch_generator_is_accepted():
    import torch
    s = _sample()
    t = TrainTransform({"size": [24, 32]})
    a = t(s, torch.Generator().manual_seed(5))
    b = t(s, torch.Generator().manual_seed(5))
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])


def test_hsv_jitter_touches_rgb_only():
    s = _sample()
    cfg = TransformConfig(size=(30, 40), scale=(1.0, 1.0), flip=False, hue_deg=30.0, value=40.0)
    out = TrainTransform(cfg)(s, np.random.default_rng(3))
    np.testing.assert_array_equal(out["depth"], s["depth"])
    np.testing.assert_array_equal(out["label"], s["label"])
    assert (out["rgb"] != s["rgb"]).mean() > 0.5


def test_eval_transform_and_resize_nearest():
    s = _sample(h=12, w=16)
    out = EvalTransform((24, 32))(s)
    np.testing.assert_array_equal(out["label"], np.repeat(np.repeat(s["label"], 2, 0), 2, 1))
    np.testing.assert_array_equal(resize_nearest(out["depth"], (12, 16)), s["depth"])


def test_config_rejects_unknown_keys_and_bad_ranges():
    with pytest.raises(ConfigError, match="valid keys"):
        TrainTransform({"sizee": [1, 2]})
    with pytest.raises(ConfigError):
        TransformConfig(scale=(0.5, 1.0))
