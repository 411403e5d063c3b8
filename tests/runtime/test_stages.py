"""The pipelined per-frame step (runtime/stages.py) with the real tiny bundle and ONNX Runtime:
the same outputs as the sequential step, newest-only drops on a live source, failing frames
survived in every stage, and no thread left behind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgefuse.runtime.pipeline import Pipeline, RunConfig
from edgefuse.runtime.stages import Handoff, Intake, PipelinedStep, StageConfig

from runtime_fakes import SIZE, ListSource, make_frame


class Collect:
    """A sink keeping each output's labels and record (optionally slow: a slow post stage)."""

    def __init__(self, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.outputs: list = []

    def write(self, out) -> None:
        time.sleep(self.delay_s)
        self.outputs.append((out.index, out.labels.copy(), dict(out.record)))

    def close(self) -> None:
        pass


class LiveCamera:
    """A live camera over a list: a capture thread (the sources' own LiveCapture) takes a
    frame every `period_s` into a one-frame buffer; an older frame not yet read is dropped."""

    name = "camera"
    is_live = True

    def __init__(self, frames, period_s: float) -> None:
        from edgefuse.cameras.live import LiveCapture

        self.frames = iter(frames)
        self.period_s = period_s
        self.capture = LiveCapture(self._grab, queue_size=1)

    def _grab(self):
        from edgefuse.cameras.live import EndOfStream

        time.sleep(self.period_s)
        frame = next(self.frames, None)
        if frame is None:
            raise EndOfStream
        return frame

    @property
    def dropped(self) -> int:
        return self.capture.dropped

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.capture.stop()

    def __iter__(self):
        return iter(self.capture)


def _run(bundle_dir, source, sink, **kw):
    cfg = RunConfig(bundle=str(bundle_dir), threads=1, retry_backoff_s=0.0, **kw)
    return Pipeline(cfg, source=source, sinks=[sink]).run()


def _stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith(("edgefuse-run-", "edgefuse-test-"))]


def test_pipelined_outputs_equal_sequential_in_order_none_dropped(bundle_dir):
    frames = [make_frame(i, depth=("zero" if i == 3 else "ok")) for i in range(8)]
    seq, pip = Collect(), Collect()
    s_seq = _run(bundle_dir, ListSource(frames), seq, pipeline=False)
    s_pip = _run(bundle_dir, ListSource(frames), pip, pipeline=True)
    assert [o[0] for o in pip.outputs] == list(range(8))          # every frame, in order
    assert s_pip.frames == s_seq.frames == 8 and s_pip.dropped == 0
    for (_, a, ra), (_, b, rb) in zip(seq.outputs, pip.outputs):
        np.testing.assert_array_equal(a, b)                        # bit for bit
        assert {k: ra[k] for k in ("path", "gate_choice", "reason", "dropped")} == \
               {k: rb[k] for k in ("path", "gate_choice", "reason", "dropped")}
    assert pip.outputs[3][2]["reason"] == "depth_fallback"
    assert s_pip.pipeline["dropped"]["before_infer"] == 0
    assert "pipelined" in s_pip.step and "every frame, in order" in s_pip.step and "sequential" in s_seq.step
    assert _stage_threads() == []


def test_live_camera_is_read_just_in_time_and_its_drops_counted(bundle_dir):
    """Frames every 3 ms, slower inference: the pre stage reads the camera's newest frame
    only when the engines need one (it prepares no frame it then drops); the camera's
    buffer drops the rest, and every frame is written or counted."""
    n = 60
    sink = Collect()
    cfg = RunConfig(bundle=str(bundle_dir), threads=1, retry_backoff_s=0.0)
    pipeline = Pipeline(cfg, source=LiveCamera([make_frame(i) for i in range(n)], 0.003), sinks=[sink])
    engines = pipeline.runner.run_path

    def slow_path(*args, **kwargs):
        # The tiny bundle's engines can be faster than the 3 ms camera on a quiet machine:
        # hold them to >= 12 ms so the camera outpaces them on any machine.
        time.sleep(0.012)
        return engines(*args, **kwargs)

    pipeline.runner.run_path = slow_path
    summary = pipeline.run()
    got = [o[0] for o in sink.outputs]
    assert got == sorted(got) and len(got) == summary.frames
    assert summary.dropped > 0 and summary.frames + summary.dropped == n
    assert sum(o[2]["dropped"] for o in sink.outputs) == summary.dropped
    report = summary.pipeline
    assert report["stages"]["pre"]["frames"] == summary.frames and report["dropped"]["before_infer"] == 0
    assert "just in time" in summary.step
    r = summary.rate()
    assert r["output_hz"] > 0 and r["ratio"] is not None


def test_realtime_playback_keeps_the_newest_prepared_frame(bundle_dir, tiny_dataset):
    """--realtime playback (a folder at 30 Hz) drops nothing itself: with a post stage of
    80 ms the queue before inference keeps the newest prepared frame and counts the ones it
    replaced."""
    n = 24
    root = tiny_dataset(frames=n, size=SIZE)
    sink = Collect(delay_s=0.08)
    summary = _run(bundle_dir, None, sink, camera=f"folder:{root}", realtime=True)
    got = [o[0] for o in sink.outputs]
    assert got == sorted(got) and got[0] == 0
    assert summary.dropped == summary.pipeline["dropped"]["before_infer"] > 0
    assert summary.frames + summary.dropped == n
    assert sum(o[2]["dropped"] for o in sink.outputs) == summary.dropped
    assert "newest prepared frame kept" in summary.step


@pytest.mark.parametrize("stage", ["pre", "infer", "post"])
def test_a_failing_frame_in_any_stage_is_counted_and_skipped(bundle_dir, stage):
    cfg = RunConfig(bundle=str(bundle_dir), threads=1)
    p = Pipeline(cfg, source=ListSource([]))
    sink = Collect()
    processor = p.runtime.processor([sink])
    original = getattr(processor, stage)

    def failing(staged, *args):
        index = staged.index if stage == "pre" else staged.frame.index
        if index == 2:
            raise RuntimeError(f"injected in {stage}")
        return original(staged, *args)

    setattr(processor, stage, failing)
    frames = iter([(make_frame(i), time.perf_counter(), 0) for i in range(5)])
    errors = []
    with p.runner:
        step = PipelinedStep(processor, lambda: next(frames), Intake.EVERY,
                             on_error=lambda s, e: errors.append((s, str(e))), name="edgefuse-test")
        with step:
            results = list(step.results())
    assert [r.frame.index for r in results] == [0, 1, 3, 4]
    assert [o[0] for o in sink.outputs] == [0, 1, 3, 4]
    assert errors == [(stage, f"injected in {stage}")]
    assert step.report()["stages"][stage]["failed"] == 1
    assert _stage_threads() == []


def test_stop_joins_every_thread_of_an_endless_live_feed(bundle_dir):
    cfg = RunConfig(bundle=str(bundle_dir), threads=1)
    p = Pipeline(cfg, source=ListSource([]))
    processor = p.runtime.processor([])
    count = iter(range(10**9))

    def feed():
        time.sleep(0.005)
        return make_frame(next(count)), time.perf_counter(), 0

    with p.runner:
        step = PipelinedStep(processor, feed, Intake.JUST_IN_TIME, name="edgefuse-test").start()
        results = step.results()
        first = [next(results).frame.index for _ in range(3)]
        step.stop()
        assert list(results) == []                    # the post stage ends with the stop
    assert first == sorted(first) and step.alive == [] and _stage_threads() == []


def test_source_error_reaches_the_caller_after_the_frames_before_it(bundle_dir):
    from edgefuse.errors import EdgefuseError

    sink = Collect()
    items = [make_frame(0), make_frame(1)] + [OSError("gone")] * 3
    with pytest.raises(EdgefuseError, match="failed 3 times"):
        _run(bundle_dir, ListSource(items), sink, max_source_errors=3)
    assert [o[0] for o in sink.outputs] == [0, 1]
    assert _stage_threads() == []


def test_handoff_blocking_and_newest_only():
    q = Handoff(newest_only=True)
    q.put(1)
    q.put(2)
    assert q.take(0) == (2, 1) and q.dropped == 1
    q.put(3)
    end = threading.Thread(target=q.put, args=("end",), kwargs={"last": True})
    end.start()
    time.sleep(0.1)
    assert end.is_alive()                             # the end never replaces a frame
    assert q.take(0) == (3, 0)
    end.join(2)
    assert q.take(0) == ("end", 0) and q.dropped == 1
    b = Handoff(newest_only=False)
    b.put("a")
    waiter = threading.Thread(target=b.put, args=("b",))
    waiter.start()
    time.sleep(0.1)
    assert waiter.is_alive()                          # waits: the slot is full
    assert b.take(0) == ("a", 0)
    waiter.join(2)
    assert b.take(0) == ("b", 0) and b.dropped == 0
    b.close()
    assert b.put("c") is False


def test_stage_config_rejects_negative_opencv_threads_and_says_the_split():
    from edgefuse.errors import ConfigError

    with pytest.raises(ConfigError, match="--opencv-threads"):
        StageConfig(opencv_threads=-1)
    line = StageConfig(ort_threads=2).describe(Intake.JUST_IN_TIME)
    assert "ORT intra-op 2" in line and "no spinning" in line and "OpenCV 1" in line and "cores" in line


def test_run_flags_choose_the_step_and_the_summary_says_it(bundle_dir, capsys):
    import json

    from edgefuse.cli.main import main

    for flag, words in (("--pipeline", "pipelined per-frame step"), ("--no-pipeline", "sequential per-frame step")):
        assert main(["run", "--bundle", str(bundle_dir), "--frames", "3", "--threads", "1", flag, "--json"]) == 0
        summary = json.loads(capsys.readouterr().out)
        assert summary["frames"] == 3 and words in summary["step"] and "ORT intra-op 1" in summary["step"]
        assert (summary["pipeline"] is not None) == (flag == "--pipeline")
        assert summary["rate"]["ratio"] > 0
    assert main(["run", "--bundle", str(bundle_dir), "--frames", "3", "--opencv-threads", "-1"]) == 2
    assert "--opencv-threads" in capsys.readouterr().err
