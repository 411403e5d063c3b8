"""`edgefuse eval --oracle --report DIR`: the oracle curve as a PNG beside a Markdown summary
(and the JSON report), from the report of edgefuse.eval.oracle.oracle_report."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgefuse.errors import EdgefuseError


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _gmac(m: float | None) -> str:
    return "-" if m is None else f"{m / 1e9:.4f}"


def _sub(rep: dict[str, Any], name: str) -> str:
    s = rep.get("subsets", {}).get(name)
    return "-" if s is None else _pct(s["miou"])


def _ratio(r: list[float] | None) -> str:
    return "-" if r is None else " ".join(f"{v:.2f}" for v in r)


def markdown(report: dict[str, Any], title: str = "") -> str:
    """A Markdown summary: forced paths, the gate, the oracle, agreement, distance, the curve."""
    unit = report.get("unit", "path")
    tol = report["tolerance"]
    full = report["forced"][-1] if report["forced"] else None
    lines = [f"# {title or 'Oracle analysis'}", ""]
    if "model" in report:
        lines += [f"Model `{report['model']}` on `{report['data']}`, {report['frames']} frames. "
                  f"Oracle: per frame the cheapest {unit} whose pixel accuracy is within {tol:g} points of the "
                  f"frame's best {unit}.", ""]
    lines += [f"| policy | mean GMAC | vs last {unit} | mIoU | easy mIoU | hard mIoU | {unit} ratio |",
              "|---|---:|---:|---:|---:|---:|---|"]

    def row(name: str, rep: dict[str, Any]) -> str:
        saving = "-" if not full else f"{100 * (rep['mean_madds'] / full['mean_madds'] - 1):+.1f}%"
        return (f"| {name} | {_gmac(rep['mean_madds'])} | {saving} | {_pct(rep['miou'])} | {_sub(rep, 'easy')} | "
                f"{_sub(rep, 'hard')} | {_ratio(rep['path_ratio'])} |")

    for k, rep in enumerate(report["forced"]):
        lines.append(row(f"forced {unit} {k}", rep))
    op = report.get("operating_point")
    lines.append(row("**the gate**" + (f" (operating point: bias {op['bias']:+.2f}, target `{op.get('target')}`)"
                                       if op else ""), report["gate"]))
    lines.append(row(f"oracle (within {tol:g} points)", report["oracle"]))
    d = report["distance"]
    lines += ["", f"Distance to the oracle curve at the gate's cost ({_gmac(d['gate_madds'])} GMAC): the best "
              f"oracle point costing no more reaches {_pct(d['oracle_miou_at_gate_cost'])} mIoU, the gate "
              f"{_pct(d['gate_miou'])}: **{_pct(d['gap'])} mIoU** below it.", ""]
    lines += [f"Agreement of the gate with the oracle (tolerance {tol:g} points):", "",
              "| frames | n | same choice | gate's within tolerance | gate cheaper | gate costlier | "
              "gate pts below best | oracle pts below best |", "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for name, a in report["agreement"].items():
        lines.append(f"| {name} | {a['frames']} | {100 * a['exact']:.1f}% | {100 * a['within_tolerance']:.1f}% | "
                     f"{100 * a['cheaper']:.1f}% | {100 * a['costlier']:.1f}% | {a['gate_points_below_best']:.2f} | "
                     f"{a['oracle_points_below_best']:.2f} |")
    counts = report["choices"]["counts"]
    p = len(counts)
    lines += ["", f"Frames by oracle {unit} (rows) and gate {unit} (columns):", "",
              "| oracle \\ gate | " + " | ".join(str(k) for k in range(p)) + " |",
              "|---|" + "---:|" * p]
    lines += [f"| {k} | " + " | ".join(str(c) for c in counts[k]) + " |" for k in range(p)]
    lines += ["", "Oracle curve:", "", "| tolerance (points) | mean GMAC | mIoU | easy | hard |",
              "|---:|---:|---:|---:|---:|"]
    for pt in report["curve"]:
        s = pt.get("subsets", {})
        lines.append(f"| {pt['tolerance']:g} | {_gmac(pt['mean_madds'])} | {_pct(pt['miou'])} | "
                     f"{_pct(s['easy']['miou']) if 'easy' in s else '-'} | "
                     f"{_pct(s['hard']['miou']) if 'hard' in s else '-'} |")
    if report.get("gate_curve"):
        lines += ["", "The gate with a cost bias on its logits (bias in units of its mean per-frame logit range; "
                  "what `--budget-ms` applies at run time):", "",
                  "| bias | mean GMAC | mIoU | easy | hard |", "|---:|---:|---:|---:|---:|"]
        for pt in report["gate_curve"]:
            s = pt.get("subsets", {})
            mark = " (shipped: the gate above)" if pt.get("shipped") else ""
            lines.append(f"| {pt['bias']:g}{mark} | {_gmac(pt['mean_madds'])} | {_pct(pt['miou'])} | "
                         f"{_pct(s['easy']['miou']) if 'easy' in s else '-'} | "
                         f"{_pct(s['hard']['miou']) if 'hard' in s else '-'} |")
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path, title: str = "") -> Path:
    """Left: mIoU vs mean GMAC (oracle curve, forced points, the gate, the oracle at the
    tolerance). Right: the gate's and the oracle's path shares on easy / hard frames."""
    try:
        import matplotlib
    except ImportError:
        raise EdgefuseError("--report draws with matplotlib: pip install 'edgefuse[train]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    unit = report.get("unit", "path")
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.6), gridspec_kw={"width_ratios": [1.4, 1]})
    curve = sorted(report["curve"], key=lambda p: p["mean_madds"])
    left.plot([p["mean_madds"] / 1e9 for p in curve], [100 * p["miou"] for p in curve], "-", color="tab:green",
              alpha=0.8, label="oracle curve (tolerance varies)")
    for p in curve:
        if p["tolerance"] in (0.0, 1.0, 2.0, 5.0, 10.0, 20.0):
            left.annotate(f"{p['tolerance']:g}", (p["mean_madds"] / 1e9, 100 * p["miou"]), fontsize=7,
                          color="tab:green", textcoords="offset points", xytext=(3, -9))
    gcurve = sorted(report.get("gate_curve") or [], key=lambda p: p["mean_madds"])
    if gcurve:
        left.plot([p["mean_madds"] / 1e9 for p in gcurve], [100 * p["miou"] for p in gcurve], ":", color="tab:red",
                  alpha=0.8, label="the gate with a cost bias (--budget-ms)")
    xs = [r["mean_madds"] / 1e9 for r in report["forced"]]
    ys = [100 * r["miou"] for r in report["forced"]]
    left.plot(xs, ys, "s--", color="tab:blue", label=f"forced {unit} (static)")
    for k, (x, y) in enumerate(zip(xs, ys)):
        left.annotate(str(k), (x, y), fontsize=8, color="tab:blue", textcoords="offset points", xytext=(4, 4))
    o, g = report["oracle"], report["gate"]
    left.plot(o["mean_madds"] / 1e9, 100 * o["miou"], "o", color="tab:green", markersize=8,
              label=f"oracle, within {report['tolerance']:g} points")
    op = report.get("operating_point")
    label = "the gate" if not op else f"the gate at its operating point ({op.get('target') or 'bias'}, bias {op['bias']:+.2f})"
    left.plot(g["mean_madds"] / 1e9, 100 * g["miou"], "*", color="tab:red", markersize=15, label=label)
    left.set_xlabel("mean GMAC per frame (measured)")
    left.set_ylabel("mIoU %")
    left.grid(alpha=0.3)
    left.legend(fontsize=8, loc="lower right")
    groups = [n for n in ("easy", "hard") if n in g["subsets"]] or ["all"]
    labels, shares = [], []
    for who, rep in (("gate", g), ("oracle", o)):
        for n in groups:
            labels.append(f"{who}\n{n}")
            shares.append(rep["subsets"][n]["path_ratio"] if n != "all" else rep["path_ratio"])
    bottom = [0.0] * len(labels)
    cmap = plt.get_cmap("viridis")
    p = len(report["forced"])
    for k in range(p):
        vals = [s[k] if s else 0.0 for s in shares]
        right.bar(labels, vals, bottom=bottom, color=cmap(k / max(p - 1, 1)), label=f"{unit} {k}")
        bottom = [b + v for b, v in zip(bottom, vals)]
    right.set_ylabel("share of frames")
    right.set_ylim(0, 1)
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.suptitle(title or f"{report.get('model', '')}: gate vs per-frame oracle", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(report: dict[str, Any], out_dir: str | Path, title: str = "") -> list[Path]:
    """DIR/oracle.json, DIR/oracle.md and DIR/oracle.png."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise EdgefuseError(f"--report {out} is a file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "oracle.json", out / "oracle.md", out / "oracle.png"]
    paths[0].write_text(json.dumps(report, indent=2) + "\n")
    paths[1].write_text(markdown(report, title) + f"\n![oracle curve]({paths[2].name})\n")
    plot(report, paths[2], title)
    return paths
