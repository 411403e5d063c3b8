"""`edgefuse bench --bundle BUNDLE`: latency per gating path, stem/gate overhead, and the
dynamic speed-up over the static full path, measured in one run."""

from __future__ import annotations

from typing import Optional

import typer

from edgefuse.cli.common import console
from edgefuse.cli.run import ON_MISMATCH_HELP, SHARE_WEIGHTS_HELP


def bench(
    bundle: str = typer.Option(..., "--bundle", help="Bundle folder written by `edgefuse export`."),
    backend: str = typer.Option("ort", "--backend", help="ort (default), tensorrt or torch."),
    camera: str = typer.Option("synthetic", "--camera", help="Frames for the path mix (default: synthetic scenes)."),
    frames: int = typer.Option(100, "--frames", help="Frames for the dynamic vs static comparison."),
    warmup: int = typer.Option(20, "--warmup", help="Untimed runs of each graph first."),
    iterations: int = typer.Option(200, "--iterations", help="Timed runs of each graph."),
    duration: Optional[float] = typer.Option(None, "--duration", help="Seconds per graph instead of --iterations."),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads (0: its default)."),
    providers: str = typer.Option("auto", "--providers", help="ort only: auto, or e.g. cuda,cpu."),
    share_weights: bool = typer.Option(True, "--share-weights/--no-share-weights", help=SHARE_WEIGHTS_HELP),
    on_mismatch: str = typer.Option("refuse", "--on-mismatch", help=ON_MISMATCH_HELP),
    json_out: Optional[str] = typer.Option(None, "--json", help="Write the results as JSON."),
    report: Optional[str] = typer.Option(None, "--report", help="Write a Markdown + HTML report with plots here."),
) -> None:
    """Time every graph of a bundle (trtexec-style) and the dynamic path mix on real frames."""
    import json
    from pathlib import Path

    from edgefuse.runtime.bench import BenchConfig, run_bench
    from edgefuse.runtime.report import render_bench, write_report

    config = BenchConfig(bundle=bundle, backend=backend, threads=threads, providers=providers,
                         share_weights=share_weights, on_mismatch=on_mismatch,
                         camera=camera, frames=frames, warmup=warmup, iterations=iterations, duration=duration)
    result = run_bench(config, log=lambda s: console.print(f"[dim]{s}[/]"))
    render_bench(result, console)
    if json_out:
        Path(json_out).parent.mkdir(parents=True, exist_ok=True)
        Path(json_out).write_text(json.dumps(result.data, indent=2) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}")
    if report:
        files = write_report(result, report)
        console.print(f"wrote {files[0]} and {len(files) - 1} more files")


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)
