"""Test-wide settings: deterministic seeds, few threads (CI has 2 cores)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(2)


@pytest.fixture(autouse=True, scope="session")
def _frame_cache(tmp_path_factory):
    """Rendered synthetic frames go to a folder of this session, never to ~/.cache."""
    from edgefuse.data.synth.cache import CACHE_ENV

    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("frame-cache"))
    yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def write_tiny_seg_dataset(root, frames: int = 8, size: tuple[int, int] = (64, 64), seed: int = 0,
                           splits: tuple[str, ...] = ("train", "test")):
    """A tiny dataset in the shared layout (dataset.json, rgb/depth/labels_13 PNGs, meta.jsonl),
    written with numpy: no renderer needed. Frames alternate easy/hard; on hard frames a square
    is a chair (4) or a table (10) with the same colour, told apart only by its depth."""
    import json
    from pathlib import Path

    import numpy as np

    from edgefuse.data import layout
    from edgefuse.models.registry import NYU13

    root = Path(root)
    rng = np.random.default_rng(seed)
    h, w = size
    for split in splits:
        stems, meta = [], []
        for i in range(frames):
            stem = f"{i:04d}"
            hard = bool(i % 2)
            label = np.full((h, w), 12, np.uint8)                 # wall
            label[h * 3 // 4:] = 5                                # floor
            label[:2] = 0                                         # void rows
            near = bool(rng.integers(0, 2))
            cls = 4 if near else 10
            y, x = rng.integers(4, h // 2), rng.integers(0, w // 2)
            label[y:y + h // 4, x:x + w // 4] = cls
            rgb = np.zeros((h, w, 3), np.uint8)
            rgb[label == 12] = (200, 180, 160)
            rgb[label == 5] = (90, 60, 40)
            rgb[label == cls] = (120, 120, 120) if hard else ((200, 40, 40) if near else (40, 40, 200))
            rgb = np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)
            depth = np.full((h, w), 3000, np.uint16)
            depth[label == 5] = 2000
            depth[label == cls] = 1000 if near else 2500
            depth[rng.random((h, w)) < 0.02] = 0                   # holes
            layout.write_png(root / split / layout.RGB_DIR / f"{stem}.png", rgb)
            layout.write_png(root / split / layout.DEPTH_DIR / f"{stem}.png", depth)
            layout.write_png(root / split / "labels_13" / f"{stem}.png", label)
            stems.append(stem)
            meta.append({"stem": stem, "intrinsics": {"fx": 50.0, "fy": 50.0, "cx": w / 2, "cy": h / 2,
                                                      "width": w, "height": h},
                         "lighting": 1.0, "hard": hard, "hard_factors": ["same_texture"] if hard else []})
        layout.write_split(root, split, stems)
        (root / split / layout.META_FILE).write_text("".join(json.dumps(m) + "\n" for m in meta))
    layout.write_info(root, {"name": "tiny", "num_classes": 13, "classes": list(NYU13), "label_dir": "labels_13",
                             "depth_unit": "mm", "depth_mean": 2500.0, "depth_std": 800.0,
                             "palette": [[i * 18, 255 - i * 18, 128] for i in range(13)]})
    return root


@pytest.fixture
def tiny_dataset(tmp_path_factory):
    """Factory: tiny_dataset(frames=8, size=(64, 64)) -> folder of a tiny dataset."""
    def make(frames: int = 8, size: tuple[int, int] = (64, 64), seed: int = 0):
        return write_tiny_seg_dataset(tmp_path_factory.mktemp("tinyds"), frames, size, seed)
    return make
