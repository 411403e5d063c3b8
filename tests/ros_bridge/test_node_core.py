"""The node's pure core without ROS: message fields in, the per-frame step, message fields out
(real bundle and ONNX Runtime; the ROS transport is a recorder)."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from ros_fixtures import FRAME_ID, H, T0, W, RecordingTransport, depth_mm, image_msg, info_msg, rgb

from edgefuse.ros_bridge.config import NodeConfig
from edgefuse.ros_bridge.core import NodeCore
from edgefuse.ros_bridge.diagnostics import ERROR, OK, WARN, Diagnostics, WarnThrottle
from edgefuse.ros_bridge.messages import Topic
from edgefuse.ros_bridge.sync import DepthState, NewestSlot, StampSync


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def _core(bundle_dir, subscribed=(), **options):
    transport = RecordingTransport(subscribed)
    config = NodeConfig(bundle=str(bundle_dir), threads=1, **options)
    core = NodeCore(config, transport)
    core.start(worker=False)
    return core, transport


def _step(core, i, color=None, depth=None):
    """Deliver frame i's depth then colour (any bad message given instead) and run what the
    worker would take from the slot; returns the FrameResult (None: no output)."""
    ns = T0 + i * 33_333_337
    if depth is not False:
        core.on_depth(depth if depth is not None else image_msg(depth_mm(i), "16UC1", ns))
    core.on_color(color if color is not None else image_msg(rgb(i), "rgb8", ns))
    pair = core.slot.take(timeout=0)
    return None if pair is None else core.handle(pair)


@pytest.fixture
def core(bundle_dir):
    c, t = _core(bundle_dir, subscribed={Topic.MASK_COLOR})
    yield c, t
    c.stop()


def test_outputs_keep_the_header_and_the_camera_size(core):
    core, tr = core
    core.on_info(info_msg(T0))
    for i in range(3):
        assert _step(core, i) is not None
    masks = tr.on(Topic.MASK)
    assert [m.header.stamp_ns for m in masks] == [T0 + i * 33_333_337 for i in range(3)]   # exact, to the ns
    assert {m.header.frame_id for m in masks} == {FRAME_ID}
    m = masks[0].image
    assert (m.encoding, m.height, m.width, m.step) == ("mono8", H, W, W)
    values = m.data.reshape(H, W)
    classes = json.loads(tr.on(Topic.CLASSES)[0])["classes"]
    assert classes[0] == "void" and 1 <= values.min() and values.max() < len(classes)
    color = tr.on(Topic.MASK_COLOR)[0]
    assert (color.image.encoding, color.image.step) == ("rgb8", 3 * W)
    np.testing.assert_array_equal(color.image.data.reshape(H, W, 3), core.encoder.lut[values])
    assert tr.on(Topic.OVERLAY) == [] and tr.on(Topic.CAMERA_INFO) == []   # lazy / camera size
    info = json.loads(tr.on(Topic.FRAME_INFO)[-1])
    assert info["stamp_ns"] == T0 + 2 * 33_333_337 and info["frame_id"] == FRAME_ID
    assert info["reason"] != "depth_fallback" and info["publish_delay_ms"] > 0
    assert set(info["latency_ms"]) == {"capture", "wait", "gate", "path", "post", "total"}


def test_network_size_mask_and_scaled_camera_info(bundle_dir):
    core, tr = _core(bundle_dir, subscribed={Topic.OVERLAY}, mask_size="network")
    try:
        core.on_info(info_msg(T0))
        _step(core, 0)
    finally:
        core.stop()
    (mask,) = tr.on(Topic.MASK)
    assert (mask.image.height, mask.image.width) == (64, 128)     # the bundle's input size
    (overlay,) = tr.on(Topic.OVERLAY)
    assert (overlay.image.encoding, overlay.image.height, overlay.image.width) == ("rgb8", 64, 128)
    (info,) = tr.on(Topic.CAMERA_INFO)
    assert info.header == mask.header
    assert (info.info["width"], info.info["height"]) == (128, 64)
    assert info.info["k"][0] == pytest.approx(50.0 * 128 / W) and info.info["k"][5] == pytest.approx(24.0 * 64 / H)
    assert info.info["d"] == [0.1, -0.05, 0, 0, 0.01]             # distortion carried unchanged


def test_bad_messages_are_counted_warned_once_and_survived(core):
    core, tr = core
    bad = [
        ("colour", lambda ns: image_msg(rgb(0)[..., :2].copy(), "yuv422", ns)),                   # encoding
        ("colour", lambda ns: image_msg(rgb(0), "yuv422", ns)),                                   # same cause again
        ("colour", lambda ns: image_msg(rgb(0), "rgb8", ns, data=rgb(0).tobytes()[:100])),       # short buffer
        ("colour", lambda ns: image_msg(rgb(0), "rgb8", ns, step=10)),                            # step < width * 3
        ("depth", lambda ns: image_msg(depth_mm(0, 24, 32), "16UC1", ns)),                        # size mismatch
        ("depth", lambda ns: image_msg(depth_mm(0), "mono8", ns)),                                 # depth encoding
    ]
    results = []
    for i, (kind, make) in enumerate(bad, start=1):
        msg = make(T0 + i * 33_333_337)
        results.append(_step(core, i, color=msg if kind == "colour" else None, depth=msg if kind == "depth" else None))
    assert results[:4] == [None] * 4                       # colour unusable: no output, no exception
    assert all(r is not None and r.record["reason"] == "depth_fallback" for r in results[4:])
    assert "depth_size_mismatch" in results[4].record["events"]
    assert _step(core, 99).record["reason"] != "depth_fallback"   # and the next good frame is normal
    status = core.diagnostics.report()
    values = dict(status.values)
    assert values["bad inputs"] == "bad_step: 1, encoding: 3, short_buffer: 1, size_mismatch: 1"
    assert status.level == WARN and "6 bad input messages" in status.message
    warnings = [t for level, t in tr.logs if level == "warn"]
    assert sum("yuv422" in t for t in warnings) == 1       # throttled per cause
    assert any("holds 100 bytes" in t and "/camera/color/image_raw" in t for t in warnings)
    assert any("does not match colour" in t and "aligned_depth" in t for t in warnings)


def test_float_depth_in_metres_and_nan_depth(core):
    core, tr = core
    mm = _step(core, 1).record
    metres = depth_mm(1).astype(np.float32) / 1000.0
    r = _step(core, 1, depth=image_msg(metres, "32FC1", T0 + 33_333_337)).record
    assert r["reason"] == mm["reason"] != "depth_fallback"
    assert r["depth_valid_fraction"] == mm["depth_valid_fraction"] < 1.0      # row 0: 0 = no reading
    nan = np.full((H, W), np.nan, np.float32)
    nan[:4] = 2.0
    r = _step(core, 2, depth=image_msg(nan, "32FC1", T0 + 2 * 33_333_337))
    assert r.record["reason"] == "depth_fallback" and "depth_mostly_invalid" in r.record["events"]
    assert any("valid pixels" in t for _, t in tr.logs)


def test_newest_only_slot_counts_drops(core):
    core, tr = core
    for i in range(5):   # the worker is busy: five pairs arrive, the newest survives
        ns = T0 + i * 33_333_337
        core.on_depth(image_msg(depth_mm(i), "16UC1", ns))
        core.on_color(image_msg(rgb(i), "rgb8", ns))
    r = core.handle(core.slot.take(timeout=0))
    assert r.record["stamp_ns"] == T0 + 4 * 33_333_337 and r.record["dropped"] == 4
    assert core.slot.take(timeout=0) is None
    assert dict(core.diagnostics.report().values)["dropped"] == "4"


def test_depth_timeout_runs_rgb_only_and_disabled_depth_is_no_warning(bundle_dir):
    clock = Clock()
    core, tr = _core(bundle_dir, depth_timeout=0.5)
    core.sync = StampSync(0.02, 0.5, True, clock=clock)
    try:
        assert _step(core, 0).record["reason"] != "depth_fallback"
        clock.t += 1.0                                         # depth stops
        r = _step(core, 1, depth=False)
        assert r.record["reason"] == "depth_fallback" and r.record["events"][0] == "depth_timeout"
        assert any("no depth message for 0.5 s" in t for _, t in tr.logs)
        assert core.diagnostics.report().level == WARN
    finally:
        core.stop()
    core, tr = _core(bundle_dir, depth_topic="")
    try:
        r = _step(core, 0, depth=False)
        assert r.record["reason"] == "depth_fallback" and r.record["events"][0] == "depth_disabled"
        assert tr.logs == [] and core.diagnostics.report().level == OK
    finally:
        core.stop()


def test_worker_thread_publishes_and_stops(bundle_dir):
    """The pipelined worker (the default) publishes what the sequential step computes, and
    stopping joins every stage thread."""
    import threading

    seq, seq_tr = _core(bundle_dir, pipeline=False)
    try:
        expected = [_step(seq, i).record["path"] for i in range(3)]
    finally:
        seq.stop()
    core, tr = _core(bundle_dir)
    core.stop()
    core.start()                          # with the worker this time
    assert "pipelined" in core.step_line and core.step is not None
    try:
        for i in range(3):
            ns = T0 + i * 33_333_337
            core.on_depth(image_msg(depth_mm(i), "16UC1", ns))
            core.on_color(image_msg(rgb(i), "rgb8", ns))
            deadline = time.monotonic() + 20
            while len(tr.on(Topic.FRAME_INFO)) <= i and time.monotonic() < deadline:
                time.sleep(0.01)
        assert [m.header.stamp_ns for m in tr.on(Topic.MASK)] == [T0 + i * 33_333_337 for i in range(3)]
        for got, want in zip(tr.on(Topic.MASK), seq_tr.on(Topic.MASK)):
            np.testing.assert_array_equal(got.image.data, want.image.data)
        assert [json.loads(i)["path"] for i in tr.on(Topic.FRAME_INFO)] == expected
    finally:
        core.stop()
    assert core._worker is None and not [t for t in threading.enumerate() if t.name.startswith("edgefuse")]


# --- the parts on their own ---------------------------------------------------------------------
def test_stamp_sync_pairs_exact_nearest_and_not_beyond_slop():
    clock = Clock()
    sync = StampSync(0.02, 1.0, True, clock=clock)
    s = 1_000_000_000
    assert sync.add_depth(10 * s, "d0") == []
    (p,) = sync.add_color(10 * s, "c0")                         # exact
    assert (p.color, p.depth, p.state) == ("c0", "d0", DepthState.PAIRED)
    assert sync.add_color(11 * s, "c1") == []                   # waits: the nearest depth may come later
    (p,) = sync.add_depth(11 * s + 15_000_000, "d1")            # 15 ms later: within slop
    assert (p.color, p.depth) == ("c1", "d1")
    assert sync.add_color(12 * s, "c2") == []
    (p,) = sync.add_depth(12 * s + 50_000_000, "d2")            # 50 ms: beyond slop
    assert (p.color, p.depth, p.state) == ("c2", None, DepthState.UNPAIRED)


def test_newest_slot():
    slot = NewestSlot()
    assert slot.put(1) is False and slot.put(2) is True and slot.put(3) is True
    assert slot.take(0) == 3 and slot.dropped == 2 and slot.take(0) is None
    slot.close()
    assert slot.take(5.0) is None                               # closed: no waiting


def test_warn_throttle_per_cause():
    clock = Clock()
    throttle = WarnThrottle(5.0, clock=clock)
    assert throttle("a", "A") == "A" and throttle("a", "A") is None and throttle("b", "B") == "B"
    clock.t += 5.0
    assert throttle("a", "A") == "A (1 more like this in the last 5 s)"


def test_diagnostics_levels_and_rates():
    clock = Clock()
    d = Diagnostics("edgefuse: segmentation", "hw", "/cam", no_input_s=3.0, clock=clock)
    clock.t += 1.0
    assert d.report().level == OK                               # starting: not yet silent for 3 s
    clock.t += 3.0
    status = d.report()
    assert status.level == ERROR and "no image on /cam" in status.message
    for _ in range(10):
        d.count("color_in")
        d.frame(path=2, total_ms=10.0, delay_ms=20.0, depth_fallback=False)
    clock.t += 2.0
    status = d.report()
    values = dict(status.values)
    assert status.level == OK and values["input rate (Hz)"] == "5.00" and values["path mix"] == "2: 100%"
    assert values["latency p99 (ms)"] == "10.00" and values["stamp to publish p50 (ms)"] == "20.00"
    d.count("color_in")
    d.count("dropped", 3)
    status = d.report()
    assert status.level == WARN and "3 frames dropped" in status.message
    assert dict(status.values)["dropped (total)"] == "3"


def test_camera_info_follows_the_frame_intrinsics():
    from edgefuse.cameras import Frame, Intrinsics
    from edgefuse.cameras.ros_messages import info_fields
    from edgefuse.ros_bridge.messages import camera_info_of

    info = info_fields(info_msg(T0))
    rgb_ = rgb(0)
    same = Frame(rgb_, None, 0.0, intrinsics=Intrinsics(50.0, 51.0, 32.0, 24.0, W, H), meta={"camera_info": info})
    assert camera_info_of(same) is info                       # the message's own, distortion included
    recalibrated = Frame(rgb_, None, 0.0, intrinsics=Intrinsics(60.0, 61.0, 31.0, 23.0, W, H),
                         meta={"camera_info": info})
    assert camera_info_of(recalibrated)["k"][:3] == [60.0, 0.0, 31.0]


def _calibration_file(tmp_path, with_depth: bool):
    """camera.yaml for the fixtures' camera (colour K as in info_msg), and optionally a depth
    camera at half the resolution, 2 cm to the side."""
    from edgefuse.cameras.base import Intrinsics
    from edgefuse.cameras.camera_info import CameraCalibration, CameraModel, save_camera_calibration
    from edgefuse.cameras.registration import Extrinsics

    color = CameraModel(Intrinsics(55.0, 56.0, 32.0, 24.0, W, H), (0.0,) * 5, name="color")
    depth = CameraModel(Intrinsics(27.5, 28.0, 16.0, 12.0, W // 2, H // 2), (0.0,) * 5, name="ir")
    ext = Extrinsics.from_rt(np.eye(3), [0.02, 0.0, 0.0]) if with_depth else None
    return save_camera_calibration(CameraCalibration(color, depth if with_depth else None, ext),
                                   tmp_path / "camera.yaml")


def test_calibration_registers_raw_depth_and_replaces_intrinsics(bundle_dir, tmp_path):
    cal = _calibration_file(tmp_path, with_depth=True)
    core, tr = _core(bundle_dir, subscribed={Topic.OVERLAY}, mask_size="network", calibration=str(cal),
                     register_depth=True)
    try:
        core.on_info(info_msg(T0))          # the driver's K (fx 50) loses to the file's (fx 55)
        raw = np.full((H // 2, W // 2), 1500, np.uint16)   # raw depth: the depth camera's size
        result = _step(core, 0, depth=image_msg(raw, "16UC1", T0))
    finally:
        core.stop()
    assert result is not None and not result.skipped
    assert result.record["reason"] != "depth_fallback"
    assert result.record["depth_valid_fraction"] > 0.7      # registered onto the colour image
    (info,) = tr.on(Topic.CAMERA_INFO)
    assert info.info["k"][0] == pytest.approx(55.0 * 128 / W)


def test_calibration_without_extrinsics_cannot_register(bundle_dir, tmp_path):
    from edgefuse.errors import ConfigError

    cal = _calibration_file(tmp_path, with_depth=False)
    with pytest.raises(ConfigError, match="depth_to_color"):
        NodeCore(NodeConfig(bundle=str(bundle_dir), calibration=str(cal), register_depth=True),
                 RecordingTransport(()))
    with pytest.raises(ConfigError, match="calibration"):
        NodeConfig(bundle=str(bundle_dir), register_depth=True)
