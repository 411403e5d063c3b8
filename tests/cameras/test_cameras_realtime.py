"""`realtime=True` playback (folder and bag sources) delivers frames at their timestamps'
spacing; without it nothing waits. A fake clock stands in for the `time` module of the
pacing (cameras/readahead.py, on the consumer's side of the read-ahead queue), so the test
measures the requested waits exactly instead of sleeping."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from edgefuse.cameras import open_source
from edgefuse.data import layout


class FakeClock:
    """monotonic() / sleep() of a clock that only moves when slept on or told to."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += seconds


def _play(spec: str, clock: FakeClock, work_s: float = 0.0, **options):
    """Iterate the source; the reader spends `work_s` of fake time on every frame. Returns
    (frame timestamps, fake time at which each frame was delivered)."""
    stamps, delivered = [], []
    with open_source(spec, **options) as src:
        for frame in src:
            stamps.append(frame.timestamp)
            delivered.append(clock.now)
            clock.now += work_s
    return stamps, delivered


@pytest.fixture
def clock(monkeypatch):
    from edgefuse.cameras import readahead

    fake = FakeClock()
    monkeypatch.setattr(readahead, "time", fake)
    return fake


def _gaps(values):
    return [b - a for a, b in pairwise(values)]


def test_folder_realtime_paces_by_the_frame_rate(tiny_dataset, clock):
    root = tiny_dataset(frames=4, size=(32, 32))
    stamps, delivered = _play(f"folder:{root}", clock, work_s=0.01, realtime=True, fps=20.0)
    assert stamps == pytest.approx([i / 20.0 for i in range(4)])
    # the reader's own 10 ms per frame counts toward the 50 ms period: it waits the rest
    assert clock.sleeps == pytest.approx([0.04, 0.04, 0.04])
    assert _gaps(delivered) == pytest.approx(_gaps(stamps))


def test_folder_realtime_follows_recorded_timestamps(tiny_dataset, clock):
    """meta.jsonl timestamps (uneven, as a real capture) set the pace, not the nominal fps."""
    root = tiny_dataset(frames=4, size=(32, 32))
    recorded = [5.0, 5.1, 5.15, 5.4]
    meta = root / "test" / layout.META_FILE
    rows = [json.loads(line) for line in meta.read_text().splitlines()]
    meta.write_text("".join(json.dumps({**r, "timestamp": t}) + "\n" for r, t in zip(rows, recorded)))
    stamps, delivered = _play(f"folder:{root}", clock, realtime=True, fps=30.0)
    assert stamps == recorded
    assert clock.sleeps == pytest.approx(_gaps(recorded))
    assert _gaps(delivered) == pytest.approx(_gaps(recorded))


def test_folder_realtime_never_waits_for_a_slow_reader(tiny_dataset, clock):
    root = tiny_dataset(frames=3, size=(32, 32))
    _, delivered = _play(f"folder:{root}", clock, work_s=0.2, realtime=True, fps=20.0)
    assert clock.sleeps == [] and _gaps(delivered) == pytest.approx([0.2, 0.2])


def test_folder_without_realtime_never_waits(tiny_dataset, clock):
    root = tiny_dataset(frames=4, size=(32, 32))
    stamps, delivered = _play(f"folder:{root}", clock, fps=20.0)
    assert len(stamps) == 4 and clock.sleeps == []
    assert delivered == [1000.0] * 4


def test_bag_realtime_paces_by_the_recorded_timestamps(tmp_path, clock):
    import pyrealsense2  # noqa: F401 - a dev extra (make test installs it): missing, this fails
    from cameras_rs_recording import record

    path = tmp_path / "rec.db3"
    record(path, 4, fps=15)
    stamps, delivered = _play(f"bag:{path}", clock, realtime=True)
    assert len(stamps) == 4 and _gaps(stamps) == pytest.approx([1 / 15] * 3, abs=1e-3)
    assert clock.sleeps == pytest.approx(_gaps(stamps))
    assert _gaps(delivered) == pytest.approx(_gaps(stamps))
    clock.sleeps.clear()
    assert len(_play(f"bag:{path}", clock)[0]) == 4 and clock.sleeps == []
