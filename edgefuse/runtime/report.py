"""Latency reports per gating path: the terminal table, and `--report DIR` with a Markdown
and an HTML report and PNG plots (latency per path vs MAdds, latency histograms, path mix).
matplotlib is imported only when a report is written (Agg backend: no display needed)."""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

from edgefuse.errors import require
from edgefuse.runtime.bench import BenchResult

PLOTS = ("latency_vs_madds.png", "latency_hist.png", "path_mix.png")


def _ms(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _ms3(v: float | None) -> str:
    """Three significant digits (1.23, 12.3, 123): a terminal table stays narrow on slow machines."""
    if v is None or v != v:
        return "-"
    return f"{v:.{2 if abs(v) < 10 else 1 if abs(v) < 100 else 0}f}"


def summary_rows(data: dict[str, Any], digits: int | None = 3) -> list[list[str]]:
    """Rows of the per-graph table: graph, GMAC, mean, std, min, p50, p90, p95, p99, max, qps, cv.
    `digits` decimals for the milliseconds, or None for three significant digits."""
    fmt = _ms3 if digits is None else (lambda v: _ms(v, digits))
    rows = []
    graphs = [("stem_gate", data["stem_gate"].get("madds", 0.0), data["stem_gate"]["latency_ms"])]
    graphs += [(f"path_{p['index']}", p["path_madds"], p["latency_ms"]) for p in data["paths"]]
    for name, madds, s in graphs:
        rows.append([name, f"{madds / 1e9:.3f}"] + [fmt(s[k]) for k in
                    ("mean", "std", "min", "p50", "p90", "p95", "p99", "max")]
                    + [f"{s['throughput']:.{1 if digits else 0}f}", f"{s['cv']:.1%}"])
    return rows


TABLE_NOTE = ("Each graph timed alone (warmed up, round-robin); milliseconds, except GMAC (the "
              "graph's MAdds per frame), qps (1 / mean) and cv (std / mean).")
HEADER = ["graph", "GMAC", "mean", "std", "min", "p50", "p90", "p95", "p99", "max", "qps", "cv"]


def speedup_line(data: dict[str, Any]) -> str:
    """The headline: dynamic vs static mean inference latency on the same frames."""
    d = data["dynamic"]
    line = (f"dynamic mean {d['mean_latency_ms']:.3f} ms vs static (full path {d['full_path']}) "
            f"{d['static_latency_ms']:.3f} ms per frame")
    speedup = d.get("speedup")
    if not speedup:
        return line
    change = 1 - 1 / speedup
    return line + (f" -> speed-up x{speedup:.3f} (dynamic {abs(change):.1%} "
                   f"{'faster' if change >= 0 else 'slower'})")


def detail_lines(data: dict[str, Any]) -> list[str]:
    """What stands behind the headline: the path mix, the stem/gate overhead, the frame time."""
    d, e2e, sg = data["dynamic"], data["end_to_end"], data["stem_gate"]
    dist = ", ".join(f"{k}: {v:.0%}" for k, v in d["path_distribution"].items())
    mem = data["memory"]
    return [
        f"path mix on {d['frames']} frames: {dist} (depth fallbacks {d['depth_fallbacks']}); "
        f"expected latency under this mix {d['expected_latency_ms']:.3f} ms"
        + (f"; MAdds predict a speed-up of x{d['predicted_speedup_madds']:.3f} "
           f"({d['speedup_realised']:.0%} of it realised)"
           if d.get("predicted_speedup_madds") and d.get("speedup_realised") else ""),
        f"stem/gate overhead: p50 {sg['latency_ms']['p50']:.3f} ms = "
        f"{(sg['overhead_vs_full_path'] or 0):.1%} of the full path (path {d['full_path']})"
        + (f"; {sg['time_share']:.1%} of a full-path frame's time for {sg['madds_share']:.1%} of its MAdds"
           if sg.get("time_share") is not None and sg.get("madds_share") is not None else ""),
        f"end to end per frame: capture {e2e['capture_ms']['mean']:.2f} + inference "
        f"{e2e['inference_ms']['mean']:.2f} + post {e2e['post_ms']['mean']:.2f} = "
        f"{e2e['frame_ms']['mean']:.2f} ms mean (pure inference reported apart above)",
        f"engine memory: files {mem['files_total_bytes'] / 1e6:.2f} MB"
        + (f", session RSS +{mem['session_rss_delta_bytes'] / 1e6:.1f} MB"
           if "session_rss_delta_bytes" in mem else "")
        + (f", weights shared by every graph {mem['backend_shared_weights_bytes'] / 1e6:.1f} MB"
           if "backend_shared_weights_bytes" in mem else ""),
    ] + startup_lines(data)


def startup_lines(data: dict[str, Any]) -> list[str]:
    """Start-up (issue 10): loading and warming the engines, as the runner timed it."""
    start = data.get("startup") or {}
    if "total_s" not in start:
        return []
    parts = " + ".join(f"{k.removesuffix('_s')} {start[k]:.2f} s" for k in ("load_s", "warmup_s") if k in start)
    return [f"start-up: {start['total_s']:.2f} s" + (f" ({parts})" if parts else "")]


def headline(data: dict[str, Any]) -> list[str]:
    """The headline first, then the lines behind it."""
    return [speedup_line(data), *detail_lines(data)]


def run_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The machine and the run's settings as (field, value) rows: every key the JSON has."""
    def text(v: Any) -> str:
        return ", ".join(map(str, v)) if isinstance(v, (list, tuple)) else "-" if v is None else str(v)

    rows = [("bundle", data["bundle"]), ("backend", data["backend"])]
    rows += [(k, text(v)) for k, v in data.get("settings", {}).items()]
    rows += [(k, text(v)) for k, v in data["machine"].items() if k != "backend"]
    return rows


def render_bench(result: BenchResult, console: Any) -> None:
    from rich import box
    from rich.table import Table

    data = result.data
    # Compact (three significant digits, no outer padding) so the 12 trtexec columns fit 80
    # characters even on a slow machine.
    table = Table(title=f"{data['model']} {data['input_size'][0]}x{data['input_size'][1]} "
                        f"({data['backend']}), latency ms per graph", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1), collapse_padding=True)
    for i, col in enumerate(HEADER):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
    for row in summary_rows(data, digits=None):
        table.add_row(*row)
    console.print(table)
    for line in detail_lines(data):
        console.print(line, highlight=False)
    console.print(f"[bold]{speedup_line(data)}[/]", highlight=False)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {w}", highlight=False)


def _plots(result: BenchResult, out: Path) -> None:
    require("matplotlib", "viz")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = result.data
    paths = data["paths"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    x = [p["madds"] / 1e9 for p in paths]
    y = [p["frame_p50_ms"] for p in paths]
    ax.plot(x, y, "o-")
    for p, xi, yi in zip(paths, x, y):
        ax.annotate(str(p["index"]), (xi, yi), textcoords="offset points", xytext=(4, 4))
    ax.set_xlabel("GMAC per frame (stem + gate + path)")
    ax.set_ylabel("p50 latency ms (stem/gate + path)")
    ax.set_title("latency per path vs MAdds")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out / PLOTS[0], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 3.5))
    for name, smp in result.samples.items():
        if name in ("dynamic", "static"):
            continue
        ax.hist(smp, bins=40, histtype="step", label=name)
    ax.set_xlabel("latency ms")
    ax.set_ylabel("count")
    ax.set_title("latency histograms per graph")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / PLOTS[1], dpi=100)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 3.5))
    dist = data["dynamic"]["path_distribution"]
    ax.bar(list(dist), [v * 100 for v in dist.values()])
    ax.set_xlabel("path")
    ax.set_ylabel("% of frames")
    ax.set_title(f"path mix ({data['dynamic']['frames']} frames)")
    fig.tight_layout()
    fig.savefig(out / PLOTS[2], dpi=100)
    plt.close(fig)


def _title(data: dict[str, Any]) -> str:
    return f"Latency per gating path: {data['model']} at {data['input_size'][0]}x{data['input_size'][1]}"


def markdown(result: BenchResult) -> str:
    """The report as Markdown: headline, warning, details, the per-graph table, plots, machine."""
    data = result.data
    lines = [f"# {_title(data)}", "", f"**{speedup_line(data)}**", ""]
    lines += [f"> **warning:** {w}" for w in result.warnings] + ([""] if result.warnings else [])
    lines += [f"- {line}" for line in detail_lines(data)]
    lines += ["", "## Latency per graph (ms)", "", TABLE_NOTE, "",
              "| " + " | ".join(HEADER) + " |", "|---|" + "---:|" * (len(HEADER) - 1)]
    lines += ["| " + " | ".join(r) + " |" for r in summary_rows(data)]
    lines += ["", "## Plots", "", *[f"![{p}]({p})" for p in PLOTS]]
    lines += ["", "## Machine and run", "", "| field | value |", "|---|---|"]
    lines += [f"| {k} | {v.replace('|', '/')} |" for k, v in run_rows(data)]
    return "\n".join(lines) + "\n"


CSS = """
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:2em auto;max-width:1100px;
     padding:0 1.5em;color:#1d2430;line-height:1.45}
h1{font-size:1.5em;margin-bottom:.6em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #dde;padding-bottom:.2em}
.headline{background:#eef5ff;border-left:5px solid #2f6fdb;padding:.8em 1.1em;margin:1em 0}
.headline .big{font-size:2.1em;font-weight:700;color:#1f4fa8}
.headline .sub{font-size:1.05em;margin-top:.2em}
.warn{background:#fff6e0;border-left:5px solid #d99a00;padding:.6em 1em;margin:1em 0}
ul.details{padding-left:1.2em}ul.details li{margin:.25em 0}
table{border-collapse:collapse;font-size:.92em}
td,th{border:1px solid #d5d9e0;padding:4px 10px}th{background:#f1f3f7}
table.num td{text-align:right;font-variant-numeric:tabular-nums}table.num td:first-child{text-align:left}
table.kv td:first-child{color:#556;white-space:nowrap}
code{white-space:nowrap;font-size:1.05em}.note{color:#556;font-size:.9em;margin:.3em 0 .6em}
.scroll{overflow-x:auto}
.plots{display:flex;flex-wrap:wrap;gap:12px}
.plots figure{margin:0;flex:1 1 320px;border:1px solid #e3e6ec;padding:6px}
.plots img{width:100%;height:auto}figcaption{font-size:.85em;color:#556;text-align:center}
"""

FLAG = re.compile(r"(--[a-z][a-z-]*)")
PLOT_CAPTIONS = {"latency_vs_madds.png": "p50 latency per path vs its MAdds",
                 "latency_hist.png": "latency distribution per graph",
                 "path_mix.png": "paths the gate chose"}


def html_report(result: BenchResult) -> str:
    """The report as one HTML page (plots beside it): headline first, one warning, the
    details, the per-graph table, the plots, then the machine as a table."""
    data = result.data
    e = html.escape
    d = data["dynamic"]
    speedup = d.get("speedup")
    if speedup:
        change = 1 - 1 / speedup
        big = f"x{speedup:.2f} speed-up" if change >= 0 else f"x{speedup:.2f}: dynamic is slower"
    else:
        big = "speed-up not measured"
    sub = (f"dynamic {d['mean_latency_ms']:.3f} ms vs static (full path {d['full_path']}) "
           f"{d['static_latency_ms']:.3f} ms mean inference per frame, on the same {d['frames']} frames")
    # flags stay whole on one line (a browser would break "--duration" after its dashes)
    warns = "".join("<div class='warn'><b>warning:</b> " + FLAG.sub(r"<code>\1</code>", e(w)) + "</div>"
                    for w in result.warnings)
    details = "".join(f"<li>{e(line)}</li>" for line in detail_lines(data))
    head = "".join(f"<th>{e(h)}</th>" for h in HEADER)
    rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in r) + "</tr>" for r in summary_rows(data))
    plots = "".join(f"<figure><img src='{p}' alt='{e(PLOT_CAPTIONS[p])}'><figcaption>{e(PLOT_CAPTIONS[p])}"
                    "</figcaption></figure>" for p in PLOTS)
    machine = "".join(f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in run_rows(data))
    title = e(_title(data))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>{CSS}</style>"
            f"</head><body><h1>{title}</h1>"
            f"<div class='headline'><div class='big'>{e(big)}</div><div class='sub'>{e(sub)}</div></div>"
            f"{warns}<ul class='details'>{details}</ul>"
            f"<h2>Latency per graph (ms)</h2><p class='note'>{e(TABLE_NOTE)}</p>"
            f"<div class='scroll'><table class='num'><tr>{head}</tr>{rows}</table></div>"
            f"<h2>Plots</h2><div class='plots'>{plots}</div>"
            f"<h2>Machine and run</h2><table class='kv'>{machine}</table></body></html>\n")


def write_report(result: BenchResult, directory: str | Path) -> list[Path]:
    """Write report.md, report.html and the PNG plots into `directory`."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _plots(result, out)
    (out / "report.md").write_text(markdown(result), encoding="utf-8")
    (out / "report.html").write_text(html_report(result), encoding="utf-8")
    return [out / "report.md", out / "report.html", *(out / p for p in PLOTS)]
