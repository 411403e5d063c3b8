"""Read-ahead of playback sources (cameras/readahead.py, FrameSource.read_ahead): frames in
order and complete, the bound holds, errors arrive where they happened, limits and
re-opening unchanged, and no reader thread outlives the iteration or close()."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edgefuse.cameras import Frame, FrameSource, open_source
from edgefuse.cameras.readahead import ReadAhead

WAIT_S = 10.0   # generous: the machine is shared; nothing here is a timing assertion


def _readers() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("edgefuse-readahead-")]


class _Recording(FrameSource):
    """n frames; records which were read and in which thread; raises `fail_at` if set."""

    def __init__(self, n: int, depth: int, frames: int | None = None, fail_at: int | None = None) -> None:
        super().__init__("recording", frames=frames)
        self.read_ahead = depth
        self.n, self.fail_at = n, fail_at
        self.produced: list[int] = []
        self.threads: set[str] = set()
        self.finished: list[str] = []   # thread in which the generator's finally ran
        self.reached: dict[int, threading.Event] = {i: threading.Event() for i in range(n)}

    def _frames(self):
        try:
            for i in range(self.n):
                if i == self.fail_at:
                    raise OSError(f"bad sector at frame {i}")
                self.produced.append(i)
                self.threads.add(threading.current_thread().name)
                self.reached[i].set()
                yield Frame(rgb=np.full((2, 2, 3), i, np.uint8), depth=None, timestamp=i / 30, index=i)
        finally:
            self.finished.append(threading.current_thread().name)


def test_frames_in_order_complete_and_read_in_a_thread():
    src = _Recording(20, depth=3)
    with src:
        got = [f.index for f in src]
    assert got == list(range(20))
    assert src.threads == {"edgefuse-readahead-recording"}
    assert src.finished == ["edgefuse-readahead-recording"]
    assert _readers() == []


def test_reads_ahead_and_the_queue_is_bounded():
    src = _Recording(50, depth=3)
    with src:
        it = iter(src)
        assert next(it).index == 0
        # with one frame consumed the reader fills the queue (3) and holds one more frame
        # it cannot put: frames 1..4, then it waits
        assert src.reached[4].wait(WAIT_S)
        threading.Event().wait(0.2)    # give it room to (wrongly) run further
        assert src.produced == [0, 1, 2, 3, 4]
        assert [next(it).index for _ in range(3)] == [1, 2, 3]
        assert src.reached[7].wait(WAIT_S)
    assert _readers() == []


def test_error_surfaces_after_the_frames_before_it():
    src = _Recording(10, depth=4, fail_at=6)
    got = []
    with src, pytest.raises(OSError, match="bad sector at frame 6"):
        for f in src:
            got.append(f.index)
    assert got == [0, 1, 2, 3, 4, 5]
    assert _readers() == []


def test_frames_limit_is_never_read_past():
    src = _Recording(30, depth=8, frames=5)
    with src:
        assert [f.index for f in src] == [0, 1, 2, 3, 4]
        assert list(src) == []    # the limit holds across iterations, as without read-ahead
    assert src.produced == [0, 1, 2, 3, 4]


def test_close_mid_stream_stops_the_reader_and_reopen_starts_over():
    src = _Recording(100, depth=2)
    src.open()
    it = iter(src)
    assert [next(it).index for _ in range(3)] == [0, 1, 2]
    assert len(_readers()) == 1
    src.close()
    assert _readers() == []
    assert src.finished == ["edgefuse-readahead-recording"]   # closed in its own thread
    with src:
        assert [f.index for _, f in zip(range(4), src)] == [0, 1, 2, 3]
    assert _readers() == []


def test_abandoned_iteration_stops_its_reader():
    src = _Recording(100, depth=2)
    with src:
        for f in src:
            if f.index == 2:
                break
        assert _readers() == []   # the loop's generator closed: its reader stopped with it


def test_read_ahead_object_directly():
    def gen():
        yield from range(5)
        raise ValueError("end of tape")

    reader = ReadAhead(gen(), depth=2, name="direct")
    got = []
    with pytest.raises(ValueError, match="end of tape"):
        for x in reader:
            got.append(x)
    assert got == [0, 1, 2, 3, 4]
    reader.close()
    assert not reader.running
    with pytest.raises(ValueError):
        ReadAhead(iter(()), depth=0)


def test_folder_source_reads_ahead_with_the_same_frames(tiny_dataset):
    root = tiny_dataset(frames=6, size=(32, 32))
    bad = root / "test" / "rgb" / "0003.png"
    bad.write_bytes(b"not a png")                    # a decode error stays a Frame.error
    with open_source(f"folder:{root}") as ahead:
        assert ahead.read_ahead > 0
        frames = list(ahead)
    with open_source(f"folder:{root}") as plain:
        plain.read_ahead = 0
        expected = list(plain)
    assert [f.index for f in frames] == [f.index for f in expected] == list(range(6))
    assert [f.error is not None for f in frames] == [False, False, False, True, False, False]
    for a, b in zip(frames, expected):
        assert a.error == b.error and a.timestamp == b.timestamp
        if a.error is None:
            np.testing.assert_array_equal(a.rgb, b.rgb)
            np.testing.assert_array_equal(a.depth, b.depth)
    assert _readers() == []
