"""NearestPairer: every colour frame out once, with the depth nearest in time."""

from __future__ import annotations

from edgefuse.cameras.pairing import NearestPairer


def _run(events, max_gap=None):
    p = NearestPairer(max_gap=max_gap)
    out = []
    for kind, t in events:
        out += p.add_color(t, f"c{t}") if kind == "c" else p.add_depth(t, f"d{t}")
    out += p.flush()
    return [(c, d) for _, c, d in out]


def test_nearest_may_come_after_the_colour_frame():
    # depth 0.031 is nearer to colour 0.033 than depth 0.0 is, and arrives after it.
    got = _run([("d", 0.0), ("c", 0.0), ("c", 0.033), ("d", 0.031), ("c", 0.066), ("d", 0.067)])
    assert got == [("c0.0", "d0.0"), ("c0.033", "d0.031"), ("c0.066", "d0.067")]


def test_half_rate_depth_is_shared():
    ev = [("c", 0.0), ("d", 0.0), ("c", 0.033), ("c", 0.066), ("d", 0.066), ("c", 0.1)]
    got = _run(ev, max_gap=0.05)
    assert [c for c, _ in got] == ["c0.0", "c0.033", "c0.066", "c0.1"]
    assert got[1][1] in ("d0.0", "d0.066") and got[2][1] == "d0.066" and got[3][1] == "d0.066"


def test_stalled_depth_releases_colour_without_depth():
    ev = [("d", 0.0), ("c", 0.0)] + [("c", round(0.033 * i, 3)) for i in range(1, 6)]
    got = _run(ev, max_gap=0.05)
    assert len(got) == 6 and got[0] == ("c0.0", "d0.0")
    assert all(d is None for _, d in got[2:])


def test_no_depth_at_all():
    assert _run([("c", 0.0), ("c", 0.1)]) == [("c0.0", None), ("c0.1", None)]
