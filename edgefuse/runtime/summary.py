"""The end-of-run summary: frames, FPS, drops, and per path count, share and latency
percentiles (what `edgefuse run` prints at the end or on Ctrl-C)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

STAGES = ("capture", "wait", "gate", "path", "post", "total")


@dataclass
class RunSummary:
    paths: list[int]
    frames: int = 0
    skipped: int = 0
    dropped: int = 0
    source_errors: int = 0
    failed: int = 0                        # frames a stage raised on (skipped, the run went on)
    depth_fallbacks: int = 0
    wall_s: float = 0.0
    interrupted: bool = False
    per_path: dict[int, list[float]] = field(default_factory=dict)      # total ms per frame
    stages: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STAGES})
    budget: dict[str, Any] | None = None   # PathPolicy.budget_report() with --budget-ms
    step: str = ""                         # how the per-frame step ran (StageConfig.describe)
    pipeline: dict[str, Any] | None = None   # PipelinedStep.report() when pipelined

    def add(self, path: int, latency_ms: dict[str, float], reason: str) -> None:
        self.frames += 1
        self.per_path.setdefault(path, []).append(latency_ms["total"])
        for k in STAGES:
            self.stages[k].append(latency_ms[k])
        if reason == "depth_fallback":
            self.depth_fallbacks += 1

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def inference_ms(self) -> float | None:
        """Mean stem/gate + path time: 1 / this is the rate the engines alone could give."""
        if not self.stages["gate"]:
            return None
        return float(np.mean(self.stages["gate"]) + np.mean(self.stages["path"]))

    def rate(self) -> dict[str, Any]:
        """Output rate against 1 / mean inference: how close the step comes to the engines'
        own rate (issue 19's goal: >= 0.9 pipelined, when the input is faster)."""
        inf = self.inference_ms
        engine_hz = 1e3 / inf if inf else None
        return {"output_hz": self.fps, "inference_ms": inf, "inference_hz": engine_hz,
                "ratio": self.fps / engine_hz if engine_hz else None}

    def path_rows(self) -> list[dict[str, Any]]:
        rows = []
        for k in self.paths:
            lat = self.per_path.get(k, [])
            pct = [float(v) for v in np.percentile(lat, [50, 90, 99])] if lat else [None] * 3
            rows.append({"path": k, "count": len(lat), "share": len(lat) / self.frames if self.frames else 0.0,
                         "p50_ms": pct[0], "p90_ms": pct[1], "p99_ms": pct[2]})
        return rows

    def to_dict(self) -> dict[str, Any]:
        stage_mean = {k: float(np.mean(v)) if v else None for k, v in self.stages.items()}
        return {"frames": self.frames, "skipped": self.skipped, "dropped": self.dropped,
                "source_errors": self.source_errors, "failed": self.failed, "depth_fallbacks": self.depth_fallbacks,
                "wall_s": self.wall_s, "fps": self.fps, "interrupted": self.interrupted,
                "stage_mean_ms": stage_mean, "rate": self.rate(), "step": self.step, "pipeline": self.pipeline,
                "paths": self.path_rows(), "budget": self.budget}


def budget_line(budget: dict[str, Any] | None) -> str | None:
    """One line on the latency budget's outcome, or None without a budget."""
    if not budget or not budget.get("frames"):
        return None
    b = budget
    held = f"mean stem/gate + path {b['mean_ms']:.2f} ms over {b['frames']} frames"
    if b["feasible"] is False:
        return (f"budget {b['budget_ms']:g} ms NOT feasible: the cheapest path (path {b['cheapest_path']}) takes "
                f"{b['cheapest_ms']:.2f} ms (median of {b['cheapest_frames']} frames); {held}")
    return f"budget {b['budget_ms']:g} ms: {held}"


def render_summary(summary: RunSummary, console: Any) -> None:
    """Print the summary with rich."""
    from rich.table import Table

    s = summary
    head = (f"{s.frames} frames in {s.wall_s:.1f} s = {s.fps:.1f} FPS; dropped {s.dropped}, "
            f"skipped {s.skipped}, camera errors {s.source_errors}, depth fallbacks {s.depth_fallbacks}"
            + (f", failed {s.failed}" if s.failed else "")
            + ("  [interrupted]" if s.interrupted else ""))
    console.print(head)
    line = budget_line(s.budget)
    if line:
        console.print(f"[yellow]{line}[/]" if s.budget and s.budget["feasible"] is False else line)
    if s.frames:
        means = " ".join(f"{k} {np.mean(v):.2f}" for k, v in s.stages.items() if v)
        console.print(f"mean latency per stage (ms): {means}")
        r = s.rate()
        if r["ratio"] is not None:
            console.print(f"output {r['output_hz']:.1f} Hz = {r['ratio']:.2f} x 1 / mean inference "
                          f"({r['inference_ms']:.2f} ms = {r['inference_hz']:.1f} Hz)")
    if s.step:
        console.print(s.step)
    if s.pipeline:   # each stage thread's own time per frame: the slowest sets the output rate
        busy = ", ".join(f"{k} {v['mean_ms']:.2f}" for k, v in s.pipeline["stages"].items() if v["mean_ms"] is not None)
        console.print(f"stage threads busy per frame (ms): {busy}; dropped before inference "
                      f"{s.pipeline['dropped']['before_infer']}")
    table = Table(title="per path (frame total latency)")
    for col in ("path", "count", "share", "p50 ms", "p90 ms", "p99 ms"):
        table.add_column(col, justify="right")
    for r in s.path_rows():
        fmt = (lambda v: "-" if v is None else f"{v:.2f}")
        table.add_row(str(r["path"]), str(r["count"]), f"{r['share']:.1%}", fmt(r["p50_ms"]),
                      fmt(r["p90_ms"]), fmt(r["p99_ms"]))
    console.print(table)
