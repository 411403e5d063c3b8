"""Human output never cuts a name (issue 9): every command's tables, piped (natural width)
and in an 80-column terminal (names kept whole, anything too wide folds instead of "…").
Cheap commands run for real; the expensive ones' rendering functions get representative
data (long names, slow-machine latencies). (`info NAME` prints only numbers under its
title; measuring its costs takes seconds, so it is left to tests/models/test_costs.py.) `inspect` and the export summary are checked on
a real bundle in tests/export/test_cli.py."""

from __future__ import annotations

import io
import re

import pytest
from rich.table import Table

from edgefuse.cli.common import CliConsole, console
from edgefuse.cli.main import main


def _column(text: str, index: int) -> str:
    """The text of one table column, its folded pieces joined."""
    rows = [re.split("[│┃]", line) for line in text.splitlines()]
    return "".join(cells[index].strip() for cells in rows if len(cells) > index + 1)


def test_console_folds_a_name_too_wide_for_the_terminal(monkeypatch):
    monkeypatch.setenv("COLUMNS", "40")
    out = io.StringIO()
    con = CliConsole(file=out, force_terminal=True, width=40, color_system=None)
    name = "a-model-name-much-longer-than-forty-columns-" * 2
    table = Table()
    table.add_column("name", no_wrap=True)
    table.add_column("input", no_wrap=True)
    table.add_row(name, "480x640")
    con.print(table)
    text = out.getvalue()
    assert "…" not in text and max(map(len, text.splitlines())) <= 40
    assert _column(text, 1) == "name" + name and _column(text, 2) == "input480x640"


def test_console_off_a_terminal_prints_tables_and_lines_whole(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    out = io.StringIO()
    con = CliConsole(file=out, color_system=None)
    assert not con.is_terminal
    row = [f"column-{i}-value" for i in range(12)]
    table = Table()
    for i in range(12):
        table.add_column(f"c{i}", no_wrap=True)
    table.add_row(*row)
    con.print(table)
    path = "/a/very/long/path/" + "x" * 100 + "/model.safetensors"
    con.print(f"weights: {path}  test mIoU 36.00")
    lines = out.getvalue().splitlines()
    assert any(all(v in line for v in row) for line in lines)    # the row on one line
    assert f"weights: {path}  test mIoU 36.00" in lines           # text not wrapped either
    assert console.width > 0   # the shared console is a CliConsole
    assert isinstance(console, CliConsole)


@pytest.mark.parametrize("argv", [["info"], ["info", "--weights"]], ids=" ".join)
def test_info_keeps_names(output_mode, capsys, argv):
    from edgefuse.models.registry import list_configs
    from edgefuse.weights import list_weights

    assert main(argv) == 0
    text = capsys.readouterr().out
    if argv == ["info"]:
        names = list_configs()
    else:
        names = [w["name"] for w in list_weights()] + [w["model"] for w in list_weights()]
    output_mode.assert_whole(text, names)


def test_bench_table_keeps_every_column(output_mode, capsys, slow_bench_result):
    from edgefuse.runtime.report import HEADER, render_bench

    render_bench(slow_bench_result, console)
    text = capsys.readouterr().out
    table = text.split("path mix")[0]
    header = next(line for line in table.splitlines() if line.split()[:2] == ["graph", "GMAC"])
    assert header.split() == HEADER        # the cv column is not cropped off the edge
    output_mode.assert_whole(text, [f"path_{k}" for k in range(9)] + ["stem_gate", "speed-up x1.265"])
    assert text.count("coefficient of variation") == 1


def test_run_summary_keeps_names(output_mode, capsys):
    from edgefuse.runtime.summary import RunSummary, render_summary

    s = RunSummary(paths=list(range(8)), frames=300, wall_s=11.3)
    for k in range(8):
        s.per_path[k] = [1234.5 + k] * 30
    render_summary(s, console)
    output_mode.assert_whole(capsys.readouterr().out, ["p50 ms", "p99 ms", "share", "1234.50"])


def test_eval_tables_keep_class_names(output_mode, capsys):
    from edgefuse.data.classes import SUNRGBD37
    from edgefuse.eval.report import report_table

    report = {"frames": 5050, "miou": 0.4812, "pixel_acc": 0.8123, "mean_acc": 0.6012,
              "path_ratio": [0.1, 0.2, 0.3, 0.2, 0.2], "mean_madds": 41.2e9,
              "per_class_iou": {n: 0.5 for n in SUNRGBD37},
              "subsets": {"easy": {"frames": 2500, "miou": 0.5, "path_ratio": [0.2] * 5, "mean_madds": 35e9},
                          "hard": {"frames": 2550, "miou": 0.4, "path_ratio": [0.2] * 5, "mean_madds": 47e9}}}
    console.print(report_table(report, title="runs/esanet-sun/model.safetensors on data/sunrgbd/test"))
    text = capsys.readouterr().out
    # class names with a space may wrap at it in a terminal; piped they are whole
    names = [n for n in SUNRGBD37 if output_mode.name == "pipe" or " " not in n]
    output_mode.assert_whole(text, names + ["0.10 0.20 0.30 0.20 0.20"])
