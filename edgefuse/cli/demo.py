"""`edgefuse demo`: the main job on the embedded default (what `make demo` runs).

Export the shipped DynMM to a bundle, run it on the synthetic camera, print the per-path
latency summary, and write the latency report; everything lands in `demo-out/`. It needs
no hardware and no download, and takes a few minutes on 2 CPU cores.
"""

from __future__ import annotations

import typer

from edgefuse.cli.common import console

SHIPPED = "dynmm-tiny-synth"
FALLBACK = "dynmm-tiny"


def demo(
    frames: int = typer.Option(300, "--frames", help="Frames to run on the synthetic camera."),
    out: str = typer.Option("demo-out", "--out", help="Folder for the bundle, the run log and the report."),
    bench_frames: int = typer.Option(60, "--bench-frames", help="Frames for the dynamic vs static comparison."),
    iterations: int = typer.Option(100, "--iterations", help="Timed runs of each graph in the report."),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads (0: its default)."),
) -> None:
    """Export the shipped DynMM, run it on the synthetic camera, report latency per path."""
    import json
    from pathlib import Path

    from edgefuse.checkpoint import shipped_weights
    from edgefuse.export.exporter import export_bundle
    from edgefuse.runtime.bench import BenchConfig, run_bench
    from edgefuse.runtime.pipeline import RunConfig, run
    from edgefuse.runtime.report import render_bench, write_report
    from edgefuse.runtime.summary import render_summary

    root = Path(out)
    spec = SHIPPED
    if SHIPPED not in shipped_weights():
        spec = FALLBACK
        console.print(f"[yellow]note:[/] shipped weights {SHIPPED!r} are not in this install; using the "
                      f"randomly initialised registry model {FALLBACK!r} (latency is the same, the "
                      "masks and the gate's path mix are not meaningful)")
    bundle = root / "bundle"
    console.rule(f"1/3 export {spec} -> {bundle}")
    export_bundle(spec, bundle, force=True, progress=lambda s: console.print(f"[dim]{s}[/]"))

    console.rule(f"2/3 run on the synthetic camera ({frames} frames)")
    # The synthetic camera renders its looped scenes once (cached for later runs) before the
    # first frame is timed; its status line says so.
    summary = run(RunConfig(bundle=str(bundle), camera="synthetic", frames=frames, threads=threads,
                            log=str(root / "run.jsonl"), on_status=lambda m: console.print(f"[dim]{m}[/]")))
    render_summary(summary, console)

    console.rule("3/3 latency per gating path")
    result = run_bench(BenchConfig(bundle=str(bundle), frames=bench_frames, iterations=iterations,
                                   warmup=10, threads=threads),
                       log=lambda s: console.print(f"[dim]{s}[/]"))
    render_bench(result, console)
    (root / "bench.json").write_text(json.dumps(result.data, indent=2) + "\n", encoding="utf-8")
    files = write_report(result, root / "report")
    console.print(f"[green]demo done[/]: run log {root / 'run.jsonl'}, report {files[0]} "
                  f"({files[1].name} and plots beside it), results {root / 'bench.json'}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
