"""The output of `edgefuse ros --check`: one table of the node's inputs, the colour/depth
pairing, then the verdicts, each with its fix (ros_bridge/inputs_check.py judges)."""

from __future__ import annotations

from typing import Any

from rich.markup import escape
from rich.table import Table

from edgefuse.ros_bridge.inputs_check import Level, Report

COLUMNS = ("input", "topic", "pubs", "type", "encoding", "size", "Hz", "age ms", "jitter ms", "frame_id",
           "QoS offered -> node")


def check_table(report: Report) -> Table:
    table = Table(title=f"edgefuse ros --check: the node's inputs over {report.seconds:g} s")
    for name in COLUMNS:
        table.add_column(name, no_wrap=name in ("topic", "frame_id"),
                         justify="right" if name in ("pubs", "Hz", "age ms", "jitter ms") else "left")
    for r in report.rows:
        table.add_row(*(escape(v) for v in (r.role, r.topic, r.publishers, r.type, r.encoding, r.size, r.rate,
                                            r.age, r.jitter, r.frame_id, r.qos)))
    return table


def render_check(report: Report, console: Any) -> None:
    console.print(check_table(report))
    p = report.pairing
    if p is not None:
        offset = "-" if p.median_offset_ms is None else f"{p.median_offset_ms:.1f} ms"
        console.print(f"colour/depth pairs within sync_slop: {p.paired}/{p.colour} ({p.share:.0%}), "
                      f"median depth - colour stamp offset {offset}", highlight=False)
    for v in report.verdicts:
        mark = "[bold red]problem[/]" if v.level is Level.PROBLEM else "[yellow]warning[/]"
        console.print(f"{mark} {escape(v.topic)}: {escape(v.what)}", highlight=False)
        console.print(f"  fix: {escape(v.fix)}", highlight=False)
    if report.ok:
        console.print("[green]ok[/]: the node would run well on these inputs"
                      + (f" ({len(report.verdicts)} warning(s))" if report.verdicts else ""), highlight=False)
    else:
        console.print(f"[bold red]{len(report.problems)} problem(s)[/]: the node would not run well", highlight=False)
