"""The synthetic camera's pre-rendered loop (data/synth/cache.py): the frames the renderer
would give, in order, looped; rendered once per seed and size, in worker processes when
there are many; a damaged or unwritable cache never gives a wrong frame."""

from __future__ import annotations

import numpy as np
import pytest

import open3d  # noqa: F401 - a dev extra (make test installs it): missing, this fails

from edgefuse.cameras import open_source  # noqa: E402
from edgefuse.data.synth import SceneRenderer  # noqa: E402
from edgefuse.data.synth.cache import CACHE_ENV, FrameCache  # noqa: E402

SIZE = (24, 32)


def _play(spec: str, **options):
    lines: list[str] = []
    src = open_source(spec, size=SIZE, **options)
    src.on_status = lines.append
    with src:
        frames = list(src)
    return frames, lines


def test_loop_plays_the_rendered_scenes_in_order_and_wraps(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    frames, lines = _play("synthetic:4", frames=7, loop=3, fps=10.0, start=2)
    renderer = SceneRenderer(4, SIZE)
    direct = [renderer.render(i) for i in (2, 3, 4)]
    assert [f.index for f in frames] == [2, 3, 4, 5, 6, 7, 8]
    assert [f.timestamp for f in frames] == pytest.approx([i / 10.0 for i in range(2, 9)])
    for i, f in enumerate(frames):
        np.testing.assert_array_equal(f.rgb, direct[i % 3].rgb)
        np.testing.assert_array_equal(f.depth, direct[i % 3].depth)
        assert f.meta["index"] == 2 + i % 3 and f.meta["source"] == "synthetic:4"
    assert len(lines) == 1 and "rendering 3 of 3 looped scenes" in lines[0]

    again, lines = _play("synthetic:4", frames=7, loop=3, fps=10.0, start=2)
    assert lines == []                                     # nothing rendered the second time
    for a, b in zip(frames, again):
        np.testing.assert_array_equal(a.rgb, b.rgb)


def test_frames_within_the_loop_are_distinct_and_keyed_by_seed_and_size(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    frames, _ = _play("synthetic:1", frames=3)           # loop 100 > frames: 3 distinct scenes
    assert not np.array_equal(frames[0].rgb, frames[1].rgb)
    folders = {FrameCache(1, SIZE).folder, FrameCache(2, SIZE).folder, FrameCache(1, (32, 24)).folder}
    assert len(folders) == 3 and FrameCache(1, SIZE).folder.is_dir()
    assert sorted(p.name for p in FrameCache(1, SIZE).folder.glob("*.json")) == [
        "000000.json", "000001.json", "000002.json"]


def test_a_damaged_frame_is_rendered_again(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    first, _ = _play("synthetic:3", frames=3)
    (FrameCache(3, SIZE).folder / "000001.rgbd").write_bytes(b"truncated")
    again, lines = _play("synthetic:3", frames=3)
    assert len(lines) == 1 and "rendering 1 of 3" in lines[0]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.rgb, b.rgb)


def test_unwritable_cache_falls_back_to_rendering_on_demand(monkeypatch, tmp_path, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(CACHE_ENV, str(blocker / "cache"))
    frames, _ = _play("synthetic:2", frames=2)
    assert "cannot use the frame cache" in caplog.text and CACHE_ENV in caplog.text
    np.testing.assert_array_equal(frames[1].rgb, SceneRenderer(2, SIZE).render(1).rgb)


def test_loop_zero_renders_on_demand_without_a_cache(monkeypatch, tmp_path):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    frames, lines = _play("synthetic:5", frames=2, loop=0)
    assert lines == [] and not any(tmp_path.iterdir())
    np.testing.assert_array_equal(frames[1].rgb, SceneRenderer(5, SIZE).render(1).rgb)


def test_worker_processes_render_the_same_bytes(tmp_path):
    pooled, inline = FrameCache(7, SIZE, tmp_path / "a"), FrameCache(7, SIZE, tmp_path / "b")
    assert pooled.ensure(range(3), workers=2) == [0, 1, 2]    # two worker processes
    assert inline.ensure(range(3), workers=1) == [0, 1, 2]    # this process
    assert pooled.ensure(range(3), workers=2) == []           # all cached now
    for i in range(3):
        a, b = pooled.load(i), inline.load(i)
        np.testing.assert_array_equal(a.rgb, b.rgb)
        np.testing.assert_array_equal(a.depth, b.depth)
        assert a.meta == b.meta and a.intrinsics == b.intrinsics
