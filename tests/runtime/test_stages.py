"""The pipelined per-frame step (runtime/stages.py) with the real tiny bundle and ONNX Runtime:
the same outputs as the sequential step, newest-only drops on a live source, failing frames
survived in every stage, and no thread left behind."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from edgefuse.runtime.pipeline import Pipeline, RunConfig
from edgefuse.runtime.stages import Handoff, PipelinedStep, StageConfig

from runtime_fakes import ListSource, make_frame


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


class LiveList(ListSource):
    """A live camera over a list: one frame every `period_s`, faster than inference."""

    is_live = True

    def __init__(self, items, period_s: float) -> None:
        super().__init__(items)
        self.period_s = period_s

    def __iter__(self):
        for item in super().__iter__():
            time.sleep(self.period_s)
            yield item


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
    assert "pipelined" in s_pip.step and "blocking input" in s_pip.step and "sequential" in s_seq.step
    assert _stage_threads() == []


def test_live_source_keeps_the_newest_and_counts_drops(bundle_dir):
    """Frames every 2 ms and a post stage of 40 ms: the queue before inference drops."""
    n = 40
    sink = Collect(delay_s=0.04)
    summary = _run(bundle_dir, LiveList([make_frame(i) for i in range(n)], 0.002), sink)
    got = [o[0] for o in sink.outputs]
    assert got == sorted(got) and got[0] == 0                      # in order, newest first out
    assert summary.dropped == summary.pipeline["dropped"]["before_infer"] > 0
    assert summary.frames + summary.dropped == n                  # each frame written or counted
    assert sum(o[2]["dropped"] for o in sink.outputs) <= summary.dropped
    assert "newest-only input" in summary.step
    r = summary.rate()
    assert r["output_hz"] > 0 and r["ratio"] is not None


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
        step = PipelinedStep(processor, lambda: next(frames), newest_only=False,
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
        step = PipelinedStep(processor, feed, newest_only=True, name="edgefuse-test").start()
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
    line = StageConfig(ort_threads=2).describe(newest_only=True)
    assert "ORT intra-op 2" in line and "no spinning" in line and "OpenCV 1" in line and "cores" in line
