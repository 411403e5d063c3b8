"""LiveCapture: drop-oldest with counted drops, and disconnect -> retry -> recover, with fake
grab functions (no camera). Synchronised with events, not sleeps-and-hope timing."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from edgefuse.cameras import EndOfStream, Frame, LiveCapture, SourceDisconnected


def _frame(i: int) -> Frame:
    return Frame(rgb=np.zeros((2, 2, 3), np.uint8), depth=None, timestamp=float(i), index=i)


def test_slow_consumer_sees_newest_frames_and_drops_are_counted():
    n, queue_size = 40, 3
    produced = threading.Event()
    state = {"i": 0}

    def grab():
        if state["i"] == n:
            produced.set()
            raise EndOfStream
        state["i"] += 1
        return _frame(state["i"] - 1)

    cap = LiveCapture(grab, queue_size=queue_size)
    with cap:
        assert produced.wait(10)  # the consumer has not read anything: the producer ran ahead
        got = [f.index for f in cap]
    # Only the newest queue_size frames survive; every other frame is a counted drop.
    assert got == list(range(n - queue_size, n))
    assert cap.dropped == n - queue_size and cap.captured == n


def test_consumer_interleaved_sees_increasing_indices_and_all_accounted():
    n = 30
    gate = threading.Semaphore(0)
    state = {"i": 0}

    def grab():
        if state["i"] == n:
            raise EndOfStream
        if state["i"] % 5 == 4:
            gate.acquire(timeout=5)  # let the consumer catch up now and then
        state["i"] += 1
        return _frame(state["i"] - 1)

    cap = LiveCapture(grab, queue_size=2)
    got = []
    with cap:
        for f in cap:
            got.append(f.index)
            gate.release()
    assert got == sorted(got) and got[-1] == n - 1
    assert len(got) + cap.dropped == n


def test_disconnect_is_retried_and_the_run_goes_on():
    statuses = []
    state = {"i": 0, "failures": 0, "reconnects": 0}
    plugged = threading.Event()
    plugged.set()

    def grab():
        if not plugged.is_set():
            raise SourceDisconnected("USB device gone")
        if state["i"] == 3 and state["failures"] == 0:
            state["failures"] += 1
            plugged.clear()  # unplugged after 3 frames
            raise SourceDisconnected("USB device gone")
        if state["i"] == 8:
            raise EndOfStream
        state["i"] += 1
        return _frame(state["i"] - 1)

    def reconnect():
        state["reconnects"] += 1
        if state["reconnects"] < 3:  # still unplugged for two attempts
            raise SourceDisconnected("camera not found")
        plugged.set()

    cap = LiveCapture(grab, queue_size=100, reconnect=reconnect, backoff=(0.001, 0.004),
                      on_status=statuses.append)
    with cap:
        got = [f.index for f in cap]
    assert got == list(range(8))  # frames before and after the outage, none lost
    assert cap.disconnects == 1 and state["reconnects"] == 3
    assert "disconnected" in statuses[0] and "USB device gone" in statuses[0]
    assert sum("attempt" in s and "failed" in s for s in statuses) == 2
    assert "reconnected" in statuses[-1]


def test_without_reconnect_hook_the_grab_itself_is_retried():
    calls = {"n": 0}

    def grab():
        calls["n"] += 1
        if calls["n"] in (2, 3, 4):
            raise SourceDisconnected("timeout")
        if calls["n"] > 6:
            raise EndOfStream
        return _frame(calls["n"])

    cap = LiveCapture(grab, queue_size=10, backoff=(0.001, 0.002))
    with cap:
        got = [f.index for f in cap]
    assert got == [1, 5, 6] and cap.disconnects == 1


def test_giving_up_reaches_the_consumer():
    def grab():
        raise SourceDisconnected("gone")

    cap = LiveCapture(grab, backoff=(0.001, 0.002), give_up_after=0.02)
    with cap, pytest.raises(SourceDisconnected, match="still disconnected"):
        list(cap)


def test_bugs_in_grab_surface_with_their_type():
    def grab():
        raise ZeroDivisionError("bug")

    with LiveCapture(grab) as cap, pytest.raises(ZeroDivisionError):
        cap.get(timeout=5)


def test_stop_ends_iteration_promptly():
    cap = LiveCapture(lambda: None).start()  # a camera that never delivers
    assert cap.get(timeout=0.05) is None
    cap.stop()
    assert not cap.running and cap.get() is None
