"""The camera and the listener of benchmarks/ros_node.py, in the interpreter of the ROS it
drives (ROS 1: rospy, the main venv; ROS 2: rclpy, .venv-ros2): publishes pre-rendered RGB-D
frames stamped with the time of publishing at each rate, records each mask's stamp and
receipt time and each frame_info record, and prints them as one JSON object.

    python benchmarks/_ros_feed.py --ros 1|2 --frames FRAMES.npz --node /edgefuse_bench
        --rates 15 30 --seconds 20 --warmup 3 [--mask-color] [--camera-qos reliable|best_effort]
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any

import numpy as np

TOPICS = {"1": ("/camera/color/image_raw", "/camera/aligned_depth_to_color/image_raw"),
          "2": ("/camera/camera/color/image_raw", "/camera/camera/aligned_depth_to_color/image_raw")}


class Ros1:
    def __init__(self, a: argparse.Namespace) -> None:
        import rospy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        self.rospy, self.Image, self.String = rospy, Image, String
        rospy.init_node("ros_node_bench", anonymous=True, disable_signals=True)

    def subscribe(self, topic: str, image: bool, callback: Any) -> Any:
        kind = self.Image if image else self.String
        return self.rospy.Subscriber(topic, kind, callback, queue_size=1000, buff_size=1 << 24)

    def publisher(self, topic: str) -> Any:
        return self.rospy.Publisher(topic, self.Image, queue_size=1)

    def drop(self, sub: Any) -> None:
        sub.unregister()

    def connected(self, pub: Any) -> bool:
        return pub.get_num_connections() > 0

    def image(self, array: np.ndarray, encoding: str) -> Any:
        h, w = array.shape[:2]
        m = self.Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=array.nbytes // h,
                       data=array.tobytes())
        m.header.frame_id = "camera_color_optical_frame"
        return m

    def stamp(self, msg: Any, ns: int) -> None:
        msg.header.stamp = self.rospy.Time(*divmod(ns, 1_000_000_000))

    @staticmethod
    def stamp_ns(msg: Any) -> int:
        return msg.header.stamp.to_nsec()

    def close(self) -> None:
        self.rospy.signal_shutdown("done")


class Ros2:
    def __init__(self, a: argparse.Namespace) -> None:
        import rclpy
        from builtin_interfaces.msg import Time
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
        from sensor_msgs.msg import Image
        from std_msgs.msg import String

        rclpy.init()
        self.rclpy, self.Image, self.String, self.Time = rclpy, Image, String, Time
        self.node = Node("ros_node_bench")
        self.listen = QoSProfile(depth=1000, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
        self.camera = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST,
                                 reliability={"reliable": ReliabilityPolicy.RELIABLE,
                                              "best_effort": ReliabilityPolicy.BEST_EFFORT}[a.camera_qos])
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)
        self.thread = threading.Thread(target=self.executor.spin, daemon=True)
        self.thread.start()

    def subscribe(self, topic: str, image: bool, callback: Any) -> Any:
        return self.node.create_subscription(self.Image if image else self.String, topic, callback, self.listen)

    def publisher(self, topic: str) -> Any:
        return self.node.create_publisher(self.Image, topic, self.camera)

    def drop(self, sub: Any) -> None:
        self.node.destroy_subscription(sub)

    def connected(self, pub: Any) -> bool:
        return pub.get_subscription_count() > 0

    def image(self, array: np.ndarray, encoding: str) -> Any:
        import array as arr

        h, w = array.shape[:2]
        data = arr.array("B")
        data.frombytes(array.tobytes())
        m = self.Image(height=h, width=w, encoding=encoding, is_bigendian=0, step=array.nbytes // h)
        m.data = data       # the constructor would copy it element by element
        m.header.frame_id = "camera_color_optical_frame"
        return m

    def stamp(self, msg: Any, ns: int) -> None:
        sec, nsec = divmod(ns, 1_000_000_000)
        msg.header.stamp = self.Time(sec=sec, nanosec=nsec)

    @staticmethod
    def stamp_ns(msg: Any) -> int:
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    def close(self) -> None:
        self.executor.shutdown(timeout_sec=5)
        self.thread.join(5)
        self.node.destroy_node()
        self.rclpy.try_shutdown()


def feed(ros: Any, a: argparse.Namespace, rate: float, frames: list[tuple[Any, Any]], color: Any, depth: Any) -> dict:
    masks: list[tuple[int, int]] = []          # (stamp ns, receipt ns)
    infos: list[dict] = []
    subs = [ros.subscribe(f"{a.node}/mask", True, lambda m: masks.append((ros.stamp_ns(m), time.time_ns()))),
            ros.subscribe(f"{a.node}/frame_info", False, lambda m: infos.append(json.loads(m.data)))]
    if a.mask_color:
        subs.append(ros.subscribe(f"{a.node}/mask_color", True, lambda m: None))
    while not (ros.connected(color) and ros.connected(depth)):
        time.sleep(0.05)
    time.sleep(1.0)
    sent: list[int] = []
    start = time.monotonic()
    counted_from = time.time_ns() + int(a.warmup * 1e9)
    i = 0
    while time.monotonic() - start < a.warmup + a.seconds:
        c, d = frames[i % len(frames)]
        ns = time.time_ns()
        ros.stamp(c, ns)
        ros.stamp(d, ns)
        depth.publish(d)
        color.publish(c)
        if ns >= counted_from:
            sent.append(ns)
        i += 1
        time.sleep(max(0.0, start + i / rate - time.monotonic()))
    time.sleep(1.0)
    for sub in subs:
        ros.drop(sub)
    return {"rate_hz": rate, "seconds": a.seconds, "counted_from": counted_from, "sent": sent,
            "masks": [m for m in masks if m[0] >= counted_from], "infos": [r for r in infos if r["stamp_ns"] >= counted_from]}


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--ros", choices=("1", "2"), required=True)
    p.add_argument("--frames", required=True, help=".npz of rgb (N,H,W,3) and depth (N,H,W)")
    p.add_argument("--node", default="/edgefuse_bench")
    p.add_argument("--rates", type=float, nargs="+", default=[15.0, 30.0])
    p.add_argument("--seconds", type=float, default=20.0)
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--mask-color", action="store_true")
    p.add_argument("--camera-qos", choices=("reliable", "best_effort"), default="reliable")
    a = p.parse_args()
    data = np.load(a.frames)
    ros = {"1": Ros1, "2": Ros2}[a.ros](a)
    frames = [(ros.image(rgb, "rgb8"), ros.image(d, "16UC1")) for rgb, d in zip(data["rgb"], data["depth"])]
    color, depth = (ros.publisher(topic) for topic in TOPICS[a.ros])
    runs = []
    for rate in a.rates:
        print(f"ROS {a.ros}: {rate:g} Hz for {a.seconds:g} s ...", file=sys.stderr, flush=True)
        runs.append(feed(ros, a, rate, frames, color, depth))
    print(json.dumps(runs), flush=True)
    ros.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
