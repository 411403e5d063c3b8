"""The camera and the robot for the ROS 1 live tests, as a separate rospy process (rospy
configures logging and signals process-wide, so it stays out of pytest's process):
publishes colour (+ aligned depth, camera_info) at a rate, optionally malformed messages
first, records what the node publishes, and prints it as one JSON object.

    python ros1_probe.py --node /edgefuse --frames 10 --rate 15 [--size 120x160] [--no-depth]
        [--overlay] [--bad] [--float-depth] [--wait 2]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zlib

import numpy as np
from probe_settle import settle


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--node", default="/edgefuse")
    p.add_argument("--frames", type=int, default=10)
    p.add_argument("--rate", type=float, default=15.0, help="Hz; 0: as fast as possible")
    p.add_argument("--size", default="120x160")
    p.add_argument("--no-depth", action="store_true")
    p.add_argument("--overlay", action="store_true", help="subscribe to ~overlay")
    p.add_argument("--bad", action="store_true", help="malformed messages before the frames")
    p.add_argument("--float-depth", action="store_true", help="depth as 32FC1 metres")
    p.add_argument("--wait", type=float, default=2.0, help="s to keep listening after the last frame")
    p.add_argument("--settle", type=float, default=0.0,
                   help="then listen until a /diagnostics message arrives this many s after the "
                   "last frame_info (probe_settle.py)")
    p.add_argument("--t0", type=int, default=1_700_000_000_123_456_789, help="first stamp, ns")
    a = p.parse_args()

    import rospy
    from diagnostic_msgs.msg import DiagnosticArray
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import String

    rospy.init_node("probe", anonymous=True, disable_signals=True)
    h, w = (int(v) for v in a.size.split("x"))
    seen: dict[str, list] = {"mask": [], "mask_color": [], "overlay": [], "frame_info": [], "diagnostics": [],
                             "classes": []}

    def image(msg):
        return {"stamp": [msg.header.stamp.secs, msg.header.stamp.nsecs], "frame_id": msg.header.frame_id,
                "encoding": msg.encoding, "height": msg.height, "width": msg.width, "step": msg.step,
                "bytes": len(msg.data), "max": int(max(msg.data)) if msg.encoding == "mono8" else None,
                "min": int(min(msg.data)) if msg.encoding == "mono8" else None,
                "crc32": zlib.crc32(msg.data) if msg.encoding == "mono8" else None}

    subscribers = [rospy.Subscriber(f"{a.node}/{name}", Image, lambda m, n=name: seen[n].append(image(m)),
                                    queue_size=100)
                   for name in ("mask", "mask_color") + (("overlay",) if a.overlay else ())]
    rospy.Subscriber(f"{a.node}/frame_info", String, lambda m: seen["frame_info"].append(
        {**json.loads(m.data), "received_ns": time.time_ns()}),
                     queue_size=100)
    rospy.Subscriber(f"{a.node}/classes", String, lambda m: seen["classes"].append(json.loads(m.data)))
    rospy.Subscriber("/diagnostics", DiagnosticArray, lambda m: seen["diagnostics"].extend(
        {"level": int(s.level), "name": s.name, "message": s.message, "received_ns": time.time_ns(),
         "values": {kv.key: kv.value for kv in s.values}}
        for s in m.status if s.name.startswith(a.node.strip("/"))), queue_size=100)
    color = rospy.Publisher("/camera/color/image_raw", Image, queue_size=100)
    depth = rospy.Publisher("/camera/aligned_depth_to_color/image_raw", Image, queue_size=100)
    info = rospy.Publisher("/camera/color/camera_info", CameraInfo, queue_size=100, latch=True)

    # Ready when the master lists the node on our input topics, our publishers are connected to
    # every subscriber of those topics, and our subscriber to its mask is connected.
    import rosgraph

    master = rosgraph.Master(rospy.get_name())
    inputs = [(color, "/camera/color/image_raw")] + ([] if a.no_depth else
                                                     [(depth, "/camera/aligned_depth_to_color/image_raw")])
    mask_sub = next(s for s in subscribers if s.name == f"{a.node}/mask")

    def ready() -> bool:
        subs = dict(master.getSystemState()[1])
        return (all(a.node in subs.get(topic, ()) and pub.get_num_connections() >= len(subs[topic])
                    for pub, topic in inputs) and mask_sub.get_num_connections() > 0)

    deadline = time.monotonic() + 90
    while not ready():
        if time.monotonic() > deadline:
            print(json.dumps({"error": f"{a.node} never subscribed to the camera topics"}))
            return 1
        time.sleep(0.05)
    time.sleep(0.3)

    def msg(array: np.ndarray, encoding: str, ns: int, step: int | None = None, data: bytes | None = None) -> Image:
        m = Image(height=array.shape[0], width=array.shape[1], encoding=encoding, is_bigendian=0,
                  step=array.nbytes // array.shape[0] if step is None else step,
                  data=array.tobytes() if data is None else data)
        m.header.stamp = rospy.Time(*divmod(ns, 1_000_000_000))
        m.header.frame_id = "camera_color_optical_frame"
        return m

    k = [w * 0.8, 0, w / 2, 0, w * 0.8, h / 2, 0, 0, 1]
    info.publish(CameraInfo(height=h, width=w, distortion_model="plumb_bob", D=[0.0] * 5, K=k,
                            R=[1, 0, 0, 0, 1, 0, 0, 0, 1], P=k[:3] + [0] + k[3:6] + [0] + k[6:] + [0]))
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    mm = np.full((h, w), 1200, np.uint16)
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
    period = 1.0 / a.rate if a.rate > 0 else 0.0
    start = time.monotonic()
    for i in range(a.frames):
        stamp = ns + i * 33_333_337
        if not a.no_depth:
            d = (msg(mm.astype(np.float32) / 1000.0, "32FC1", stamp) if a.float_depth else msg(mm, "16UC1", stamp))
            depth.publish(d)
        color.publish(msg(rgb, "rgb8", stamp))
        sent.append(stamp)
        if period:
            time.sleep(max(0.0, start + (i + 1) * period - time.monotonic()))
    time.sleep(a.wait)
    settle(seen, a.settle)
    rospy.signal_shutdown("probe done")
    print(json.dumps({"sent": sent, **seen}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
