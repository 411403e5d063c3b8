"""The TensorRT timing cache kept in a bundle is in the manifest's integrity record: every
engine entry names it with its sha256, and load_bundle / `edgefuse inspect` refuse a
bundle whose cache was changed. TensorRT is the recording fake of test_tensorrt_build.py."""

from __future__ import annotations

import dataclasses
import json
import sys

import pytest
from test_tensorrt_build import SHA, engine, fake_tensorrt

from edgefuse.cli.main import main
from edgefuse.export import tensorrt_build as tb
from edgefuse.export.bundle import BundleIntegrityError, load_bundle, sha256_file
from edgefuse.export.manifest import Manifest, ManifestError, read_manifest


@pytest.fixture
def trt_bundle(monkeypatch, dynmm_checkpoint, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("10.3.0.30", []))
    monkeypatch.setattr(tb, "gpu_info", lambda: ("Orin", "8.7"))
    from edgefuse.export.exporter import export_bundle

    return export_bundle(dynmm_checkpoint, tmp_path / "b", backend="tensorrt", precision="fp16", paths="4",
                         verify_frames=1, verify_data="procedural", workspace_mb=64).bundle


def test_timing_cache_hash_is_recorded_and_checked(trt_bundle, capsys):
    cache = trt_bundle / tb.TIMING_CACHE
    m = load_bundle(trt_bundle).manifest
    assert len(m.engines) == 2
    for e in m.engines:   # the cache as written after the last build
        assert (e.timing_cache, e.timing_cache_sha256) == (tb.TIMING_CACHE, sha256_file(cache))
    # listed once among the files the manifest vouches for (and so in `edgefuse inspect`)
    assert [f for f in m.files() if f[0] == "timing_cache"] == [("timing_cache", tb.TIMING_CACHE, sha256_file(cache))]
    assert main(["inspect", str(trt_bundle)]) == 0
    assert "timing_cache" in capsys.readouterr().out

    cache.write_bytes(cache.read_bytes() + b"tampered")
    with pytest.raises(BundleIntegrityError, match=r"engines/timing\.cache \(timing_cache\): sha256"):
        load_bundle(trt_bundle)
    assert main(["inspect", str(trt_bundle)]) == 2
    assert "engines/timing.cache" in capsys.readouterr().err
    cache.unlink()
    with pytest.raises(BundleIntegrityError, match=r"engines/timing\.cache \(timing_cache\): missing"):
        load_bundle(trt_bundle)


def test_manifest_names_other_tools_read_are_unchanged(trt_bundle):
    data = json.loads((trt_bundle / "manifest.json").read_text())
    assert {"format_version", "edgefuse_version", "model", "input_size", "classes", "palette", "stem_gate",
            "paths", "engines"} <= set(data)
    assert {"file", "sha256"} <= set(data["stem_gate"])
    assert all({"index", "decision", "madds", "file", "sha256"} <= set(p) for p in data["paths"])
    assert "timing_cache" not in data                     # recorded in the engines section
    assert all(e["timing_cache"] == tb.TIMING_CACHE and len(e["timing_cache_sha256"]) == 64
               for e in data["engines"])


def test_manifest_validates_the_cache_record(trt_bundle):
    m = read_manifest(trt_bundle)
    e = m.engines[0]
    data = m.to_dict()
    data["engines"][0]["timing_cache_sha256"] = "xyz"
    with pytest.raises(ManifestError, match=r"engines\[stem_gate\]\.timing_cache: sha256 'xyz'"):
        Manifest.from_dict(data)
    orphan = dataclasses.replace(e, timing_cache="", timing_cache_sha256=SHA)
    with pytest.raises(ManifestError, match="timing_cache_sha256 without a timing_cache file"):
        dataclasses.replace(m, engines=(orphan,))
    escaping = dataclasses.replace(e, timing_cache="../timing.cache")
    with pytest.raises(ManifestError, match="escapes the bundle folder"):
        dataclasses.replace(m, engines=(escaping,))


def test_bundles_without_a_recorded_cache_hash_still_load():
    """Engine entries written before the hash was recorded name the cache without one."""
    old = engine(timing_cache="engines/timing.cache")
    assert old.timing_cache_sha256 == ""
    assert tb.check_engine_compat(old, tb.RuntimeInfo("10.3.0.30", "Orin", "8.7")).action is tb.Action.OK
