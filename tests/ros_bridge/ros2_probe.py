"""The camera and the robot for the ROS 2 live tests, run with the ROS 2 interpreter
(.venv-ros2): a real rclpy node that publishes colour (+ aligned depth, camera_info) with a
chosen QoS, optionally malformed messages first, records what the edgefuse node publishes,
can change its parameters (SetParameters, what `ros2 param set` sends) and drive /clock, and
prints everything as one JSON object on its last line.

    python ros2_probe.py --node /edgefuse --frames 10 --rate 15 [--size 120x160] [--no-depth]
        [--camera-qos reliable|best_effort] [--overlay] [--bad] [--float-depth] [--depth-holes]
        [--depth-stop K] [--set K NAME=VALUE ...] [--clock SPEED] [--late-classes] [--wait 2]
"""

from __future__ import annotations

import argparse
import array as arr
import base64
import json
import os
import sys
import threading
import time

import numpy as np
from probe_settle import settle

TOPICS = {"color": "/camera/camera/color/image_raw", "depth": "/camera/camera/aligned_depth_to_color/image_raw",
          "info": "/camera/camera/color/camera_info"}
FRAME_ID = "camera_color_optical_frame"
PERIOD_NS = 33_333_337


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text.lower(), text)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--node", default="/edgefuse")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--rate", type=float, default=15.0, help="Hz; 0: as fast as possible")
    p.add_argument("--size", default="120x160")
    p.add_argument("--no-depth", action="store_true")
    p.add_argument("--camera-qos", choices=("reliable", "best_effort"), default="reliable")
    p.add_argument("--overlay", action="store_true", help="subscribe to ~/overlay")
    p.add_argument("--bad", action="store_true", help="malformed messages before the frames")
    p.add_argument("--float-depth", action="store_true", help="depth as 32FC1 metres")
    p.add_argument("--depth-holes", action="store_true", help="the first depth row is 0 (no measurement)")
    p.add_argument("--depth-stop", type=int, default=-1, help="no depth from this frame on")
    p.add_argument("--set", nargs=2, action="append", default=[], metavar=("FRAME", "NAME=VALUE"),
                   help="set a parameter of the node before frame FRAME (SetParameters)")
    p.add_argument("--clock", type=float, default=0.0, help="publish /clock at this many times real time "
                                                            "from --t0; stamps follow it")
    p.add_argument("--late-classes", action="store_true", help="subscribe to ~/classes only after the frames")
    p.add_argument("--keep-masks", type=int, default=1, help="mask payloads to return (base64)")
    p.add_argument("--graph-ready", action="store_true", help="start once the node is in the graph, matched or "
                                                                 "not (a QoS mismatch never matches)")
    p.add_argument("--signal", nargs=3, type=int, metavar=("PID", "SIGNAL", "MASKS"),
                   help="send SIGNAL to PID once MASKS masks arrived (frames keep coming)")
    p.add_argument("--wait", type=float, default=2.0, help="s to keep listening after the last frame")
    p.add_argument("--settle", type=float, default=0.0,
                   help="then listen until a /diagnostics message arrives this many s after the "
                   "last frame_info (probe_settle.py)")
    p.add_argument("--t0", type=int, default=1_700_000_000_123_456_789, help="first stamp, ns")
    a = p.parse_args()

    import rclpy
    from builtin_interfaces.msg import Time
    from diagnostic_msgs.msg import DiagnosticArray
    from rcl_interfaces.msg import Parameter, ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String

    rclpy.init()
    node = Node("probe")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    h, w = (int(v) for v in a.size.split("x"))
    lock = threading.Lock()
    seen: dict[str, list] = {"mask": [], "mask_color": [], "overlay": [], "frame_info": [], "diagnostics": [],
                             "classes": [], "set": [], "mask_data": []}

    def image(msg, name):
        data = np.frombuffer(msg.data, np.uint8)
        rec = {"stamp": msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec,
               "frame_id": msg.header.frame_id, "encoding": msg.encoding, "height": msg.height, "width": msg.width,
               "step": msg.step, "bytes": len(data), "received_ns": time.time_ns(),
               "max": int(data.max()) if msg.encoding == "mono8" else None,
               "min": int(data.min()) if msg.encoding == "mono8" else None}
        with lock:
            seen[name].append(rec)
            if name == "mask" and len(seen["mask_data"]) < a.keep_masks:
                seen["mask_data"].append({"stamp": rec["stamp"], "data": base64.b64encode(data.tobytes()).decode()})
            elif name == "overlay" and len(seen.setdefault("overlay_data", [])) < a.keep_masks * 50:
                seen["overlay_data"].append(float(data.astype(np.float64).mean()))

    reliable = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE)
    latched = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
    mask_sub = node.create_subscription(Image, f"{a.node}/mask", lambda m: image(m, "mask"), reliable)
    node.create_subscription(Image, f"{a.node}/mask_color", lambda m: image(m, "mask_color"), reliable)
    if a.overlay:
        node.create_subscription(Image, f"{a.node}/overlay", lambda m: image(m, "overlay"), reliable)
    node.create_subscription(String, f"{a.node}/frame_info", lambda m: seen["frame_info"].append(
        {**json.loads(m.data), "received_ns": time.time_ns()}),
                             reliable)

    def classes_sub():
        node.create_subscription(String, f"{a.node}/classes", lambda m: seen["classes"].append(json.loads(m.data)),
                                 latched)

    if not a.late_classes:
        classes_sub()
    prefix = a.node.strip("/")
    node.create_subscription(DiagnosticArray, "/diagnostics", lambda m: seen["diagnostics"].extend(
        {"level": s.level[0] if isinstance(s.level, bytes) else int(s.level), "name": s.name, "message": s.message,
         "stamp": m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec, "received_ns": time.time_ns(),
         "values": {kv.key: kv.value for kv in s.values}}
        for s in m.status if s.name.startswith(prefix)), reliable)

    camera = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                        reliability={"reliable": ReliabilityPolicy.RELIABLE,
                                     "best_effort": ReliabilityPolicy.BEST_EFFORT}[a.camera_qos])
    color = node.create_publisher(Image, TOPICS["color"], camera)
    depth = node.create_publisher(Image, TOPICS["depth"], camera)
    info = node.create_publisher(CameraInfo, TOPICS["info"], camera)
    clock = node.create_publisher(Clock, "/clock", 10) if a.clock else None
    params = node.create_client(SetParameters, f"{a.node}/set_parameters")
    spinner.start()

    start_wall = time.monotonic()

    def now_ns() -> int:
        """The stamp of the next message: simulated time under --clock, else the frame counter."""
        return a.t0 + int((time.monotonic() - start_wall) * a.clock * 1e9)

    stop_clock = threading.Event()
    if clock is not None:
        def tick():
            while not stop_clock.is_set():
                sec, nsec = divmod(now_ns(), 1_000_000_000)
                clock.publish(Clock(clock=Time(sec=sec, nanosec=nsec)))
                time.sleep(0.005)
        threading.Thread(target=tick, daemon=True).start()

    # Ready when the node subscribes to our inputs and publishes the mask we listen to.
    inputs = [(color, TOPICS["color"])] + ([] if a.no_depth else [(depth, TOPICS["depth"])])
    deadline = time.monotonic() + 90
    name = a.node.strip("/").split("/")[-1]

    def subscribed(topic: str) -> bool:
        """The node under test (not any other node on the topic) subscribes to it."""
        return any(i.node_name == name for i in node.get_subscriptions_info_by_topic(topic))

    def matched() -> bool:
        if not all(subscribed(topic) for _, topic in inputs):
            return False
        if a.graph_ready:            # a QoS mismatch never matches
            return True
        return (all(pub.get_subscription_count() > 0 for pub, _ in inputs) and mask_sub.get_publisher_count() > 0
                and (not a.set or params.service_is_ready()))

    while not matched():
        if time.monotonic() > deadline:
            print(json.dumps({"error": f"{a.node} never subscribed to the camera topics"}))
            return 1
        time.sleep(0.05)
    time.sleep(0.5)

    def stamp_of(ns: int):
        sec, nsec = divmod(ns, 1_000_000_000)
        return Time(sec=sec, nanosec=nsec)

    def msg(array: np.ndarray, encoding: str, ns: int, step: int | None = None, data: bytes | None = None) -> Image:
        m = Image(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=0,
                  step=array.nbytes // array.shape[0] if step is None else step)
        payload = arr.array("B")          # the data setter keeps an array('B'); bytes are checked one by one
        payload.frombytes(array.tobytes() if data is None else data)
        m.data = payload
        m.header.stamp = stamp_of(ns)
        m.header.frame_id = FRAME_ID
        return m

    def set_params(assignments: list[str]) -> None:
        values = []
        for text in assignments:
            name, value = text.split("=", 1)
            v = parse_value(value)
            pv = {bool: lambda: ParameterValue(type=ParameterType.PARAMETER_BOOL, bool_value=v),
                  int: lambda: ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=v),
                  float: lambda: ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=v),
                  str: lambda: ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=v)}[type(v)]()
            values.append(Parameter(name=name, value=pv))
        future = params.call_async(SetParameters.Request(parameters=values))
        end = time.monotonic() + 10
        while not future.done() and time.monotonic() < end:
            time.sleep(0.01)
        results = future.result().results if future.done() else []
        seen["set"].extend({"name": t.split("=")[0], "successful": r.successful, "reason": r.reason}
                           for t, r in zip(assignments, results))

    k = [w * 0.8, 0.0, w / 2, 0.0, w * 0.8, h / 2, 0.0, 0.0, 1.0]
    info.publish(CameraInfo(height=h, width=w, distortion_model="plumb_bob", d=[0.0] * 5, k=k,
                            r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1], p=k[:3] + [0.0] + k[3:6] + [0.0] + k[6:] + [0.0]))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mm = np.full((h, w), 1200, np.uint16)
    if a.depth_holes:
        mm[0] = 0
    sent: list[int] = []
    ns = a.t0
    if a.bad:
        # One bad message per pair, 100 ms apart, each with its partner so it pairs at once.
        good_depth = (lambda t: msg(mm, "16UC1", t))
        bad = [
            (msg(rgb[..., :2].copy(), "yuv422", ns), good_depth(ns)),                          # colour encoding
            (msg(rgb, "rgb8", ns + 100_000_000, data=rgb.tobytes()[: w * 3]), good_depth(ns + 100_000_000)),
            (msg(rgb, "rgb8", ns + 200_000_000), msg(mm[: h // 2, : w // 2].copy(), "16UC1", ns + 200_000_000)),
            (msg(rgb, "rgb8", ns + 300_000_000), msg(np.full((h, w), np.nan, np.float32), "32FC1", ns + 300_000_000)),
        ]
        for c, d in bad:
            depth.publish(d)
            color.publish(c)
            time.sleep(0.2)
        ns += 1_000_000_000
    sets = {}
    for frame, assignment in a.set:
        sets.setdefault(int(frame), []).append(assignment)
    period = 1.0 / a.rate if a.rate > 0 else 0.0
    signalled = False
    start = time.monotonic()
    for i in range(a.frames):
        if i in sets:
            set_params(sets[i])
        if a.signal and not signalled and len(seen["mask"]) >= a.signal[2]:
            os.kill(a.signal[0], a.signal[1])
            signalled = True
        stamp = now_ns() if a.clock else ns + i * PERIOD_NS
        if not a.no_depth and (a.depth_stop < 0 or i < a.depth_stop):
            d = (msg(mm.astype(np.float32) / 1000.0, "32FC1", stamp) if a.float_depth else msg(mm, "16UC1", stamp))
            depth.publish(d)
        color.publish(msg(rgb, "rgb8", stamp))
        sent.append(stamp)
        if period:
            time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))
    if a.late_classes:
        classes_sub()
    time.sleep(a.wait)
    settle(seen, a.settle)
    stop_clock.set()
    with lock:
        out = {"sent": sent, "clock_end": now_ns() if a.clock else None, **seen}
    print(json.dumps(out), flush=True)
    executor.shutdown(timeout_sec=5)
    spinner.join(5)
    node.destroy_node()
    rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
