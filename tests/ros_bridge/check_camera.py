"""A camera with staged input faults for the `edgefuse ros --check` live tests, in a process of
its own (rospy / rclpy own their process's signals and logging), ROS 1 or ROS 2:

    python check_camera.py --ros 1|2 [--rate 15]

publishes one set of inputs per fault until SIGINT, each set under its own prefix:
    /SET/color/image_raw (rgb8), /SET/depth/image_raw (16UC1), /SET/color/camera_info
with SET one of
    ok         healthy: depth aligned (colour's stamp, frame_id and size), mm, 5% zeros
    unaligned  depth of the depth camera: another frame_id and half the size
    zero       every header.stamp is 0
    metres     16UC1 depth holding metres (values 1..5)
    info       camera_info of twice the image's size
On ROS 2 the images are best effort (a sensor camera) and camera_info reliable. Prints
"ready" once every set has published. The ROS 2 process must run on loopback with a domain
of its own (ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST, ROS_DOMAIN_ID: the test's fixture sets
both) so no discovery traffic leaves the machine and parallel runs do not see each other.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time

import numpy as np

H, W = 96, 128
FRAME = "camera_color_optical_frame"
SETS = ("ok", "unaligned", "zero", "metres", "info")


def frames(name: str, stamp_ns: int) -> dict[str, dict]:
    """The fields of one set's colour, depth and camera_info at `stamp_ns`."""
    stamp = 0 if name == "zero" else stamp_ns
    rgb = np.full((H, W, 3), 100, np.uint8)
    h, w, depth_frame = (H // 2, W // 2, "camera_depth_optical_frame") if name == "unaligned" else (H, W, FRAME)
    depth = np.full((h, w), 1500, np.uint16)
    if name == "metres":
        depth = (1 + np.arange(h * w) % 5).astype(np.uint16).reshape(h, w)
    depth[: h // 20] = 0
    ih, iw = (2 * H, 2 * W) if name == "info" else (H, W)
    f = 0.8 * iw
    k = [f, 0.0, iw / 2, 0.0, f, ih / 2, 0.0, 0.0, 1.0]
    return {"color": dict(stamp=stamp, frame_id=FRAME, height=H, width=W, encoding="rgb8", step=W * 3,
                          data=rgb.tobytes()),
            "depth": dict(stamp=stamp, frame_id=depth_frame, height=h, width=w, encoding="16UC1", step=w * 2,
                          data=depth.tobytes()),
            "info": dict(stamp=stamp, frame_id=FRAME, height=ih, width=iw, k=k,
                         p=k[:3] + [0.0] + k[3:6] + [0.0] + k[6:] + [0.0])}


def ros1(rate: float) -> None:
    import rospy
    from sensor_msgs.msg import CameraInfo, Image

    rospy.init_node("check_camera", disable_signals=True)
    pubs = {s: (rospy.Publisher(f"/{s}/color/image_raw", Image, queue_size=5),
                rospy.Publisher(f"/{s}/depth/image_raw", Image, queue_size=5),
                rospy.Publisher(f"/{s}/color/camera_info", CameraInfo, queue_size=5)) for s in SETS}

    def header(m, fields):
        m.header.stamp = rospy.Time(*divmod(fields["stamp"], 1_000_000_000))
        m.header.frame_id = fields["frame_id"]
        return m

    def image(fields):
        return header(Image(height=fields["height"], width=fields["width"], encoding=fields["encoding"],
                            is_bigendian=0, step=fields["step"], data=fields["data"]), fields)

    def info(fields):
        return header(CameraInfo(height=fields["height"], width=fields["width"], distortion_model="plumb_bob",
                                 D=[0.0] * 5, K=fields["k"], R=[1.0, 0, 0, 0, 1, 0, 0, 0, 1], P=fields["p"]), fields)

    try:
        loop(rate, lambda: rospy.Time.now().to_nsec(),
             lambda s, f: [p.publish(m) for p, m in zip(pubs[s], (image(f["color"]), image(f["depth"]),
                                                                   info(f["info"])))])
    finally:
        rospy.signal_shutdown("check camera stopped")   # else rospy's threads keep the process alive


def ros2(rate: float) -> None:
    import array

    import rclpy
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    rclpy.init()
    node = rclpy.create_node("check_camera")
    pubs = {s: (node.create_publisher(Image, f"/{s}/color/image_raw", qos_profile_sensor_data),
                node.create_publisher(Image, f"/{s}/depth/image_raw", qos_profile_sensor_data),
                node.create_publisher(CameraInfo, f"/{s}/color/camera_info", 5)) for s in SETS}

    def header(m, fields):
        m.header.stamp.sec, m.header.stamp.nanosec = divmod(fields["stamp"], 1_000_000_000)
        m.header.frame_id = fields["frame_id"]
        return m

    def image(fields):
        return header(Image(height=fields["height"], width=fields["width"], encoding=fields["encoding"],
                            is_bigendian=0, step=fields["step"], data=array.array("B", fields["data"])), fields)

    def info(fields):
        return header(CameraInfo(height=fields["height"], width=fields["width"], distortion_model="plumb_bob",
                                 d=[0.0] * 5, k=fields["k"], r=[1.0, 0, 0, 0, 1, 0, 0, 0, 1], p=fields["p"]), fields)

    try:
        loop(rate, lambda: node.get_clock().now().nanoseconds,
             lambda s, f: [p.publish(m) for p, m in zip(pubs[s], (image(f["color"]), image(f["depth"]),
                                                                   info(f["info"])))])
    finally:
        node.destroy_node()
        rclpy.try_shutdown()


def loop(rate: float, now_ns, publish) -> None:
    period, start, i = 1.0 / rate, time.monotonic(), 0
    while True:
        stamp = now_ns()
        for s in SETS:
            publish(s, frames(s, stamp))
        if i == 0:
            print("ready", flush=True)
        i += 1
        time.sleep(max(0.0, start + i * period - time.monotonic()))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--ros", choices=("1", "2"), required=True)
    p.add_argument("--rate", type=float, default=15.0)
    a = p.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        {"1": ros1, "2": ros2}[a.ros](a.rate)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
