"""Manifest schema and bundle integrity, on a hand-made bundle of tiny graphs (no export
needed): hashes, names that escape the folder, and the shared weights file's references."""

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefuse.errors import EdgefuseError
from edgefuse.export.bundle import BundleIntegrityError, check_files, load_bundle
from edgefuse.export.manifest import FORMAT_VERSION, Manifest, ManifestError, read_manifest, write_manifest
from edgefuse.export.weights import pack_weights


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def tiny_graph(seed: int, shared: np.ndarray) -> bytes:
    """y = x + W + S_seed: W is the same in every graph (stored once), S differs per graph."""
    own = np.random.default_rng(seed).standard_normal(shared.shape).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shared.shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(shared.shape))
    nodes = [helper.make_node("Add", ["x", "W"], ["t"]), helper.make_node("Add", ["t", "S"], ["y"])]
    graph = helper.make_graph(nodes, "g", [x], [y], [numpy_helper.from_array(shared, "W"),
                                                   numpy_helper.from_array(own, "S")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def make_bundle(root: Path, shared_weights: bool = True) -> Manifest:
    """A two-path bundle of tiny real graphs whose weights live in one shared weights.bin
    (format 2; `shared_weights=False`: format 1, weights inside each graph); the schema does
    not care what the graphs compute."""
    root.mkdir(parents=True, exist_ok=True)
    shared = np.arange(16 * 16, dtype=np.float32).reshape(16, 16)
    graphs = {"stem_gate.onnx": 0, "path_0.onnx": 1, "path_2.onnx": 2}
    for name, seed in graphs.items():
        (root / name).write_bytes(tiny_graph(seed, shared))
    packed = pack_weights({name: root / name for name in graphs}, root) if shared_weights else None
    (root / "verify.json").write_bytes(b"{}")
    files = {name: (root / name).read_bytes() for name in [*graphs, "verify.json"] + ([packed.file] if packed else [])}
    decisions = [[i < k for i in range(4)] for k in range(5)]
    tensor = {"name": "rgb_feat", "shape": [1, 16, 48, 64], "dtype": "float32"}
    data = {
        "format_version": FORMAT_VERSION, "edgefuse_version": "0.1.0",
        "model": {"name": "dynmm-tiny", "family": "dynmm"}, "weights_sha256": None, "source": "dynmm-tiny",
        "input_size": [192, 256],
        "normalization": {"rgb_mean": [0.485, 0.456, 0.406], "depth_unit": "mm"},
        "classes": ["a", "b"], "palette": [[0, 0, 0], [1, 2, 3], [4, 5, 6]],
        "precision": "fp32", "engine_precision": "fp16", "labels_dtype": "int32", "logits": False,
        "stem_gate": {"file": "stem_gate.onnx", "sha256": _sha(files["stem_gate.onnx"]),
                      "inputs": ["rgb", "depth"], "outputs": ["rgb_feat", "depth_feat", "gate_logits"],
                      "tensors": [tensor], "madds": 1.0},
        "paths": [
            {"index": 0, "decision": decisions[0], "madds": 2.0, "depth_encoder_madds": 0.5, "path_madds": 1.0,
             "file": "path_0.onnx", "sha256": _sha(files["path_0.onnx"]), "inputs": ["rgb_feat"]},
            {"index": 2, "decision": decisions[2], "madds": 3.0, "depth_encoder_madds": 1.0, "path_madds": 2.0,
             "file": "path_2.onnx", "sha256": _sha(files["path_2.onnx"]), "inputs": ["rgb_feat", "depth_feat"]},
        ],
        "gate_to_path": [0, 2, 2, 2, 2], "path_set": decisions,
        "verify": {"file": "verify.json", "sha256": _sha(files["verify.json"]), "passed": True, "summary": {}},
    }
    if packed is not None:
        data["weights"] = {"file": packed.file, "sha256": _sha(files[packed.file]), "size_bytes": packed.size_bytes,
                           "tensors": packed.tensors, "referenced_bytes": packed.referenced_bytes}
    else:
        data["format_version"] = 1
    # gate_to_path above is wrong for choices 3 and 4 in real life (they fuse more than path 2);
    # the schema only checks that every target exists.
    m = Manifest.from_dict(data)
    write_manifest(root, m)
    return m


def test_round_trip_is_identical(tmp_path):
    m = make_bundle(tmp_path / "b")
    text = (tmp_path / "b" / "manifest.json").read_text()
    again = Manifest.from_json(text)
    assert again == m
    assert again.to_json() == text
    assert again.stem_gate.tensors[0].shape == (1, 16, 48, 64)
    assert again.path_for_choice(3).index == 2


def test_load_bundle_resolves_files(tmp_path):
    make_bundle(tmp_path / "b")
    b = load_bundle(tmp_path / "b")
    assert b.stem_gate.name == "stem_gate.onnx" and b.stem_gate.is_file()
    assert sorted(b.paths) == [0, 2]
    assert b.file_for_choice(1) == b.path_file(2)
    with pytest.raises(KeyError):
        b.path_file(1)


@pytest.mark.parametrize("name", ["weights.bin", "path_2.onnx"])
def test_flipped_byte_is_detected(tmp_path, name):
    make_bundle(tmp_path / "b")
    f = tmp_path / "b" / name
    data = bytearray(f.read_bytes())
    data[3] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(BundleIntegrityError, match=name):
        load_bundle(tmp_path / "b")
    bad = [c for c in check_files(tmp_path / "b", read_manifest(tmp_path / "b")) if not c.ok]
    assert [c.file for c in bad] == [name]
    if name == "weights.bin":
        load_bundle(tmp_path / "b", check_hashes=False)  # the caller may skip hashing explicitly
    else:   # even unhashed, a graph whose external-data references cannot be read is not loaded
        with pytest.raises(EdgefuseError, match="path_2.onnx is not a readable ONNX graph"):
            load_bundle(tmp_path / "b", check_hashes=False)


def test_missing_file_is_detected(tmp_path):
    make_bundle(tmp_path / "b")
    (tmp_path / "b" / "stem_gate.onnx").unlink()
    with pytest.raises(BundleIntegrityError, match="stem_gate.onnx.*missing"):
        load_bundle(tmp_path / "b")


@pytest.mark.parametrize("name", ["../x.onnx", "/etc/passwd", "a/../../x.onnx", "..\\x.onnx", "C:/x.onnx", ""])
def test_paths_escaping_the_bundle_are_rejected(tmp_path, name):
    make_bundle(tmp_path / "b")
    mf = tmp_path / "b" / "manifest.json"
    data = json.loads(mf.read_text())
    data["paths"][1]["file"] = name
    mf.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match="escapes the bundle|non-empty"):
        load_bundle(tmp_path / "b")


def test_symlink_out_of_the_bundle_is_rejected(tmp_path):
    make_bundle(tmp_path / "b")
    outside = tmp_path / "outside.onnx"
    outside.write_bytes(b"path two")
    target = tmp_path / "b" / "path_2.onnx"
    target.unlink()
    target.symlink_to(outside)
    with pytest.raises(EdgefuseError, match="outside the bundle"):
        load_bundle(tmp_path / "b")


@pytest.mark.parametrize("change, message", [
    (lambda d: d.update(extra_key=1), "unknown key"),
    (lambda d: d.update(format_version=FORMAT_VERSION + 1), "newer"),
    (lambda d: d.pop("format_version"), "format_version"),
    (lambda d: d["stem_gate"].update(sha256="abc"), "64 lowercase hex"),
    (lambda d: d.update(gate_to_path=[0, 1, 2, 2, 2]), "does not contain"),
    (lambda d: d.update(gate_to_path=[0, 2]), "entries"),
    (lambda d: d["paths"][1].update(inputs=["nope"]), "does not output"),
    (lambda d: d["paths"][0].update(decision=[True, True, False, False]), "path_set"),
    (lambda d: d.update(precision="fp8"), "precision"),
    (lambda d: d.update(precision="int8"), "engine_precision must be int8"),
    (lambda d: d.update(input_size="192x256"), "input_size"),
])
def test_schema_rejects_bad_manifests(tmp_path, change, message):
    make_bundle(tmp_path / "b")
    mf = tmp_path / "b" / "manifest.json"
    data = json.loads(mf.read_text())
    change(data)
    mf.write_text(json.dumps(data))
    with pytest.raises(ManifestError, match=message):
        read_manifest(tmp_path / "b")


def test_not_a_bundle(tmp_path):
    with pytest.raises(EdgefuseError, match="not found"):
        load_bundle(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ManifestError, match="not an edgefuse bundle"):
        load_bundle(tmp_path / "empty")
    (tmp_path / "empty" / "manifest.json").write_text("{not json")
    with pytest.raises(ManifestError, match="not valid JSON"):
        load_bundle(tmp_path / "empty")


def test_failed_verification_is_refused(tmp_path):
    m = make_bundle(tmp_path / "b")
    write_manifest(tmp_path / "b", dataclasses.replace(m, verify=dataclasses.replace(m.verify, passed=False)))
    with pytest.raises(BundleIntegrityError, match="failed verification"):
        load_bundle(tmp_path / "b")
    assert load_bundle(tmp_path / "b", allow_unverified=True).manifest.verify.passed is False
