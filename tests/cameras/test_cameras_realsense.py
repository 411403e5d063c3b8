"""realsense[:SERIAL] without a camera: the live source's grab -> align -> mm path and its
reconnect logic, fed by a pyrealsense2 software device standing in for the pipeline.

Only `pipeline.start` (device discovery and stream configuration) is faked; the framesets,
`rs.align`, the depth scale and the intrinsics are pyrealsense2's own.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import pyrealsense2 as rs

from cameras_rs_recording import COLOR_SIZE, DEPTH_SIZE, _intrinsics, scene_depth_mm, scene_rgb  # noqa: E402

from edgefuse.cameras import SourceDisconnected, open_source, validate_frame  # noqa: E402
from edgefuse.errors import EdgefuseError  # noqa: E402


class SoftwareCamera:
    """A D400 look-alike: depth in 0.1 mm units (so the mm conversion is exercised) and colour."""

    DEPTH_UNITS = 0.0001

    def __init__(self, serial: str) -> None:
        self.dev = rs.software_device()
        self.dev.register_info(rs.camera_info.serial_number, serial)
        self.ds, self.cs = self.dev.add_sensor("Depth"), self.dev.add_sensor("Color")
        self.ds.add_read_only_option(rs.option.depth_units, self.DEPTH_UNITS)
        self.dp = self._stream(self.ds, rs.stream.depth, rs.format.z16, 2, DEPTH_SIZE, 80.0, 0)
        self.cp = self._stream(self.cs, rs.stream.color, rs.format.rgb8, 3, COLOR_SIZE, 160.0, 1)
        ext = rs.extrinsics()
        ext.rotation, ext.translation = [1, 0, 0, 0, 1, 0, 0, 0, 1], [0, 0, 0]
        self.dp.register_extrinsics_to(self.cp, ext)
        self.dq, self.cq = rs.frame_queue(4), rs.frame_queue(4)
        for s, p, q in ((self.ds, self.dp, self.dq), (self.cs, self.cp, self.cq)):
            s.open(p)
            s.start(q)
        self._pair = {}
        self.block = rs.processing_block(
            lambda f, src: src.frame_ready(src.allocate_composite_frame([self._pair["d"], f])))
        self.out = rs.frame_queue(2)
        self.block.start(self.out)
        self.i = 0
        self.keep = []

    @staticmethod
    def _stream(sensor, kind, fmt, bpp, size, f, uid):
        vs = rs.video_stream()
        vs.type, vs.index, vs.uid, vs.fps, vs.bpp, vs.fmt = kind, 0, uid, 30, bpp, fmt
        vs.height, vs.width = size
        vs.intrinsics = _intrinsics(rs, size, f)
        return sensor.add_video_stream(vs).as_video_stream_profile()

    def frameset(self):
        i = self.i
        self.i += 1
        raw = np.rint(scene_depth_mm(i) * (0.001 / self.DEPTH_UNITS)).astype(np.uint16)
        rgb = scene_rgb(i)
        self.keep = [raw, rgb]
        got = []
        for s, p, px, bpp, q in ((self.ds, self.dp, raw, 2, self.dq), (self.cs, self.cp, rgb, 3, self.cq)):
            f = rs.software_video_frame()
            f.pixels, f.bpp, f.stride = px, bpp, bpp * px.shape[1]
            f.timestamp, f.domain, f.frame_number = 1000.0 + 33.3 * i, rs.timestamp_domain.hardware_clock, i
            f.profile = p
            s.on_video_frame(f)
            got.append(q.wait_for_frame(2000))
        self._pair["d"] = got[0]
        self.block.invoke(got[1])
        return self.out.wait_for_frame(2000).as_frameset()


class FakePipeline:
    """`rs.pipeline` stand-in: framesets from the software camera until it is 'unplugged'."""

    def __init__(self, camera: SoftwareCamera, fail_after: int | None) -> None:
        self.camera, self.fail_after, self.served, self.stopped = camera, fail_after, 0, False

    def try_wait_for_frames(self, timeout_ms):
        if self.fail_after is not None and self.served >= self.fail_after:
            raise RuntimeError("Frame didn't arrive within 2000")
        self.served += 1
        return True, self.camera.frameset()

    def stop(self):
        self.stopped = True


class FakeProfile:
    def __init__(self, camera: SoftwareCamera) -> None:
        self.camera = camera

    def get_device(self):
        return self.camera.dev

    def get_stream(self, kind):
        return self.camera.cp if kind == rs.stream.color else self.camera.dp


def _no_camera_connected() -> bool:
    return len(rs.context().query_devices()) == 0


@pytest.mark.skipif(not _no_camera_connected(), reason="a RealSense camera is connected")
def test_no_camera_is_a_clear_error():
    with pytest.raises(EdgefuseError, match="no RealSense camera found"):
        with open_source("realsense:123456"):
            pass


def test_live_frames_aligned_in_mm_and_reconnect(monkeypatch):
    camera = SoftwareCamera("SW0001")
    starts = {"n": 0}
    statuses = []
    recovered = threading.Event()

    src = open_source("realsense:SW0001", queue_size=50, timeout_ms=100, retry_backoff=(0.001, 0.004))
    assert src.is_live

    def fake_start():
        starts["n"] += 1
        if starts["n"] in (2, 3):  # unplugged: the first two reconnection attempts fail
            raise SourceDisconnected("RealSense SW0001 not found; connected: ")
        if starts["n"] == 4:
            recovered.set()
        # 3 framesets, then a disconnect; after reconnecting, frames flow again.
        src._use(FakePipeline(camera, fail_after=3 if starts["n"] == 1 else None), FakeProfile(camera))

    monkeypatch.setattr(src, "_start", fake_start)
    src.on_status = statuses.append
    frames = []
    with src:
        for f in src:
            frames.append(f)
            if len(frames) == 6:
                break
    assert recovered.is_set() and starts["n"] == 4
    assert [f.index for f in frames] == list(range(6))  # the run went on after the outage
    h, w = COLOR_SIZE
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(f.rgb, scene_rgb(i))
        assert f.depth.shape == (h, w)  # aligned to colour
        assert np.all(f.depth[:, : w // 2 - 2] == scene_depth_mm(i)[0, 0])  # mm, from 0.1 mm units
        assert validate_frame(f, COLOR_SIZE).ok
        assert f.meta["serial"] == "SW0001"
    assert f.intrinsics.fx == pytest.approx(160.0)
    assert src.depth_scale == pytest.approx(SoftwareCamera.DEPTH_UNITS)
    assert any("disconnected" in s for s in statuses) and any("reconnected" in s for s in statuses)
