"""`edgefuse ros --bundle B [--backend ...] [--budget-ms MS] [--ros 1|2] [ROS args]`: the
segmentation node (edgefuse.ros_bridge). ROS arguments pass through unchanged: remaps
(`image:=/cam/image`), `__name:=left`, ROS 1 private params (`_sync_slop:=0.05`), ROS 2
`--ros-args -p mask_size:=network`.

`edgefuse ros --check [--seconds S]`: listen to the node's inputs (same parameters and
remaps) without loading a network; a table and verdicts with fixes, exit 1 on problems
(docs/ros-check.md)."""

from __future__ import annotations

from typing import Optional

import typer


def ros(
    ctx: typer.Context,
    bundle: Optional[str] = typer.Option(None, "--bundle", help="Bundle folder (else the node's `bundle` parameter)."),
    backend: Optional[str] = typer.Option(None, "--backend", help="ort (default), tensorrt or torch."),
    budget_ms: Optional[float] = typer.Option(None, "--budget-ms", help="Latency budget for stem/gate + path (ms)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="ONNX Runtime intra-op threads (0: its default)."),
    pipelined: Optional[bool] = typer.Option(None, "--pipeline/--no-pipeline",
                                             help="Overlap decoding / inference / publishing (default: the node's "
                                                  "`pipeline` parameter, on); --no-pipeline runs them in sequence."),
    calibration: Optional[str] = typer.Option(None, "--calibration",
                                              help="camera_info YAML (edgefuse calibrate): its intrinsics replace "
                                                   "camera_info's; with --register-depth its depth_to_color registers "
                                                   "raw depth."),
    register_depth: Optional[bool] = typer.Option(None, "--register-depth/--no-register-depth",
                                                  help="depth_topic is raw (unaligned) depth: register it to colour "
                                                       "with --calibration's extrinsics."),
    ros_version: str = typer.Option("auto", "--ros", help="1 (rospy), 2 (rclpy) or auto ($ROS_VERSION, then "
                                                          "whichever imports)."),
    check: bool = typer.Option(False, "--check", help="Check the node's inputs (topics, QoS, stamps, depth, "
                                                      "camera_info) without loading a network; exit 1 on problems."),
    seconds: Optional[float] = typer.Option(None, "--seconds", help="--check: how long to listen (s; default 5)."),
) -> None:
    """Segmentation masks on ROS topics: ~mask (mono8), ~mask_color, ~overlay, ~frame_info, /diagnostics."""
    from edgefuse.ros_bridge.launcher import foreign_args, run_node

    unknown = foreign_args(list(ctx.args))
    if unknown:   # usage error (exit 2): not an option of ours and not a ROS argument either
        ctx.fail(f"No such option: {unknown[0]} (ROS arguments are NAME:=VALUE remaps or follow --ros-args)")
    overrides = {"bundle": bundle, "backend": backend, "budget_ms": budget_ms, "threads": threads,
                 "pipeline": pipelined, "calibration": calibration, "register_depth": register_depth}
    if seconds is not None and not check:
        ctx.fail("--seconds is an option of --check: edgefuse ros --check --seconds S")
    if check:
        from edgefuse.cli.common import console
        from edgefuse.cli.ros_check import render_check
        from edgefuse.ros_bridge.check import run_check

        report = run_check(ros_version, overrides, list(ctx.args), 5.0 if seconds is None else seconds)
        render_check(report, console)
        raise typer.Exit(0 if report.ok else 1)
    run_node(ros_version, overrides, list(ctx.args))


def register(app: typer.Typer) -> None:
    app.command("ros", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})(ros)
