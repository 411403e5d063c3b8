"""The calibration report: as a JSON-able dict (`--json`) and as the lines the CLI prints."""

from __future__ import annotations

from typing import Any

from edgefuse.calibration.camera import CalibrationReport
from edgefuse.calibration.intrinsics import OUTLIER_FACTOR, IntrinsicsResult


def _camera_dict(r: IntrinsicsResult) -> dict[str, Any]:
    k = r.camera.intrinsics
    return {
        "image_size": [k.width, k.height],
        "fx": k.fx, "fy": k.fy, "cx": k.cx, "cy": k.cy,
        "distortion_model": r.camera.distortion_model,
        "distortion": list(r.camera.distortion),
        "rms_px": r.rms_px,
        "views_used": [e.name for e in r.per_view],
        "views_skipped": {v.name: v.skipped for v in r.views if not v.used},
        "per_view_rms_px": {e.name: e.rms_px for e in r.per_view},
        "outliers": r.outliers,
        "dropped_outliers": r.dropped,
        "coverage": {"fraction": r.coverage.fraction, "grid": r.coverage.counts.tolist(),
                     "corners_never_covered": r.coverage.missing_corners(),
                     "edges_never_covered": r.coverage.missing_edges()},
    }


def report_dict(report: CalibrationReport) -> dict[str, Any]:
    out: dict[str, Any] = {"out": str(report.out), "board": str(report.board), "color": _camera_dict(report.color)}
    if report.captured:
        out["captured"] = report.captured
    if report.depth is not None:
        out["depth"] = _camera_dict(report.depth)
    if report.stereo is not None:
        s = report.stereo
        out["depth_to_color"] = {"rotation": [list(r) for r in s.depth_to_color.rotation],
                                 "translation_m": list(s.depth_to_color.translation), "rms_px": s.rms_px,
                                 "pairs": s.pairs, "unpaired": s.unpaired}
    return out


def _camera_lines(title: str, r: IntrinsicsResult) -> list[str]:
    k = r.camera.intrinsics
    used = len(r.per_view)
    skipped = [v for v in r.views if not v.used]
    lines = [f"{title}: {used} views used, {len(skipped)} skipped",
             f"  fx {k.fx:.2f}  fy {k.fy:.2f}  cx {k.cx:.2f}  cy {k.cy:.2f}  ({k.width}x{k.height})",
             f"  distortion (k1 k2 p1 p2 k3): {' '.join(f'{d:+.5f}' for d in r.camera.distortion)}",
             f"  RMS reprojection error {r.rms_px:.3f} px"]
    for v in skipped:
        lines.append(f"  skipped {v.name}: {v.skipped}")
    lines.append("  per-view RMS (px):")
    for e in r.per_view:
        flag = f"   <- outlier (> {OUTLIER_FACTOR:g} x the median): check this view, or --drop-outliers" \
            if e.outlier else ""
        lines.append(f"    {e.name:<28} {e.rms_px:7.3f}{flag}")
    cov = r.coverage
    lines.append(f"  board coverage: {cov.fraction:.0%} of a {cov.counts.shape[0]}x{cov.counts.shape[1]} grid "
                 f"(corners seen per cell, '.' = never)")
    lines += [f"    {row}" for row in cov.grid()]
    advice = cov.advice()
    if advice:
        lines.append(f"  warning: {advice}")
    return lines


def report_lines(report: CalibrationReport) -> list[str]:
    lines = [f"board {report.board}"]
    if report.captured:
        lines.append(f"captured {len(report.captured)} views")
    lines += _camera_lines("colour camera", report.color)
    if report.depth is not None:
        lines += _camera_lines("depth camera", report.depth)
    if report.stereo is not None:
        s = report.stereo
        t = s.depth_to_color.translation
        lines.append(f"depth -> colour: t = ({t[0]:+.4f}, {t[1]:+.4f}, {t[2]:+.4f}) m, stereo RMS {s.rms_px:.3f} px "
                     f"over {len(s.pairs)} view pairs" + (f" ({len(s.unpaired)} unpaired)" if s.unpaired else ""))
    lines.append(f"wrote {report.out}")
    return lines
