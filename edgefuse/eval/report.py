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


def oracle_table(report: dict[str, Any], title: str = ""):
    """`edgefuse eval --oracle`: forced paths, the gate and the oracle, then agreement."""
    from rich.console import Group
    from rich.table import Table

    unit = report.get("unit", "path")
    table = Table(title=title or None)
    for col in ("policy", "GMAC", "mIoU %", "easy %", "hard %", f"{unit} ratio"):
        table.add_column(col, justify="left" if col == "policy" else "right", no_wrap=col.endswith("ratio"))

    def sub(rep, name):
        s = rep["subsets"].get(name)
        return _pct(s["miou"]) if s else "-"

    rows = [(f"forced {unit} {k}", r) for k, r in enumerate(report["forced"])]
    op = report.get("operating_point")
    gate_name = "the gate" if not op else f"the gate (operating point, bias {op['bias']:+.2f})"
    rows += [(gate_name, report["gate"]), (f"oracle ({report['tolerance']:g} pts)", report["oracle"])]
    for name, r in rows:
        table.add_row(name, _gmac(r["mean_madds"]), _pct(r["miou"]), sub(r, "easy"), sub(r, "hard"),
                      _ratio(r["path_ratio"]))
    agree = Table(title=f"gate vs oracle (tolerance {report['tolerance']:g} points of pixel accuracy)")
    for col in ("frames", "n", "same choice", "within tolerance", "cheaper", "costlier"):
        agree.add_column(col, justify="left" if col == "frames" else "right")
    for name, a in report["agreement"].items():
        agree.add_row(name, str(a["frames"]), f"{100 * a['exact']:.1f}%", f"{100 * a['within_tolerance']:.1f}%",
                      f"{100 * a['cheaper']:.1f}%", f"{100 * a['costlier']:.1f}%")
    d = report["distance"]
    gap = "-" if d["gap"] is None else f"{100 * d['gap']:.2f}"
    line = (f"distance to the oracle curve at the gate's cost ({_gmac(d['gate_madds'])} GMAC): "
            f"{gap} mIoU (oracle {_pct(d['oracle_miou_at_gate_cost'])}, gate {_pct(d['gate_miou'])})")
    return Group(table, agree, line)
