"""The bench report reads like a report (issue 9): the headline (dynamic vs static and the
speed-up) first, one variation warning naming the noisy graphs, the per-graph table, the
plots, and the machine and run settings as a table, in Markdown and in HTML."""

from __future__ import annotations

import re

from edgefuse.runtime.report import PLOTS, html_report, markdown


def test_markdown_order_and_machine_table(slow_bench_result):
    md = markdown(slow_bench_result)
    lines = md.splitlines()
    assert lines[0].startswith("# Latency per gating path: dynmm-modality-r18-custom-long-name at 480x640")
    first = next(line for line in lines[1:] if line.strip())
    assert "speed-up x1.265" in first and "1210.250 ms" in first and "1530.750 ms" in first
    assert md.count("warning") == 1 and "stem_gate 3.1%, path_0 4.0%" in md
    order = [md.index(s) for s in ("speed-up", "warning", "path mix", "## Latency per graph", "| path_8 |",
                                   "## Plots", PLOTS[0], "## Machine and run", "| cpu | ARMv8")]
    assert order == sorted(order)
    assert "{'" not in md and "TensorrtExecutionProvider, CUDAExecutionProvider" in md


def test_html_order_one_warning_machine_table(slow_bench_result):
    page = html_report(slow_bench_result)
    text = re.sub(r"<style>.*?</style>", "", page, flags=re.S)
    assert text.count("class='warn'") == 1
    order = [text.index(s) for s in ("class='headline'", "x1.26 speed-up", "class='warn'", "path mix",
                                     "<table class='num'>", "path_8", "class='plots'", PLOTS[2],
                                     "<table class='kv'>", "ARMv8 Processor")]
    assert order == sorted(order)
    assert "{'" not in text and "{&#x27;" not in text     # no dict repr anywhere
    assert "<td>onnxruntime</td><td>1.18.0</td>" in text


def test_slower_dynamic_says_so(slow_bench_result):
    d = slow_bench_result.data["dynamic"]
    d["mean_latency_ms"], d["static_latency_ms"] = 1500.0, 1200.0
    d["speedup"] = 1200.0 / 1500.0
    assert "dynamic 25.0% slower" in markdown(slow_bench_result)
    assert "dynamic is slower" in html_report(slow_bench_result)
