"""`edgefuse run --bundle BUNDLE --camera SOURCE`: run a bundle per frame (the robot's job)."""

from __future__ import annotations

from typing import Optional

import typer

from edgefuse.cli.common import console

SHARE_WEIGHTS_HELP = ("ort only: every session reads the bundle's one copy of the weights (default). "
                     "--no-share-weights gives each graph its own copy, with ONNX Runtime's NCHWc "
                     "layout: ~15% faster fp32 convolutions on x86 for one model's memory per path.")
ON_MISMATCH_HELP = ("tensorrt only: what to do with an engine built by another TensorRT release or for "
                    "another GPU architecture. refuse (default): stop with a message saying what differs; "
                    "rebuild: rebuild it in memory from the bundle's ONNX graph at start-up (minutes on a "
                    "Jetson; the bundle's files are not changed).")

PIPELINE_HELP = ("Overlap the per-frame stages (default): frame N+1 is read and prepared and frame N-1 written "
                 "while frame N is in the engines, so the output rate is set by the slowest stage, not their "
                 "sum. Live cameras and --realtime keep only the newest frame (drops counted); recordings lose "
                 "none. --no-pipeline: one stage after the other.")


def _status_printer():
    """Camera status lines (disconnect / retry / recovery) on stderr, so --json output stays clean."""
    from rich.console import Console
    from rich.markup import escape

    err = Console(stderr=True)
    return lambda message: err.print(f"[yellow]{escape(message)}[/]", highlight=False, soft_wrap=True)


def run(
    bundle: str = typer.Option(..., "--bundle", help="Bundle folder written by `edgefuse export`."),
    camera: str = typer.Option("synthetic", "--camera",
                               help="realsense[:SERIAL], bag:FILE, rosbag:FILE, folder:DIR[:SPLIT], synthetic[:SEED], "
                                    "opencv:INDEX|DEVICE|FILE|URL, openni[:INDEX|FILE.oni], open3d-realsense[:SERIAL], "
                                    "open3d-bag:FILE."),
    calibration: Optional[str] = typer.Option(None, "--calibration",
                                              help="camera.yaml (ROS camera_info, `edgefuse calibrate`): use its "
                                                   "intrinsics, and its depth_to_color to register depth."),
    record: Optional[str] = typer.Option(None, "--record",
                                         help="Live RealSense cameras: also record the stream (realsense: .db3, "
                                              "open3d-realsense: .bag); replay with bag:FILE."),
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
    save_bag: Optional[str] = typer.Option(None, "--save-bag", help="Write the ROS node's outputs (mask, mask_color, "
                                           "frame_info) to a bag: OUT.bag = ROS 1, else a ROS 2 bag folder."),
    bag_inputs: bool = typer.Option(False, "--bag-inputs", help="--save-bag: also write the input colour / depth / "
                                    "camera_info."),
    bag_storage: Optional[str] = typer.Option(None, "--bag-storage", help="--save-bag, ROS 2: mcap (default) or sqlite3."),
    threads: int = typer.Option(0, "--threads", help="ONNX Runtime intra-op threads (0: its default, one per core)."),
    pipelined: bool = typer.Option(True, "--pipeline/--no-pipeline", help=PIPELINE_HELP),
    opencv_threads: int = typer.Option(1, "--opencv-threads", help="OpenCV's threads while pipelined (the pre "
                                       "stage's resizing / depth registration; 0: OpenCV's default)."),
    providers: str = typer.Option("auto", "--providers", help="ort only: auto, or e.g. cuda,cpu / tensorrt."),
    share_weights: bool = typer.Option(True, "--share-weights/--no-share-weights", help=SHARE_WEIGHTS_HELP),
    checkpoint: Optional[str] = typer.Option(None, "--checkpoint", help="torch only: the exporting checkpoint."),
    on_mismatch: str = typer.Option("refuse", "--on-mismatch", help=ON_MISMATCH_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as one JSON object."),
) -> None:
    """Capture -> stem/gate -> choose path -> path engine -> labels -> sinks, per frame."""
    import json
    import logging

    from edgefuse.errors import ConfigError
    from edgefuse.runtime.pipeline import Pipeline, RunConfig
    from edgefuse.runtime.summary import render_summary

    # The live capture's status lines are printed through on_status below, so the log
    # handler leaves them out (not shown twice); its errors still show.
    handler = logging.StreamHandler()
    handler.addFilter(lambda r: not (r.name == "edgefuse.cameras.live" and r.levelno < logging.ERROR))
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", handlers=[handler])
    if (bag_inputs or bag_storage is not None) and not save_bag:
        raise ConfigError("--bag-inputs / --bag-storage need --save-bag OUT")
    # Every flag is checked here (a bad --on-mismatch, --backend or --budget-ms: exit 2)
    # before anything is loaded.
    config = RunConfig(bundle=bundle, backend=backend, threads=threads, providers=providers,
                       share_weights=share_weights, on_mismatch=on_mismatch, checkpoint=checkpoint,
                       budget_ms=budget_ms, min_depth_valid=min_depth_valid,
                       camera=camera, frames=frames, realtime=realtime, show=show, save_video=save_video,
                       save_masks=save_masks, log=log, on_status=_status_printer(), calibration=calibration,
                       record=record, pipeline=pipelined, opencv_threads=opencv_threads)
    pipeline = Pipeline(config)
    if save_bag:
        # The bag holds exactly what the ROS node publishes, so its sink is the node's; the
        # runtime never imports the ROS edge, the command line hands the sink in.
        from edgefuse.ros_bridge.bag_sink import BagSink

        pipeline.add_sink(BagSink(save_bag, pipeline.palette, storage=bag_storage, inputs=bag_inputs))
    summary = pipeline.run()
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2))
    else:
        render_summary(summary, console)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
