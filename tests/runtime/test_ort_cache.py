"""The ORT runner's per-machine cache of layout-optimised graphs (runners/ort_cache.py): built
once, reused, keyed by bundle / ORT release / CPU, its references validated like a bundle's,
and a runner that still runs (bundle graphs, shared weights) where no cache can be used."""

from __future__ import annotations

import json
import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto

import edgefuse.runtime.runners.ort_cache as oc
from edgefuse.export.bundle import load_bundle
from edgefuse.runtime.runners import make_runner


@pytest.fixture(scope="module")
def bundle(bundle_dir):
    return load_bundle(bundle_dir)


def _labels(runner, bundle):
    h, w = bundle.manifest.input_size
    rng = np.random.default_rng(5)
    st = runner.stem_gate((rng.random((1, 3, h, w)) * 255).astype(np.float32),
                          (rng.random((1, 1, h, w)) * 4000).astype(np.float32))
    return {k: runner.run_path(k, st.features) for k in bundle.paths}


def test_graphs_are_optimised_once_and_reused(bundle, tmp_path, monkeypatch):
    monkeypatch.setenv(oc.CACHE_ENV, str(tmp_path))
    with make_runner("ort", bundle, threads=1) as r:
        folder = r.shared.file.parent
        assert folder.parent == tmp_path / "ort" and (folder / oc.INDEX).is_file()
        first = _labels(r, bundle)
    index = json.loads((folder / oc.INDEX).read_text())
    assert index["graphs"] == ["stem_gate"] + [f"path_{k}" for k in sorted(bundle.paths)]
    # every cached graph carries the NCHWc layout ORT would otherwise build per session
    domains = {n.domain for n in onnx.load(str(folder / "path_0.onnx"), load_external_data=False).graph.node}
    assert "com.microsoft.nchwc" in domains
    calls = []
    monkeypatch.setattr(oc, "_build_in_child", lambda *a: calls.append(a))
    with make_runner("ort", bundle, threads=1) as r:
        assert r.shared.file.parent == folder and calls == []          # reused, not rebuilt
        again = _labels(r, bundle)
    with make_runner("ort", bundle, threads=1, share_weights=False) as r:   # the bundle's own graphs
        own = _labels(r, bundle)
    for k in bundle.paths:
        assert np.array_equal(first[k], again[k]) and (first[k] == own[k]).mean() > 0.999


def test_the_key_follows_the_bundle_and_the_runtime(bundle, bundle_copy, monkeypatch):
    import onnxruntime as ort

    key = oc.cache_key(bundle)
    assert oc.cache_key(load_bundle(bundle_copy)) == key       # same manifest, same graphs
    manifest = json.loads((bundle_copy / "manifest.json").read_text())
    manifest["source"] = "another"
    (bundle_copy / "manifest.json").write_text(json.dumps(manifest))
    assert oc.cache_key(load_bundle(bundle_copy)) != key
    monkeypatch.setattr(ort, "__version__", "0.0.1")
    assert oc.cache_key(bundle) != key


def test_without_a_writable_cache_the_runner_still_shares_weights(bundle, tmp_path, monkeypatch, caplog):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(oc.CACHE_ENV, str(blocker))
    with caplog.at_level(logging.WARNING), make_runner("ort", bundle, threads=1) as r:
        assert r.shared.file == bundle.weights_file           # the bundle's weights, shared
        assert _labels(r, bundle)[0].shape == (1, *bundle.manifest.input_size)
    assert "no optimised-graph cache" in caplog.text and oc.CACHE_ENV in caplog.text


def test_a_tampered_cache_is_not_used(bundle, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv(oc.CACHE_ENV, str(tmp_path))
    with make_runner("ort", bundle, threads=1) as r:
        folder = r.shared.file.parent
    graph = folder / "path_0.onnx"
    model = onnx.load(str(graph), load_external_data=False)
    tensor = next(t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL)
    next(e for e in tensor.external_data if e.key == "location").value = "../../../secret.bin"
    graph.write_bytes(model.SerializeToString())
    with caplog.at_level(logging.WARNING), make_runner("ort", bundle, threads=1) as r:
        assert r.shared.file == bundle.weights_file
    assert "not the bundle's weights file" in caplog.text
