"""Frames for export-time verification and INT8 calibration.

Sources, by name:
  - "synthetic" (default): the synthetic benchmark, `edgefuse.data.synth.SceneRenderer`
    (needs the `synth` extra, Open3D);
  - "procedural": simple structured rooms drawn with numpy (no extra; planes and boxes with
    matching labels and depth), for machines without Open3D and for fast tests;
  - a dataset folder in the shared layout (dataset.json, <split>/rgb, depth, labels_*);
  - a camera source spec, read through `edgefuse.cameras.open_source` like `edgefuse run
    --camera` reads it: `bag:FILE` (RealSense recording), `rosbag:FILE` (ROS 1/2 bag),
    `folder:DIR[:SPLIT]` (dataset or plain rgb/ + depth/ folder), `synthetic[:SEED]` (the
    synthetic camera; plain "synthetic" stays the benchmark frames above). Their frames are
    unlabelled (fine for calibration; verification computes mIoU only when every frame has
    labels) and go through the runtime's frame preparation (`edgefuse.runtime.frames.prepare`:
    resized to the bundle's input size, invalid depth zeroed, undecodable frames skipped).

Frames are picked deterministically (evenly spaced over a dataset split or a recording;
fixed seeds for generated ones), so that verification and calibration - and so the
exported bundle - are reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefuse.errors import EdgefuseError

# Different seeds for the frames a bundle is calibrated on and the frames it is verified
# on: INT8 accuracy is measured on frames calibration never saw.
CALIB_SEED = 1001
EVAL_SEED = 2002


@dataclass(frozen=True)
class Frame:
    rgb: np.ndarray               # H x W x 3 uint8, RGB
    depth: np.ndarray             # H x W uint16 millimetres, 0 = no measurement
    labels: np.ndarray | None     # H x W uint8/int64, 0 = void, 1..C (None: unlabelled)
    name: str

    def inputs(self) -> dict[str, np.ndarray]:
        """The stem graph's feeds: rgb float32 1x3xHxW (0..255), depth float32 1x1xHxW (mm)."""
        rgb = np.ascontiguousarray(self.rgb.transpose(2, 0, 1)[None], dtype=np.float32)
        depth = np.ascontiguousarray(self.depth[None, None], dtype=np.float32)
        return {"rgb": rgb, "depth": depth}


def synthetic_frames(count: int, size: tuple[int, int], seed: int) -> list[Frame]:
    from edgefuse.data.synth import SceneRenderer

    renderer = SceneRenderer(seed, size, threads=1)  # threads=1: identical pixels everywhere
    out = []
    for i in range(count):
        f = renderer.render(i)
        out.append(Frame(f.rgb, f.depth, f.labels, f"synthetic-{seed}-{i}"))
    return out


def procedural_frames(count: int, size: tuple[int, int], seed: int) -> list[Frame]:
    """Rooms of planes and boxes: floor, wall, ceiling, and a few furniture boxes nearer the
    camera, with labels (NYU13 ids) and depth that agree, mild noise and missing depth."""
    h, w = size
    out = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        horizon = h * rng.uniform(0.35, 0.6)
        ceiling = h * rng.uniform(0.05, 0.2)
        labels = np.full((h, w), 12, np.uint8)                      # wall
        depth = np.full((h, w), rng.uniform(2500, 4500), np.float32)
        floor = yy > horizon
        labels[floor] = 5                                             # floor
        depth[floor] = 1500.0 * h / np.maximum(yy[floor] - horizon + 8.0, 1.0) + 600.0
        labels[yy < ceiling] = 3                                      # ceiling
        for _ in range(rng.integers(2, 5)):
            cls = int(rng.choice([1, 4, 6, 9, 10, 11, 13, 8]))        # bed chair furniture sofa table tv window picture
            y0, x0 = rng.uniform(0.2 * h, 0.8 * h), rng.uniform(0, 0.8 * w)
            bh, bw = rng.uniform(0.15 * h, 0.45 * h), rng.uniform(0.1 * w, 0.35 * w)
            box = (yy >= y0) & (yy < min(y0 + bh, h)) & (xx >= x0) & (xx < min(x0 + bw, w))
            labels[box] = cls
            depth[box] = rng.uniform(900, 2400) + 0.5 * (yy[box] - y0)
        base = rng.uniform(40, 220, size=(14, 3))
        rgb = base[labels] * (0.8 + 0.2 * np.sin(xx / rng.uniform(3, 9)))[..., None]
        rgb += rng.normal(0, 6, size=rgb.shape)
        depth *= 1 + rng.normal(0, 0.01, size=depth.shape)
        depth[rng.random((h, w)) < 0.03] = 0                          # sensor holes
        out.append(Frame(np.clip(rgb, 0, 255).astype(np.uint8), np.clip(depth, 0, 65535).astype(np.uint16),
                         labels, f"procedural-{seed}-{i}"))
    return out


def dataset_frames(root: str | Path, split: str, count: int, size: tuple[int, int]) -> list[Frame]:
    """`count` frames evenly spaced over a split of a dataset folder, resized to `size`
    (bilinear for RGB, nearest for depth and labels) when they differ."""
    from edgefuse.data.dataset import SegmentationDataset

    ds = SegmentationDataset(root, split)
    if len(ds) == 0:
        raise EdgefuseError(f"{root}: split {split!r} has no frames")
    idx = np.unique(np.linspace(0, len(ds) - 1, num=min(count, len(ds))).round().astype(int))
    out = []
    for i in idx:
        s = ds.load(int(i))
        rgb, depth, labels = s["rgb"], np.asarray(s["depth"]), np.asarray(s["label"])
        if rgb.shape[:2] != tuple(size):
            rgb, depth, labels = _resize(rgb, depth, labels, size)
        out.append(Frame(rgb.astype(np.uint8), np.clip(depth, 0, 65535).astype(np.uint16),
                         labels.astype(np.int64), f"{split}/{ds.stems[int(i)]}"))
    return out


def _resize(rgb: np.ndarray, depth: np.ndarray, labels: np.ndarray, size: tuple[int, int]):
    from PIL import Image

    h, w = size
    r = np.asarray(Image.fromarray(rgb).resize((w, h), Image.BILINEAR))
    d = np.asarray(Image.fromarray(depth.astype(np.float32)).resize((w, h), Image.NEAREST))
    lab = np.asarray(Image.fromarray(labels.astype(np.int32)).resize((w, h), Image.NEAREST))
    return r, d, lab


FRAME_SOURCES = {"synthetic": synthetic_frames, "procedural": procedural_frames}

# Camera kinds accepted as frames sources: recordings, folders and the synthetic camera (a
# live camera would make the export depend on the moment it ran).
CAMERA_KINDS = ("bag", "rosbag", "folder", "synthetic")
CAMERA_SPECS = "bag:FILE, rosbag:FILE, folder:DIR[:SPLIT], synthetic[:SEED]"


def camera_spec_kind(name: str) -> str | None:
    """The camera kind `name` is a spec of ('bag:run.db3' -> 'bag'), else None."""
    from edgefuse.cameras import SOURCES

    kind, sep, _ = name.partition(":")
    return kind.lower() if sep and kind.lower() in SOURCES else None


def _spread(n: int, count: int) -> list[int]:
    """`count` indices evenly spaced over 0..n-1 (all of them when n <= count)."""
    return [int(i) for i in np.unique(np.linspace(0, n - 1, num=min(count, n)).round().astype(int))]


def camera_frames(spec: str, count: int, size: tuple[int, int], split: str | None = None,
                  camera_calibration: str | Path | None = None) -> list[Frame]:
    """`count` frames evenly spaced over a recording / folder (the first `count` of the
    endless synthetic camera), prepared like the runtime prepares them and returned at
    `size`, unlabelled. A frame picked that cannot be decoded is replaced by the next good
    one. `split`: the dataset split `folder:DIR` reads when the spec names none and the
    dataset has it (else the folder camera's default)."""
    from edgefuse.cameras import open_source, parse_spec, validate_frame
    from edgefuse.runtime.frames import prepare

    parsed = parse_spec(spec)   # ConfigError (an EdgefuseError) listing the valid specs
    if parsed.kind not in CAMERA_KINDS:
        raise EdgefuseError(f"frames source {spec!r}: a live camera cannot give reproducible frames; "
                            f"record it (e.g. realsense-viewer -> .db3) and pass {CAMERA_SPECS}")
    options: dict = {}
    if parsed.kind == "synthetic":
        options = {"size": tuple(size), "frames": count}
    elif (parsed.kind == "folder" and parsed.split is None and split
          and (Path(parsed.target or ".") / f"{split}.txt").is_file()):
        options = {"split": split}
    size = tuple(int(s) for s in size)

    def opened():
        try:
            return open_source(spec, calibration=camera_calibration, **options).open()
        except EdgefuseError as exc:
            raise EdgefuseError(f"frames source {spec!r} could not be opened: {exc}") from exc

    src = opened()
    try:
        try:
            total = len(src)
        except TypeError:   # a recording's length is known only after playing it: count first
            total = sum(1 for _ in src)
            src.close()
            src = opened()
        if total == 0:
            raise EdgefuseError(f"frames source {spec!r} has no frames")
        wanted = set(_spread(total, count))
        out: list[Frame] = []
        owed = 0
        for i, frame in enumerate(src):
            owed += i in wanted
            if not owed:
                continue
            prepared = prepare(frame, validate_frame(frame, size), size)
            if prepared is None:   # undecodable: the next good frame takes its place
                continue
            depth = np.clip(np.rint(prepared.depth[0, 0]), 0, 65535).astype(np.uint16)
            out.append(Frame(prepared.image.astype(np.uint8), depth, None, f"{parsed.kind}#{int(frame.index)}"))
            owed -= 1
            if len(out) >= min(count, total):
                break
    finally:
        src.close()
    if not out:
        raise EdgefuseError(f"frames source {spec!r}: none of its {total} frames could be decoded")
    return out


def source_label(source: str | Path, split: str) -> str:
    """How a frames source is named in verify.json and the manifest: no directories, so the
    bundle does not depend on (or leak) where the data lived."""
    name = str(source)
    if name in FRAME_SOURCES:
        return name
    kind = camera_spec_kind(name) if not Path(name).is_dir() else None
    if kind is not None:
        parsed_target = name.partition(":")[2]
        return f"{kind}:{Path(parsed_target).name}" if parsed_target else kind
    return f"{Path(name).name}/{split}"


def load_frames(source: str | Path | None, count: int, size: tuple[int, int], *, seed: int,
                split: str = "test", camera_calibration: str | Path | None = None) -> list[Frame]:
    """`count` frames of `size` from a named source, a dataset folder or a camera source
    spec (see module doc). `camera_calibration`: a camera.yaml applied to a camera source
    as `edgefuse run --calibration` applies it (other sources are not camera images)."""
    if count < 1:
        raise EdgefuseError(f"need at least one frame, got {count}")
    name = "synthetic" if source is None else str(source)
    if name in FRAME_SOURCES:
        return FRAME_SOURCES[name](count, size, seed)
    path = Path(name)
    if path.is_dir():   # a plain directory path is a dataset folder, as before
        return dataset_frames(path, split, count, size)
    if camera_spec_kind(name) is not None:
        return camera_frames(name, count, size, split, camera_calibration)
    raise EdgefuseError(f"frames source {name!r} is neither {' nor '.join(FRAME_SOURCES)} nor a dataset "
                        f"folder (create one with `edgefuse data synth --out DIR`) nor a camera source "
                        f"spec ({CAMERA_SPECS})")


def spread_order(n: int) -> list[int]:
    """0..n-1 in bit-reversed order (0, n/2, n/4, 3n/4, ...): every prefix of frames taken in
    this order spreads over the whole source, so a calibration that stops early has not
    seen only the start of a recording."""
    bits = max(1, (n - 1).bit_length())
    return sorted(range(n), key=lambda i: int(format(i, f"0{bits}b")[::-1], 2))
