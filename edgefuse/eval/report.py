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
    for col in ("frames", "subset", "mIoU %", "pix acc %", "mean acc %", "path ratio", "GMAC"):
        table.add_column(col, justify="right" if col != "subset" else "left", no_wrap=col == "path ratio")
    table.add_row(str(report["frames"]), "all", _pct(report["miou"]), _pct(report["pixel_acc"]),
                  _pct(report["mean_acc"]), _ratio(report["path_ratio"]), _gmac(report["mean_madds"]))
    for name, sub in report.get("subsets", {}).items():
        table.add_row(str(sub["frames"]), name, _pct(sub["miou"]), "", "", _ratio(sub["path_ratio"]),
                      _gmac(sub["mean_madds"]))
    # Classes as rows, several side by side: 13 or 40 names never fit as columns.
    per_class = Table(title="per-class IoU %")
    items = [(n, _pct(v)) for n, v in report["per_class_iou"].items()]
    groups = 3 if len(items) > 8 else 1
    rows = -(-len(items) // groups)
    for _ in range(groups):
        per_class.add_column("class")
        per_class.add_column("IoU", justify="right")
    for r in range(rows):
        cells: list[str] = []
        for g in range(groups):
            i = g * rows + r
            cells += list(items[i]) if i < len(items) else ["", ""]
        per_class.add_row(*cells)
    from rich.console import Group

    return Group(table, per_class)
