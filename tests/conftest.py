"""Test-wide settings: deterministic seeds, few threads (CI has 2 cores)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "2")

import pytest  # noqa: E402
import torch  # noqa: E402

# A skip not on tests/skip_allowlist.txt fails the run (tests/skip_policy.py).
from skip_policy import (  # noqa: E402,F401
    pytest_collectreport,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

torch.set_num_threads(2)


@pytest.fixture(scope="session", autouse=True)
def _optimized_graph_cache(tmp_path_factory):
    """The ORT runner caches layout-optimised graphs per machine (runners/ort_cache.py): in
    the tests, in a temporary folder (inherited by CLI subprocesses), never in ~/.cache."""
    from edgefuse.runtime.runners.ort_cache import CACHE_ENV

    before = os.environ.get(CACHE_ENV)
    os.environ[CACHE_ENV] = str(tmp_path_factory.mktemp("ort-cache"))
    yield
    if before is None:
        os.environ.pop(CACHE_ENV, None)
    else:
        os.environ[CACHE_ENV] = before


#: The session bundle's input size (context bins (1, 2) need H/32 and W/32 even).
BUNDLE_SIZE = (64, 128)


@pytest.fixture(scope="session")
def runtime_checkpoint(tmp_path_factory):
    """A random-init dynmm-tiny checkpoint (the torch backend rebuilds its exact weights)."""
    from edgefuse.checkpoint import save_checkpoint
    from edgefuse.models.registry import build_model

    torch.manual_seed(0)
    model = build_model("dynmm-tiny", input_size=BUNDLE_SIZE)
    return save_checkpoint(tmp_path_factory.mktemp("rt_ckpt") / "dynmm-tiny-rt.safetensors", model)


@pytest.fixture(scope="session")
def bundle_dir(runtime_checkpoint, tmp_path_factory):
    """One tiny bundle per session, shared by the runtime and ROS node tests."""
    from edgefuse.export.exporter import export_bundle

    out = tmp_path_factory.mktemp("rt_bundle") / "bundle"
    export_bundle(str(runtime_checkpoint), out, input_size=BUNDLE_SIZE, verify_frames=1, force=True)
    return out


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


class OutputMode:
    """How the human output is read; `assert_whole` checks a printed text against it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def assert_whole(self, text: str, names) -> None:
        """Every name appears whole, nothing is cut with an ellipsis, and in a terminal no
        table is wider than the terminal (text lines printed unwrapped on purpose, such as a
        command to copy, may be)."""
        assert "…" not in text, text
        for name in names:
            assert name in text, f"{name!r} is cut ({self.name}):\n{text}"
        if self.name == "terminal-80":
            rows = [line for line in text.splitlines() if set(line) & set("│┃─━")]
            assert max(map(len, rows), default=0) <= 80, text


@pytest.fixture(params=["pipe", "terminal-80"])
def output_mode(request, monkeypatch) -> OutputMode:
    """Human output the two ways a user reads it (issue 9): piped (not a terminal, with
    COLUMNS=80 and NO_COLOR=1 in the environment) and in an 80-column terminal."""
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("NO_COLOR", "1")
    if request.param == "terminal-80":
        from edgefuse.cli.common import CliConsole
        monkeypatch.setattr(CliConsole, "is_terminal", property(lambda self: True))
    return OutputMode(request.param)


def _latency(mean: float) -> dict[str, float]:
    import numpy as np

    from edgefuse.runtime.stats import LatencyStats

    rng = np.random.default_rng(int(mean))
    return LatencyStats.of(rng.gamma(20.0, mean / 20.0, 50)).to_dict()


@pytest.fixture
def slow_bench_result():
    """A bench result as a slow machine gives it: many paths, latencies over 100 ms, and
    noisy timings (one coefficient-of-variation warning)."""
    from edgefuse.runtime.bench import BenchResult

    paths, ms = 9, 180.0

    data = {
        "model": "dynmm-modality-r18-custom-long-name", "input_size": [480, 640], "backend": "ort",
        "bundle": "/robots/bundles/dynmm-modality-r18-custom-long-name-480x640",
        "settings": {"warmup": 20, "iterations": 200, "duration_s": None, "frames": 100, "camera": "synthetic"},
        "stem_gate": {"madds": 2.1e9, "latency_ms": _latency(ms / 8), "overhead_vs_full_path": 0.12},
        "paths": [{"index": k, "madds": (30 + 5 * k) * 1e9, "path_madds": (28 + 5 * k) * 1e9,
                   "latency_ms": _latency(ms + 40 * k), "frame_p50_ms": ms + 40 * k} for k in range(paths)],
        "dynamic": {"frames": 100, "full_path": paths - 1, "depth_fallbacks": 3,
                    "path_distribution": {str(k): 1 / paths for k in range(paths)},
                    "expected_latency_ms": 1234.5, "mean_latency_ms": 1210.25, "static_latency_ms": 1530.75,
                    "speedup": 1530.75 / 1210.25},
        "end_to_end": {k: _latency(v) for k, v in (("capture_ms", 33), ("inference_ms", 1210), ("post_ms", 2),
                                                    ("frame_ms", 1245))},
        "memory": {"files_total_bytes": 321_000_000, "session_rss_delta_bytes": 900_000_000},
        "machine": {"platform": "Linux-6.1-aarch64-with-glibc2.35", "cpu": "ARMv8 Processor rev 1 (v8l)",
                    "cpu_count": 6, "affinity": 6, "python": "3.10.12", "onnxruntime": "1.18.0",
                    "edgefuse": "0.1.0", "date": "2026-01-01T00:00:00+00:00",
                    "providers": ["TensorrtExecutionProvider", "CUDAExecutionProvider"]},
    }
    warning = ("coefficient of variation over 2.5% for stem_gate 3.1%, path_0 4.0%: the machine is busy "
               "or throttling, numbers may not be stable (close other work, pin threads, or run longer with "
               "--duration)")
    return BenchResult(data, warnings=[warning])
