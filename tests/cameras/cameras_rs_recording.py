"""Write RealSense recordings with pyrealsense2's own recorder through a software device.

No camera needed: a `rs.software_device` with a depth and a colour sensor stands in for a
D400, and `rs.recorder` writes what it streams (.db3 with librealsense >= 2.58, or .bag).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

DEPTH_SIZE = (60, 80)    # H, W
COLOR_SIZE = (120, 160)  # twice the depth resolution, same field of view


def scene_depth_mm(i: int) -> np.ndarray:
    """Frame i's depth in mm at depth resolution: left half near, right half far."""
    h, w = DEPTH_SIZE
    d = np.empty((h, w), np.uint16)
    d[:, : w // 2] = 1000 + 10 * i
    d[:, w // 2:] = 2000 + 10 * i
    return d


def scene_rgb(i: int) -> np.ndarray:
    h, w = COLOR_SIZE
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[..., 0] = (7 * i) % 256   # frame id in red
    rgb[..., 1] = 200
    rgb[:, w // 2:, 2] = 255      # right half blue: RGB order must survive
    return rgb


def _intrinsics(rs, size: tuple[int, int], f: float):
    h, w = size
    i = rs.intrinsics()
    i.width, i.height, i.ppx, i.ppy, i.fx, i.fy = w, h, w / 2, h / 2, f, f
    i.model = rs.distortion.none
    i.coeffs = [0.0] * 5
    return i


def record(path: Path, frames: int, depth_units: float = 0.001, fps: int = 30, baseline_m: float = 0.0,
           name: str | None = None, serial: str | None = None) -> None:
    """Record `frames` colour+depth pairs; depth stored as raw units (mm / (units * 1000)).

    baseline_m: the colour camera sits this far along +x from the depth camera (a D435 has
    about 15 mm); with a baseline, aligning shifts depth in the colour image by
    fx * baseline / Z pixels, which is how the tests tell real alignment from a resize.
    name / serial: device info to record (a camera always has both; Open3D's reader refuses
    a recording without a name)."""
    import pyrealsense2 as rs

    dev = rs.software_device()
    if name is not None:
        dev.register_info(rs.camera_info.name, name)
    if serial is not None:
        dev.register_info(rs.camera_info.serial_number, serial)
    depth_sensor = dev.add_sensor("Depth")
    color_sensor = dev.add_sensor("Color")
    depth_sensor.add_read_only_option(rs.option.depth_units, depth_units)

    vs = rs.video_stream()
    vs.type, vs.index, vs.uid, vs.fps, vs.bpp, vs.fmt = rs.stream.depth, 0, 0, fps, 2, rs.format.z16
    vs.height, vs.width = DEPTH_SIZE
    vs.intrinsics = _intrinsics(rs, DEPTH_SIZE, 80.0)
    depth_profile = depth_sensor.add_video_stream(vs).as_video_stream_profile()

    cs = rs.video_stream()
    cs.type, cs.index, cs.uid, cs.fps, cs.bpp, cs.fmt = rs.stream.color, 0, 1, fps, 3, rs.format.rgb8
    cs.height, cs.width = COLOR_SIZE
    cs.intrinsics = _intrinsics(rs, COLOR_SIZE, 160.0)
    color_profile = color_sensor.add_video_stream(cs).as_video_stream_profile()

    ext = rs.extrinsics()
    ext.rotation, ext.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [baseline_m, 0, 0]
    depth_profile.register_extrinsics_to(color_profile, ext)

    recorder = rs.recorder(str(path), dev)
    depth_sensor.open(depth_profile)
    color_sensor.open(color_profile)
    depth_sensor.start(rs.frame_queue(frames * 2 + 2))
    color_sensor.start(rs.frame_queue(frames * 2 + 2))
    keep = []  # the SDK reads pixel buffers after on_video_frame returns
    for i in range(frames):
        t = 1000.0 + i * 1000.0 / fps  # ms
        raw = np.rint(scene_depth_mm(i) * (0.001 / depth_units)).astype(np.uint16)
        rgb = scene_rgb(i)
        keep += [raw, rgb]
        for sensor, profile, pixels, bpp, width in (
                (depth_sensor, depth_profile, raw, 2, DEPTH_SIZE[1]),
                (color_sensor, color_profile, rgb, 3, COLOR_SIZE[1])):
            f = rs.software_video_frame()
            f.pixels, f.bpp, f.stride = pixels, bpp, bpp * width
            f.timestamp, f.domain, f.frame_number = t, rs.timestamp_domain.hardware_clock, i
            f.profile = profile
            sensor.on_video_frame(f)
    for sensor in (depth_sensor, color_sensor):
        sensor.stop()
        sensor.close()
    recorder.pause()
    del recorder  # flushes and closes the file
