"""`folder:DIR[:SPLIT]`: play back a dataset folder frame by frame, nothing dropped.

Accepts the shared dataset layout (DIR/dataset.json, DIR/<split>.txt, DIR/<split>/rgb,
depth, meta.jsonl with intrinsics; nicr-scene-analysis-datasets / ESANet style, the
synthetic benchmark writes the same) and a plain folder holding only `rgb/` and `depth/`
(frames in name order, paired by stem). A frame whose image will not decode is yielded
with `Frame.error` set, so the runtime logs and skips it instead of stopping the run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from edgefuse.cameras.base import Frame, FrameSource, Intrinsics, SourceOptions, SourceSpec
from edgefuse.data.layout import (
    DEPTH_DIR,
    IMAGE_EXTENSIONS,
    RGB_DIR,
    SPLITS,
    find_image,
    read_image,
    read_info,
    read_meta,
    read_split,
    safe_stem,
)
from edgefuse.errors import ConfigError, EdgefuseError

DEFAULT_SPLIT = "test"


@dataclass
class FolderOptions(SourceOptions):
    """split: which split of a dataset root (default: test, else the only one there);
    fps: the frame rate that timestamps and `realtime` pacing assume where meta.jsonl records
    no `timestamp` (folders have no clock)."""

    split: str | None = None
    fps: float = 30.0


def _plain_stems(folder: Path) -> list[str]:
    """Stems of every image under folder/rgb, sorted (subfolders allowed: stems keep them)."""
    rgb = folder / RGB_DIR
    stems = {str(p.relative_to(rgb).with_suffix("")) for p in rgb.rglob("*")
             if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS}
    return sorted(stems)


class FolderSource(FrameSource):
    Options = FolderOptions
    read_ahead = 4   # PNG decoding off the inference loop (base.FrameSource)

    def __init__(self, root: str | Path, options: FolderOptions | None = None) -> None:
        opts = options or FolderOptions()
        if opts.fps <= 0:
            raise ConfigError(f"folder camera: fps must be > 0, got {opts.fps}")
        root = Path(root).expanduser()
        super().__init__(f"folder:{root}", frames=opts.frames, realtime=opts.realtime)
        self.root = root
        self.options = opts
        self.split_dir, self.stems, self.split = self._resolve(root, opts.split)
        # A split folder given directly (DIR/test) still has its meta.jsonl beside rgb/.
        self._meta = read_meta(root, self.split) if self.split is not None else read_meta(root.parent, root.name)
        info = read_info(root) if self.split is not None else None
        unit = (info or {}).get("depth_unit", "mm")
        if unit != "mm":
            raise EdgefuseError(f"{root}/dataset.json says depth_unit={unit!r}; the folder camera reads "
                                f"depth PNGs in millimetres (depth_unit 'mm') only")

    @classmethod
    def from_spec(cls, spec: SourceSpec, options: FolderOptions) -> "FolderSource":
        if spec.split is not None:
            if options.split is not None and options.split != spec.split:
                raise ConfigError(f"folder camera: split given twice ({spec.split!r} in the spec, "
                                  f"{options.split!r} as an option)")
            options.split = spec.split
        return cls(spec.target or ".", options)

    @staticmethod
    def _resolve(root: Path, split: str | None) -> tuple[Path, list[str], str | None]:
        """(folder holding rgb/ and depth/, stems, split name or None for a plain folder)."""
        if not root.is_dir():
            raise EdgefuseError(f"folder camera: {root} is not a directory")
        listed = [s for s in SPLITS if (root / f"{s}.txt").is_file()]
        if listed or split is not None:
            if split is None:
                split = DEFAULT_SPLIT if DEFAULT_SPLIT in listed else listed[0]
            stems = [safe_stem(root, s) for s in read_split(root, split)]
            return root / split, stems, split
        if (root / RGB_DIR).is_dir():
            stems = _plain_stems(root)
            if not stems:
                raise EdgefuseError(f"folder camera: no images ({', '.join(IMAGE_EXTENSIONS)}) in {root / RGB_DIR}")
            return root, stems, None
        raise EdgefuseError(
            f"folder camera: {root} is neither a dataset (DIR/dataset.json, DIR/test.txt, DIR/test/rgb/...) "
            f"nor a plain folder with rgb/ and depth/ subfolders")

    def __len__(self) -> int:
        n = len(self.stems)
        return n if self.max_frames is None else min(n, self.max_frames)

    def _intrinsics(self, rec: dict[str, Any]) -> Intrinsics | None:
        intr = rec.get("intrinsics")
        try:
            return Intrinsics.from_dict(intr) if isinstance(intr, dict) else None
        except EdgefuseError:
            return None  # malformed metadata must not stop playback; the frame is still usable

    def read(self, index: int) -> Frame:
        """Frame `index` (position in the split); decode failures come back as `Frame.error`."""
        stem = self.stems[index]
        rec = self._meta.get(stem, {})
        meta = {"stem": stem, "source": self.name}
        meta.update({k: rec[k] for k in ("lighting", "hard", "hard_factors") if k in rec})
        timestamp = float(rec["timestamp"]) if isinstance(rec.get("timestamp"), (int, float)) \
            else index / self.options.fps
        common = dict(timestamp=timestamp, intrinsics=self._intrinsics(rec), index=index, meta=meta)
        try:
            rgb = read_image(find_image(self.split_dir / RGB_DIR, stem))
            if rgb.ndim != 3:
                raise EdgefuseError(f"rgb image of {stem!r} is not a colour image (shape {rgb.shape})")
        except Exception as exc:  # corrupt / missing file: a bad frame, not the end of the run
            return Frame(rgb=np.zeros((0, 0, 3), np.uint8), depth=None, error=f"rgb {stem!r}: {exc}", **common)
        depth = None
        depth_dir = self.split_dir / DEPTH_DIR
        try:
            depth = read_image(find_image(depth_dir, stem))
            if depth.dtype != np.uint16 or depth.ndim != 2:
                # An 8-bit or colour depth image is not millimetres: report it, never rescale.
                meta["depth_error"] = f"depth of {stem!r} is {depth.dtype} {depth.shape}, expected 16-bit mm"
                depth = None
        except Exception as exc:
            meta["depth_error"] = f"depth {stem!r}: {exc}"
        return Frame(rgb=rgb, depth=depth, **common)

    def _frames(self) -> Iterator[Frame]:
        # `realtime` pacing (by the timestamps: meta.jsonl's where recorded, else index / fps)
        # is applied by FrameSource on the consumer's side of the read-ahead queue.
        for i in range(len(self.stems)):
            yield self.read(i)
