"""Latency reports per gating path: the terminal table, and `--report DIR` with a Markdown
and an HTML report and PNG plots (latency per path vs MAdds, latency histograms, path mix).
matplotlib is imported only when a report is written (Agg backend: no display needed)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

from edgefuse.errors import require
from edgefuse.runtime.bench import BenchResult

PLOTS = ("latency_vs_madds.png", "latency_hist.png", "path_mix.png")


def _ms(v: float | None, digits: int = 3) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def summary_rows(data: dict[str, Any], digits: int = 3) -> list[list[str]]:
    """Rows of the per-graph table: graph, GMAC, mean, std, min, p50, p90, p95, p99, max, qps, cv."""
    rows = []
    graphs = [("stem_gate", data["stem_gate"].get("madds", 0.0), data["stem_gate"]["latency_ms"])]
    graphs += [(f"path_{p['index']}", p["path_madds"], p["latency_ms"]) for p in data["paths"]]
    for name, madds, s in graphs:
        rows.append([name, f"{madds / 1e9:.3f}"] + [_ms(s[k], digits) for k in
                    ("mean", "std", "min", "p50", "p90", "p95", "p99", "max")]
                    + [f"{s['throughput']:.{max(digits - 2, 0)}f}", f"{s['cv']:.1%}"])
    return rows


HEADER = ["graph", "GMAC", "mean", "std", "min", "p50", "p90", "p95", "p99", "max", "qps", "cv"]


def headline(data: dict[str, Any]) -> list[str]:
    d, e2e = data["dynamic"], data["end_to_end"]
    dist = ", ".join(f"{k}: {v:.0%}" for k, v in d["path_distribution"].items())
    sg = data["stem_gate"]
    lines = [
        f"stem/gate overhead: p50 {sg['latency_ms']['p50']:.3f} ms = "
        f"{(sg['overhead_vs_full_path'] or 0):.1%} of the full path (path {d['full_path']})"
        + (f"; {sg['time_share']:.1%} of a full-path frame's time for {sg['madds_share']:.1%} of its MAdds"
           if sg.get("time_share") is not None and sg.get("madds_share") is not None else ""),
        f"path mix on {d['frames']} frames: {dist} (depth fallbacks {d['depth_fallbacks']})",
        f"dynamic mean {d['mean_latency_ms']:.3f} ms vs static (full path) {d['static_latency_ms']:.3f} ms "
        f"-> speed-up x{d['speedup']:.3f} ({1 - 1 / d['speedup']:.1%} less); expected under the mix "
        f"{d['expected_latency_ms']:.3f} ms"
        + (f"; MAdds predict x{d['predicted_speedup_madds']:.3f} ({d['speedup_realised']:.0%} realised)"
           if d.get("predicted_speedup_madds") and d.get("speedup_realised") else ""),
        f"end to end per frame: capture {e2e['capture_ms']['mean']:.2f} + inference "
        f"{e2e['inference_ms']['mean']:.2f} + post {e2e['post_ms']['mean']:.2f} = "
        f"{e2e['frame_ms']['mean']:.2f} ms mean (pure inference reported apart above)",
        f"engine memory: files {data['memory']['files_total_bytes'] / 1e6:.2f} MB"
        + (f", session RSS +{data['memory']['session_rss_delta_bytes'] / 1e6:.1f} MB"
           if "session_rss_delta_bytes" in data["memory"] else ""),
    ]
    return lines


def render_bench(result: BenchResult, console: Any) -> None:
    from rich import box
    from rich.table import Table

    data = result.data
    # Compact (2 decimals, no outer padding) so the 12 trtexec columns fit 80 characters.
    table = Table(title=f"{data['model']} {data['input_size'][0]}x{data['input_size'][1]} "
                        f"({data['backend']}), latency ms per graph", box=box.SIMPLE_HEAD,
                  pad_edge=False, padding=(0, 1), collapse_padding=True)
    rows = summary_rows(data, digits=2)
    for i, col in enumerate(HEADER):
        width = max(len(col), *(len(r[i]) for r in rows))
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True, min_width=width)
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for line in headline(data):
        console.print(line)
    if len(result.warnings) == 1:
        console.print(f"[yellow]warning:[/] {result.warnings[0]}")
    elif result.warnings:   # one line, not one per graph
        from edgefuse.runtime.stats import CV_WARN

        noisy = [f"{r[0]} {r[-1]}" for r in rows if float(r[-1].rstrip("%")) / 100 > CV_WARN]
        console.print(f"[yellow]warning:[/] coefficient of variation over {CV_WARN:.1%} for "
                      f"{', '.join(noisy)}; the machine is busy or throttling, numbers may not be "
                      "stable (close other work, pin threads, or run longer with --duration)")


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


def markdown(result: BenchResult) -> str:
    data = result.data
    m = data["machine"]
    lines = [f"# Latency per gating path: {data['model']} at {data['input_size'][0]}x{data['input_size'][1]}",
             "", f"Backend `{data['backend']}` on {m['cpu']} ({m.get('affinity') or m['cpu_count']} cores), "
             f"onnxruntime {m['onnxruntime']}, edgefuse {m['edgefuse']}, {m['date']}. Bundle `{data['bundle']}`.",
             "", *[f"- {line}" for line in headline(data)], "",
             "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r) + " |" for r in summary_rows(data)]
    if result.warnings:
        lines += ["", *[f"> warning: {w}" for w in result.warnings]]
    lines += ["", *[f"![{p}]({p})" for p in PLOTS], ""]
    return "\n".join(lines)


def html_report(result: BenchResult) -> str:
    data = result.data
    rows = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in summary_rows(data))
    head = "".join(f"<th>{h}</th>" for h in HEADER)
    items = "".join(f"<li>{html.escape(line)}</li>" for line in headline(data))
    warns = "".join(f"<p class='warn'>warning: {html.escape(w)}</p>" for w in result.warnings)
    imgs = "".join(f"<img src='{p}' alt='{p}'>" for p in PLOTS)
    title = html.escape(f"Latency per gating path: {data['model']}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}.warn{color:#a60}"
            f"img{{max-width:32%;margin:4px}}</style></head><body><h1>{title}</h1><ul>{items}</ul>"
            f"<table><tr>{head}</tr>{rows}</table>{warns}<div>{imgs}</div>"
            f"<p>{html.escape(str(data['machine']))}</p></body></html>\n")


def write_report(result: BenchResult, directory: str | Path) -> list[Path]:
    """Write report.md, report.html and the PNG plots into `directory`."""
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    _plots(result, out)
    (out / "report.md").write_text(markdown(result), encoding="utf-8")
    (out / "report.html").write_text(html_report(result), encoding="utf-8")
    return [out / "report.md", out / "report.html", *(out / p for p in PLOTS)]
