"""How many 640x480 rgb8 images cross between two ROS 2 processes (rclpy, Fast DDS) per
pairing of publisher and subscriber reliability: why the node's `input_qos: auto` subscribes
reliable to a reliable camera instead of REP-2003's best-effort sensor-data profile.

    python benchmarks/ros2_image_qos.py [--rate 30] [--seconds 4] [--size 480x640]

Runs itself in .venv-ros2 (`make ros2-env`) as a receiver and a sender process per pairing,
with ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and a ROS_DOMAIN_ID of its own; the receiver
only counts (no inference), so a loss is the middleware's. Writes
benchmarks/results/ros2_image_qos.{json,md} with the command, machine, date and load.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, machine_info, write_result  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PAIRS = [("reliable", "best_effort"), ("reliable", "reliable"), ("best_effort", "best_effort")]


def role(a: argparse.Namespace) -> int:
    """One side (in the ROS 2 interpreter): `rx` counts, `tx` publishes."""
    import array

    import numpy as np
    import rclpy
    from rclpy.node import Node
    from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    policy = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
    h, w = (int(v) for v in a.size.split("x"))
    rclpy.init()
    node = Node(f"qos_{a.role}")
    if a.role == "rx":
        got: list[float] = []          # stamp (time of publishing) to receipt, ms
        qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=policy[a.sub])

        def receive(m: Image) -> None:
            got.append((time.time_ns() - (m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec)) / 1e6)

        node.create_subscription(Image, "/qos_bench/image", receive, qos)
        end = time.monotonic() + a.seconds + 8
        while time.monotonic() < end:
            rclpy.spin_once(node, timeout_sec=0.1)
        pct = [float(x) for x in np.percentile(got, [50, 99])] if got else [None, None]
        print(json.dumps({"received": len(got), "latency_ms_p50": pct[0], "latency_ms_p99": pct[1]}), flush=True)
    else:
        qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=policy[a.pub])
        pub = node.create_publisher(Image, "/qos_bench/image", qos)
        while pub.get_subscription_count() == 0:
            time.sleep(0.05)
        time.sleep(0.5)
        data = array.array("B")
        data.frombytes(np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8).tobytes())
        msg = Image(height=h, width=w, encoding="rgb8", step=3 * w)
        msg.data = data
        n = int(a.rate * a.seconds)
        start = time.monotonic()
        for i in range(n):
            msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(time.time_ns(), 1_000_000_000)
            pub.publish(msg)
            time.sleep(max(0.0, start + (i + 1) / a.rate - time.monotonic()))
        print(json.dumps({"sent": n}), flush=True)
        time.sleep(2.0)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    p.add_argument("--rate", type=float, default=30.0)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--size", default="480x640")
    p.add_argument("--fastdds-profile", metavar="XML", help="also run every pairing with this Fast DDS profile "
                   "(FASTRTPS_DEFAULT_PROFILES_FILE) on both sides, e.g. ros_bridge/packages/ros2/edgefuse_ros/"
                   "config/fastdds_shm_large_images.xml")
    p.add_argument("--role", choices=("rx", "tx"), help=argparse.SUPPRESS)
    p.add_argument("--pub", default="reliable", help=argparse.SUPPRESS)
    p.add_argument("--sub", default="best_effort", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.role:
        return role(a)
    python = os.environ.get("EDGEFUSE_ROS2_PYTHON", str(ROOT / ".venv-ros2" / "bin" / "python"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ROS_", "RMW_"))}
    env.update(ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST", ROS_DOMAIN_ID=str(1 + os.getpid() % 100),
               RMW_IMPLEMENTATION="rmw_fastrtps_cpp")
    common = ["--rate", str(a.rate), "--seconds", str(a.seconds), "--size", a.size]
    load_before = [round(x, 2) for x in os.getloadavg()]
    rows = []
    profiles = [None] + ([str(Path(a.fastdds_profile).resolve())] if a.fastdds_profile else [])
    for profile in profiles:
        penv = dict(env, **({"FASTRTPS_DEFAULT_PROFILES_FILE": profile} if profile else {}))
        for pub, sub in PAIRS:
            args = [python, __file__, *common, "--pub", pub, "--sub", sub]
            rx = subprocess.Popen([*args, "--role", "rx"], env=penv, stdout=subprocess.PIPE, text=True)
            time.sleep(0.5)
            tx = subprocess.run([*args, "--role", "tx"], env=penv, stdout=subprocess.PIPE, text=True, check=True)
            got = json.loads(rx.communicate()[0].strip().splitlines()[-1])
            sent = json.loads(tx.stdout.strip().splitlines()[-1])["sent"]
            rows.append({"profile": Path(profile).name if profile else "default", "publisher": pub, "subscriber": sub,
                         "sent": sent, "received": got["received"], "lost_share": 1 - got["received"] / sent,
                         "latency_ms_p50": got["latency_ms_p50"], "latency_ms_p99": got["latency_ms_p99"]})
            print(rows[-1], flush=True)
    load_after = [round(x, 2) for x in os.getloadavg()]
    m = machine_info()
    md = [f"# ROS 2 (Fast DDS) {a.size} rgb8 at {a.rate:g} Hz between two processes, by QoS", "",
          f"`{m['command']}`", "", f"{m['date']}, {m.get('cpu_model', '')} x{m['cpu_count']}, "
          f"load {load_before} -> {load_after}", "",
          "| Fast DDS profile | publisher | subscriber | sent | received | lost | stamp to receipt p50 / p99 ms |",
          "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    f = (lambda v: "-" if v is None else f"{v:.1f}")
    md += [f"| {r['profile']} | {r['publisher']} | {r['subscriber']} | {r['sent']} | {r['received']} | "
           f"{r['lost_share']:.0%} | {f(r['latency_ms_p50'])} / {f(r['latency_ms_p99'])} |" for r in rows]
    md += ["", "The receiver only counts: every loss is the middleware's (one lost UDP fragment loses the "
           "frame for a best-effort reader; a reliable reader has it sent again)."]
    write_result(Path(__file__).parent / "results", "ros2_image_qos",
                 {"machine": m, "load_before": load_before, "load_after": load_after, "size": a.size,
                  "rate_hz": a.rate, "rows": rows}, "\n".join(md) + "\n", a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
