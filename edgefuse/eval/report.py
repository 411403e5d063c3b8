"""Rich tables of eval reports (the JSON contract of edgefuse.eval.evaluate)."""

from __future__ import annotations

from typing import Any


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _ratio(r: list[float] | None) -> str:
    return "-" if r is None else " ".join(f"{v:.2f}" for v in r)


def _gmac(m: float | None) -> str:
    return "-" if m is None else f"{m / 1e9:.3f}"


def report_table(report: dict[str, Any], title: str = ""):
    from rich.table import Table

    table = Table(title=title or None)
    for col in ("frames", "subset", "mIoU %", "pixel acc %", "mean acc %", "path ratio", "GMAC/frame"):
        table.add_column(col, justify="right" if col != "subset" else "left")
    table.add_row(str(report["frames"]), "all", _pct(report["miou"]), _pct(report["pixel_acc"]),
                  _pct(report["mean_acc"]), _ratio(report["path_ratio"]), _gmac(report["mean_madds"]))
    for name, sub in report.get("subsets", {}).items():
        table.add_row(str(sub["frames"]), name, _pct(sub["miou"]), "", "", _ratio(sub["path_ratio"]),
                      _gmac(sub["mean_madds"]))
    per_class = Table(title="per-class IoU %")
    names = list(report["per_class_iou"])
    for n in names:
        per_class.add_column(n, justify="right")
    per_class.add_row(*(_pct(report["per_class_iou"][n]) for n in names))
    from rich.console import Group

    return Group(table, per_class)
