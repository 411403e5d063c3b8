"""Camera specs and `open_source`: `open_source("realsense:1234", ...)` parses a spec and
dispatches through a dict of (module, class) pairs, so that pyrealsense2 / rosbags / open3d
are imported only by the source that needs them.
"""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any

from edgefuse.cameras.base import FrameSource, SourceSpec
from edgefuse.cameras.calibrated import CalibratedSource
from edgefuse.cameras.camera_info import CameraCalibration, load_camera_calibration
from edgefuse.config import from_dict
from edgefuse.errors import ConfigError


# kind -> (module, class, usage). Modules are imported only when that kind is opened.
SOURCES: dict[str, tuple[str, str, str]] = {
    "synthetic": ("edgefuse.cameras.synthetic", "SyntheticSource", "synthetic[:SEED]"),
    "folder": ("edgefuse.cameras.folder", "FolderSource", "folder:DIR[:SPLIT]"),
    "realsense": ("edgefuse.cameras.realsense", "RealSenseSource", "realsense[:SERIAL]"),
    "bag": ("edgefuse.cameras.bag", "BagSource", "bag:FILE (.db3 or .bag RealSense recording)"),
    "rosbag": ("edgefuse.cameras.rosbag", "RosbagSource", "rosbag:FILE (ROS 1 .bag or ROS 2 bag folder/.db3/.mcap)"),
    "opencv": ("edgefuse.cameras.opencv", "OpenCVSource", "opencv:INDEX|DEVICE|FILE|URL (colour only)"),
    "openni": ("edgefuse.cameras.openni", "OpenNISource", "openni[:INDEX|FILE.oni] (OpenCV's OpenNI2 backend)"),
    "open3d-realsense": ("edgefuse.cameras.open3d_rs", "Open3DRealSenseSource", "open3d-realsense[:SERIAL]"),
    "open3d-bag": ("edgefuse.cameras.open3d_rs", "Open3DBagSource", "open3d-bag:FILE (.bag, through Open3D)"),
}

# Kinds whose argument is required.
_NEEDS_TARGET = {"folder", "bag", "rosbag", "opencv", "open3d-bag"}


def valid_specs() -> str:
    return ", ".join(usage for _, _, usage in SOURCES.values())


def parse_spec(spec: str) -> SourceSpec:
    """'bag:/data/run.db3' -> SourceSpec('bag', '/data/run.db3'); errors list the valid specs."""
    if not isinstance(spec, str) or not spec.strip():
        raise ConfigError(f"empty camera spec; valid specs: {valid_specs()}")
    kind, sep, rest = spec.strip().partition(":")
    kind = kind.lower()
    if kind not in SOURCES:
        raise ConfigError(f"unknown camera {spec!r}; valid specs: {valid_specs()}")
    target = rest if sep and rest else None
    if kind in _NEEDS_TARGET and target is None:
        raise ConfigError(f"camera {spec!r} needs an argument: {SOURCES[kind][2]}")
    split = None
    if kind == "folder" and target is not None and not Path(target).exists():
        # folder:DIR:SPLIT - split off the last ':' only when DIR itself does not exist,
        # so a directory whose name contains ':' still works.
        head, sep2, tail = target.rpartition(":")
        if sep2 and head and tail and "/" not in tail:
            target, split = head, tail
    if kind == "synthetic" and target is not None:
        try:
            int(target)
        except ValueError:
            raise ConfigError(f"camera {spec!r}: the synthetic seed must be an integer, e.g. synthetic:7") from None
    return SourceSpec(kind, target, split)


def source_class(kind: str) -> type[FrameSource]:
    """The FrameSource class for `kind` (imports its module)."""
    if kind not in SOURCES:
        raise ConfigError(f"unknown camera kind {kind!r}; valid specs: {valid_specs()}")
    module, cls, _ = SOURCES[kind]
    return getattr(importlib.import_module(module), cls)


def open_source(spec: str, calibration: Any = None, **options: Any) -> FrameSource:
    """Build the frame source for a camera spec (not yet opened: use `with` or `.open()`).

    Specs: see `valid_specs()` (realsense[:SERIAL], bag:FILE, rosbag:FILE, folder:DIR[:SPLIT],
    synthetic[:SEED], opencv:..., openni[:...], open3d-realsense[:SERIAL], open3d-bag:FILE).
    `options` are the source's Options fields (e.g. frames=, realtime=, width=, fps=);
    an unknown option raises ConfigError listing the valid ones. Options set to None are
    treated as not given, so a CLI can pass its flags through unchanged.

    `calibration`: a camera_info YAML path or a `CameraCalibration` (`--calibration`): its
    intrinsics replace the device's, and when it holds the depth-to-colour extrinsics,
    depth is registered with them (the device's own alignment is turned off where the
    source has an `align` option).
    """
    parsed = parse_spec(spec)
    cls = source_class(parsed.kind)
    given = {k: v for k, v in options.items() if v is not None}
    cal = None
    raw_depth = False
    if calibration is not None:
        cal = calibration if isinstance(calibration, CameraCalibration) else load_camera_calibration(calibration)
        names = {f.name for f in dataclasses.fields(cls.Options)}
        if cal.registers_depth and "align" in names:
            given.setdefault("align", False)
            raw_depth = not given["align"]
    opts = from_dict(cls.Options, given, where=f"options of camera {parsed.kind!r}")
    source = cls.from_spec(parsed, opts)  # type: ignore[attr-defined]
    if cal is None:
        return source
    return CalibratedSource(source, cal, raw_depth=raw_depth)
