"""The ROS 1 node under a real roscore, fed 480x640 colour + aligned depth at camera rates.

    python benchmarks/ros_node.py [--model dynmm-tiny-synth | --bundle DIR] [--rates 15 30]
        [--seconds 20] [--size 480x640] [--threads 1] [--mask-color] [--tag TAG]

Starts its own roscore (free port, private ROS_HOME), the node (`edgefuse ros --ros 1`) and,
in this process, a publisher of pre-rendered synthetic RGB-D frames (stamped with the time of
publishing) and a subscriber to ~mask and ~frame_info. Per rate, after a warm-up:
  - output rate and drop rate (masks received / images sent);
  - input-stamp-to-publish delay p50/p99 (the node's frame_info) and stamp-to-receipt at the
    subscriber;
  - the share of a frame spent converting and publishing messages (decoding + preparing,
    `capture`, and resizing + encoding + publishing the mask, `post`) against inference
    (stem/gate + path). Goal (issue 12): under 15% of the inference time.
Writes benchmarks/results/ros_node_<model>_ros1[_<tag>].{json,md} with the command, machine,
date and load. Needs ROS 1 (rospy, roscore): `make test` as root installs Debian's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, machine_info, write_result  # noqa: E402

GOAL_SHARE = 0.15
RESULTS = Path(__file__).parent / "results"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _frames(size: tuple[int, int], n: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Synthetic RGB-D frames (the renderer the shipped weights were trained on)."""
    from edgefuse.cameras import open_source

    with open_source("synthetic:5", size=size, frames=n) as src:
        return [(np.ascontiguousarray(f.rgb), np.ascontiguousarray(f.depth)) for f in src]


def _pct(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def measure(rate: float, seconds: float, warmup: float, frames, node: str, mask_color: bool) -> dict:
    import rospy
    from sensor_msgs.msg import Image
    from std_msgs.msg import String

    masks: list[tuple[int, int]] = []          # (stamp ns, receipt ns)
    infos: list[dict] = []
    subs = [rospy.Subscriber(f"{node}/mask", Image, lambda m: masks.append((m.header.stamp.to_nsec(), time.time_ns())),
                             queue_size=1000, buff_size=1 << 24),
            rospy.Subscriber(f"{node}/frame_info", String, lambda m: infos.append(json.loads(m.data)), queue_size=1000)]
    if mask_color:
        subs.append(rospy.Subscriber(f"{node}/mask_color", Image, lambda m: None, queue_size=10, buff_size=1 << 24))
    color = rospy.Publisher("/camera/color/image_raw", Image, queue_size=1)
    depth = rospy.Publisher("/camera/aligned_depth_to_color/image_raw", Image, queue_size=1)
    while color.get_num_connections() == 0 or depth.get_num_connections() == 0:
        time.sleep(0.05)
    time.sleep(1.0)
    h, w = frames[0][0].shape[:2]
    msgs = []
    for rgb, d in frames:
        c = Image(height=h, width=w, encoding="rgb8", is_bigendian=0, step=3 * w, data=rgb.tobytes())
        dm = Image(height=h, width=w, encoding="16UC1", is_bigendian=0, step=2 * w, data=d.tobytes())
        c.header.frame_id = dm.header.frame_id = "camera_color_optical_frame"
        msgs.append((c, dm))
    sent: list[int] = []
    start = time.monotonic()
    counted_from = time.time_ns() + int(warmup * 1e9)
    i = 0
    while time.monotonic() - start < warmup + seconds:
        c, dm = msgs[i % len(msgs)]
        stamp = rospy.Time.from_sec(time.time())
        c.header.stamp = dm.header.stamp = stamp
        depth.publish(dm)
        color.publish(c)
        if stamp.to_nsec() >= counted_from:
            sent.append(stamp.to_nsec())
        i += 1
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
    time.sleep(1.0)
    for s in subs:
        s.unregister()
    color.unregister()
    depth.unregister()
    got = [(s, r) for s, r in masks if s >= counted_from]
    rec = [r for r in infos if r["stamp_ns"] >= counted_from]
    lat = {k: [r["latency_ms"][k] for r in rec] for k in ("capture", "gate", "path", "post", "total")}
    lat["decode"] = [r["decode_ms"] for r in rec]
    lat["prepare"] = [c - d for c, d in zip(lat["capture"], lat["decode"])]
    inference = [g + p for g, p in zip(lat["gate"], lat["path"])]
    convert = [d + p for d, p in zip(lat["decode"], lat["post"])]
    delay = [r["publish_delay_ms"] for r in rec]
    receipt = [(r - s) / 1e6 for s, r in got]
    share = float(np.mean(convert) / np.mean(inference)) if rec else None
    return {
        "rate_hz": rate, "seconds": seconds, "images_sent": len(sent), "masks_received": len(got),
        "output_rate_hz": len(got) / seconds, "drop_rate": 1 - len(got) / len(sent) if sent else None,
        "dropped_in_node": int(sum(r["dropped"] for r in rec)),
        "stamp_to_publish_ms": {"p50": _pct(delay, 50), "p99": _pct(delay, 99)},
        "stamp_to_receipt_ms": {"p50": _pct(receipt, 50), "p99": _pct(receipt, 99)},
        "queue_ms_p50": _pct([r["queue_ms"] for r in rec], 50),
        "stage_mean_ms": {k: float(np.mean(v)) if v else None for k, v in lat.items()},
        "inference_mean_ms": float(np.mean(inference)) if rec else None,
        "convert_publish_mean_ms": float(np.mean(convert)) if rec else None,
        "convert_publish_share": share,
        "with_prepare_share": float((np.mean(convert) + np.mean(lat["prepare"])) / np.mean(inference)) if rec else None,
        "goal_met": share is not None and share < GOAL_SHARE,
        "path_mix": {str(k): int(v) for k, v in zip(*np.unique([r["path"] for r in rec], return_counts=True))},
    }


def markdown(result: dict) -> str:
    lines = [f"# ROS 1 node: {result['model']} ({result['size']} frames, {result['threads']} ORT thread(s))", "",
             f"`{result['machine']['command']}`", "",
             f"{result['machine']['date']}, {result['machine'].get('cpu_model', '')} x{result['machine']['cpu_count']}, "
             f"load {result['load_before']} -> {result['load_after']}", "",
             "| rate | out Hz | drop rate | stamp->publish p50 / p99 ms | stamp->receipt p50 / p99 ms | "
             "inference ms | convert+publish ms | share (goal < 15%) |",
             "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["runs"]:
        f = (lambda v: "-" if v is None else f"{v:.1f}")
        lines.append(f"| {r['rate_hz']:g} Hz | {r['output_rate_hz']:.1f} | {r['drop_rate']:.1%} | "
                     f"{f(r['stamp_to_publish_ms']['p50'])} / {f(r['stamp_to_publish_ms']['p99'])} | "
                     f"{f(r['stamp_to_receipt_ms']['p50'])} / {f(r['stamp_to_receipt_ms']['p99'])} | "
                     f"{f(r['inference_mean_ms'])} | {f(r['convert_publish_mean_ms'])} | "
                     f"{r['convert_publish_share']:.1%} {'(met)' if r['goal_met'] else '(not met)'} |")
    lines += ["", "With the preparing (resize to the bundle's input size, tensors) counted too: " + ", ".join(
        f"{r['rate_hz']:g} Hz {r['with_prepare_share']:.1%}" for r in result["runs"]) + " of the inference time.",
        "", "Stage means (ms): " + "; ".join(
        f"{r['rate_hz']:g} Hz: " + ", ".join(f"{k} {v:.2f}" for k, v in r["stage_mean_ms"].items() if v is not None)
        for r in result["runs"]), "",
        "convert+publish = decode (colour + depth messages to arrays) + post (mask back to the camera size, "
        "encoding, publishing); prepare = capture - decode (checks, resize to the bundle's size, tensors); "
        "inference = stem/gate + path."
        + (" The load average was above the core count while this ran: the numbers are pessimistic."
           if max(result["load_before"][0], result["load_after"][0]) > result["machine"]["cpu_count"] else "")]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    p.add_argument("--model", default="dynmm-tiny-synth", help="shipped weights / model to export")
    p.add_argument("--bundle", help="an existing bundle (skips the export)")
    p.add_argument("--rates", type=float, nargs="+", default=[15.0, 30.0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--size", default="480x640")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mask-color", action="store_true", help="also subscribe to ~mask_color (computed lazily)")
    p.add_argument("--tag", default="")
    a = p.parse_args()

    from edgefuse.cli.common import parse_size

    size = parse_size(a.size)
    work = Path(tempfile.mkdtemp(prefix="ros_node_bench_"))
    bundle = a.bundle
    if bundle is None:
        from edgefuse.export.exporter import export_bundle

        bundle = str(work / "bundle")
        print(f"exporting {a.model} -> {bundle}", flush=True)
        export_bundle(a.model, bundle, verify_frames=1, force=True)
    frames = _frames(size, 20)
    port = _free_port()
    env = dict(os.environ, ROS_MASTER_URI=f"http://127.0.0.1:{port}", ROS_HOSTNAME="127.0.0.1",
               ROS_HOME=str(work), ROS_LOG_DIR=str(work / "log"))
    os.environ.update({k: env[k] for k in ("ROS_MASTER_URI", "ROS_HOSTNAME", "ROS_HOME", "ROS_LOG_DIR")})
    core = subprocess.Popen(["roscore", "-p", str(port)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.STDOUT, start_new_session=True)
    node_log = open(work / "node.log", "w")
    node = None
    try:
        while subprocess.run(["rosparam", "get", "/run_id"], env=env, capture_output=True).returncode != 0:
            time.sleep(0.2)
        node = subprocess.Popen([sys.executable, "-m", "edgefuse.cli.main", "ros", "--bundle", bundle, "--ros", "1",
                                 "--threads", str(a.threads), "__name:=edgefuse_bench"], env=env, stdout=node_log,
                                stderr=subprocess.STDOUT, start_new_session=True)
        import rospy

        rospy.init_node("ros_node_bench", anonymous=True, disable_signals=True)
        load_before = [round(x, 2) for x in os.getloadavg()]
        runs = []
        for rate in a.rates:
            print(f"{rate:g} Hz for {a.seconds:g} s ...", flush=True)
            runs.append(measure(rate, a.seconds, a.warmup, frames, "/edgefuse_bench", a.mask_color))
            print(json.dumps(runs[-1]), flush=True)
        load_after = [round(x, 2) for x in os.getloadavg()]
        rospy.signal_shutdown("done")
    finally:
        if node is not None:
            _stop(node)
        _stop(core)
        node_log.close()
    from edgefuse.export.bundle import load_bundle

    model = Path(str(load_bundle(bundle).manifest.source)).stem
    result = {"model": model, "size": a.size, "threads": a.threads, "mask_color_subscribed": a.mask_color,
              "goal_share": GOAL_SHARE, "load_before": load_before, "load_after": load_after,
              "machine": machine_info(), "runs": runs}
    stem = f"ros_node_{model}_ros1" + (f"_{a.tag}" if a.tag else "")
    write_result(RESULTS, stem, result, markdown(result), a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
