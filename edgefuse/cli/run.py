"""`edgefuse run --bundle BUNDLE --camera SOURCE`: run a bundle per frame (the robot's job)."""

from __future__ import annotations

from typing import Optional

import typer

from edgefuse.cli.common import console


def run(
    bundle: str = typer.Option(..., "--bundle", help="Bundle folder written by `edgefuse export`."),
    camera: str = typer.Option("synthetic", "--camera",
                               help="realsense[:SERIAL], bag:FILE, rosbag:FILE, folder:DIR[:SPLIT], synthetic[:SEED]."),
    frames: Optional[int] = typer.Option(None, "--frames", help="Stop after N frames (default: until the source ends)."),
    backend: str = typer.Option("ort", "--backend", help="ort (default), tensorrt or torch."),
    budget_ms: Optional[float] = typer.Option(None, "--budget-ms",
                                              help="Latency budget for stem/gate + path; biases the gate toward cheaper paths in closed loop."),
    min_depth_valid: float = typer.Option(0.5, "--min-depth-valid",
                                          help="Below this fraction of valid depth pixels, take the path relying least on depth."),
    realtime: bool = typer.Option(False, "--realtime", help="Pace recordings / folders like the camera did."),
    show: bool = typer.Option(False, "--show", help="OpenCV window: overlay, path, FPS (q quits)."),
    save_video: Optional[str] = typer.Option(None, "--save-video", help="Write the overlay video (.mp4 / .avi)."),
    save_masks: Optional[str] = typer.Option(None, "--save-masks", help="Write label PNGs and colour masks here."),
    log: Optional[str] = typer.Option(None, "--log", help="Write one JSON record per frame (JSON lines)."),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads (0: its default)."),
    providers: str = typer.Option("auto", "--providers", help="ort only: auto, or e.g. cuda,cpu / tensorrt."),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="torch only: the exporting checkpoint."),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Capture -> stem/gate -> choose path -> path engine -> labels -> sinks, per frame."""
    import json
    import logging

    from edgefuse.runtime.pipeline import RunConfig
    from edgefuse.runtime.pipeline import run as run_pipeline
    from edgefuse.runtime.summary import render_summary

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    backend_options = {"ort": {"providers": providers}, "torch": {"checkpoint": checkpoint}}.get(backend, {})
    config = RunConfig(bundle=bundle, camera=camera, frames=frames, backend=backend, budget_ms=budget_ms,
                       min_depth_valid=min_depth_valid, realtime=realtime, show=show, save_video=save_video,
                       save_masks=save_masks, log=log, threads=threads,
                       backend_options={k: v for k, v in backend_options.items() if v is not None})
    summary = run_pipeline(config)
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        render_summary(summary, console)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
