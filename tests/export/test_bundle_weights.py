"""One copy of the weights (issue 10): the shared external-data file of a bundle - every
distinct tensor stored once, graphs that reference only it, references validated before
any runtime opens a graph, format-1 bundles still read."""

import json
import logging

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from test_manifest import make_bundle

from edgefuse.errors import EdgefuseError
from edgefuse.export.bundle import load_bundle, sha256_file
from edgefuse.export.manifest import ManifestError
from edgefuse.export.verify import ort_session
from edgefuse.export.weights import ALIGN, external_refs, pack_weights


def test_export_stores_each_distinct_tensor_once(dynmm_bundle):
    b = load_bundle(dynmm_bundle.bundle)
    w = b.manifest.weights
    assert b.manifest.format_version == 2 and w.file == "weights.bin"
    assert w.size_bytes == b.weights_file.stat().st_size and w.sha256 == sha256_file(b.weights_file)
    spans = {}
    for graph, refs in b.external.items():
        assert refs, f"{graph} keeps its weights inside"
        for r in refs:
            assert r.location == "weights.bin" and r.offset % ALIGN == 0
            spans[r.offset] = r.length
    # every distinct tensor once: the spans tile the file (up to alignment padding) ...
    stored = sum(spans.values())
    assert w.size_bytes - len(spans) * ALIGN < stored <= w.size_bytes
    # ... and the path graphs share the RGB encoder and decoder: far less than one copy per graph
    assert w.referenced_bytes > 3 * w.size_bytes
    # what is left inside the graphs is small
    assert all(p.stat().st_size < 0.05 * w.size_bytes for p in [b.stem_gate, *b.paths.values()])


def test_each_graph_runs_from_the_shared_file(dynmm_bundle):
    """ONNX Runtime resolves the references itself too (the exporter verified these graphs)."""
    b = load_bundle(dynmm_bundle.bundle)
    sess = ort_session(b.path_file(4))
    assert [i.name for i in sess.get_inputs()] == list(b.manifest.path(4).inputs)


def test_pack_is_deterministic_and_matches_the_embedded_graph(tmp_path):
    from test_manifest import tiny_graph

    shared = np.linspace(-1, 1, 512, dtype=np.float32).reshape(2, 256)
    for run in ("a", "b"):
        d = tmp_path / run
        d.mkdir()
        for k in range(3):
            (d / f"g{k}.onnx").write_bytes(tiny_graph(k, shared))
        packed = pack_weights({f"g{k}": d / f"g{k}.onnx" for k in range(3)}, d)
    assert packed.tensors == 4 and packed.references == 6    # W once, S once per graph
    for name in ("g0.onnx", "g1.onnx", "g2.onnx", "weights.bin"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    x = {"x": np.ones((2, 256), np.float32)}
    got = ort_session(tmp_path / "a" / "g1.onnx").run(None, x)[0]
    own = np.random.default_rng(1).standard_normal(shared.shape).astype(np.float32)
    np.testing.assert_allclose(got, 1 + shared + own, rtol=1e-6)


def _tampered(root, edit=None, **changes):
    """A bundle whose path_2.onnx was edited - `edit(model)`, or its first external
    initializer's reference fields changed - and whose manifest records the edited graph's
    hash, as a malicious manifest would."""
    make_bundle(root)
    graph = root / "path_2.onnx"
    model = onnx.load(str(graph), load_external_data=False)
    if edit is not None:
        edit(model)
    tensor = next(t for t in model.graph.initializer if t.data_location == TensorProto.EXTERNAL)
    for entry in tensor.external_data:
        if entry.key in changes:
            entry.value = str(changes[entry.key])
    graph.write_bytes(model.SerializeToString())
    data = json.loads((root / "manifest.json").read_text())
    for p in data["paths"]:
        if p["file"] == graph.name:
            p["sha256"] = sha256_file(graph)
    (root / "manifest.json").write_text(json.dumps(data))
    return root


@pytest.mark.parametrize("location", ["../outside.bin", "/etc/passwd", "verify.json", "sub/../../outside.bin",
                                      "weights.bin.other", ""])
def test_references_outside_the_weights_file_are_refused(tmp_path, location):
    root = _tampered(tmp_path / "b", location=location)
    (tmp_path / "outside.bin").write_bytes(bytes(4096))
    (root / "weights.bin.other").write_bytes(bytes(4096))
    with pytest.raises(EdgefuseError, match="path_2.onnx.*not the bundle's weights file"):
        load_bundle(root)


@pytest.mark.parametrize("change", [{"offset": 10 ** 9}, {"length": 4}, {"offset": -64}])
def test_references_that_do_not_fit_the_file_are_refused(tmp_path, change):
    with pytest.raises(EdgefuseError, match="does not fit the file"):
        load_bundle(_tampered(tmp_path / "b", **change))


def test_a_reference_hidden_in_a_constant_node_is_checked_too(tmp_path):
    def hide(model):
        hidden = numpy_helper.from_array(np.zeros(256, np.float32), "c")
        hidden.ClearField("raw_data")
        hidden.data_location = TensorProto.EXTERNAL
        for k, v in (("location", "../outside.bin"), ("length", "1024")):
            e = hidden.external_data.add()
            e.key, e.value = k, v
        model.graph.node.append(helper.make_node("Constant", [], ["unused"], value=hidden))
        assert [r.initializer for r in external_refs(model)][-1] is False

    with pytest.raises(EdgefuseError, match="'c' reads its data from '../outside.bin'"):
        load_bundle(_tampered(tmp_path / "b", hide))


def test_weights_file_must_be_named_inside_the_bundle(tmp_path):
    root = tmp_path / "b"
    make_bundle(root)
    data = json.loads((root / "manifest.json").read_text())
    data["weights"]["file"] = "../weights.bin"
    (root / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="escapes the bundle"):
        load_bundle(root)


def test_format_1_bundles_are_read_with_a_message(tmp_path, caplog):
    """Old bundles (weights inside each graph) still run: nothing in them means something
    else now. The message says what they cost and how to re-export."""
    root = tmp_path / "b"
    make_bundle(root, shared_weights=False)
    with caplog.at_level(logging.WARNING, logger="edgefuse.export.bundle"):
        b = load_bundle(root)
    assert b.manifest.format_version == 1 and b.weights_file is None
    assert all(refs == () for refs in b.external.values())
    assert "format 1" in caplog.text and "re-export" in caplog.text
    # a format-1 graph may not reference external data at all (there is no weights file to trust)
    other = tmp_path / "c"
    make_bundle(other)
    data = json.loads((other / "manifest.json").read_text())
    data["format_version"] = 1
    del data["weights"]
    (other / "manifest.json").write_text(json.dumps(data))
    with pytest.raises(EdgefuseError, match="not the bundle's weights file"):
        load_bundle(other)
