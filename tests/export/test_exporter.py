"""export_bundle: ORT parity per path and per model family, skipped depth stages, costs,
gate_to_path, determinism, atomic writes, INT8."""

import json

import numpy as np
import onnx
import pytest

from edgefuse.export.calib_frames import procedural_frames
from edgefuse.checkpoint import load_model
from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.export.bundle import load_bundle
from edgefuse.export.exporter import VerificationError, export_bundle
from edgefuse.export.onnx_graphs import conv_madds, op_counts
from edgefuse.export.verify import ort_session, run_named
from edgefuse.models.costs import measure_costs

SIZE = (64, 128)   # as tests/export/conftest.py


def _own_parity(bundle_dir, checkpoint, frames=2):
    """Independent of the exporter's own report: run every graph in ORT and the model in
    PyTorch on fresh frames; return (max feature diff, {path: label agreement})."""
    import torch

    model = load_model(checkpoint).model.eval()
    b = load_bundle(bundle_dir)
    stem = ort_session(b.stem_gate)
    sessions = {k: ort_session(p) for k, p in b.paths.items()}
    sg = model.stem_gate_module().eval()
    worst = 0.0
    agree = {k: [] for k in sessions}
    with torch.no_grad():
        for f in procedural_frames(frames, SIZE, seed=77):
            x = f.inputs()
            ref = dict(zip(sg.output_names, (t.numpy() for t in sg(torch.from_numpy(x["rgb"]),
                                                                     torch.from_numpy(x["depth"])))))
            got = run_named(stem, x)
            worst = max(worst, max(float(np.abs(got[n] - ref[n]).max()) for n in ref))
            for k, sess in sessions.items():
                pm = model.path_module(k).eval()
                want = pm(*(torch.from_numpy(ref[n]) for n in pm.input_names)).argmax(1).numpy()
                labels = run_named(sess, ref)["labels"]
                assert labels.dtype == np.int32 and labels.shape == (1, *SIZE)
                agree[k].append(float(np.mean(labels == want)))
    return worst, {k: float(np.mean(v)) for k, v in agree.items()}


def test_every_dynmm_path_matches_pytorch(dynmm_bundle, dynmm_checkpoint):
    worst, agree = _own_parity(dynmm_bundle.bundle, dynmm_checkpoint)
    assert worst < 1e-3
    assert sorted(agree) == [0, 1, 2, 3, 4]
    assert all(a >= 0.999 for a in agree.values()), agree
    report = json.loads((dynmm_bundle.bundle / "verify.json").read_text())
    assert report["passed"] and report["frames"] == 3
    assert all(p["label_agreement"] >= 0.999 for p in report["paths"].values())


def test_path_graphs_contain_only_their_path(dynmm_bundle, dynmm_checkpoint):
    model = load_model(dynmm_checkpoint).model.eval()
    costs = {p.index: p for p in measure_costs(model).paths}
    b = load_bundle(dynmm_bundle.bundle)
    madds, convs = [], []
    for k in range(5):
        graph = onnx.load(str(b.path_file(k)))
        m = conv_madds(graph)
        assert m == pytest.approx(costs[k].path_madds, rel=0.02)
        madds.append(m)
        convs.append(op_counts(graph)["Conv"])
        assert [i.name for i in graph.graph.input] == list(b.manifest.path(k).inputs)
    assert madds == sorted(madds) and len(set(madds)) == 5      # each path adds depth work
    assert convs == sorted(convs) and len(set(convs)) == 5
    # path 0 fuses nothing: no depth input, so no depth stage can be in its graph
    assert b.manifest.path(0).inputs == ("rgb_feat",)
    stem = onnx.load(str(b.stem_gate))
    assert conv_madds(stem) == pytest.approx(measure_costs(model).stem_madds + measure_costs(model).gate_madds, rel=0.02)


def test_manifest_contents(dynmm_bundle, dynmm_checkpoint):
    m = load_bundle(dynmm_bundle.bundle).manifest
    loaded = load_model(dynmm_checkpoint)
    assert m.weights_sha256 == loaded.weights_sha256
    assert m.source == "dynmm-tiny.safetensors"           # no local directories in the bundle
    assert m.input_size == SIZE and m.model["name"] == "dynmm-tiny"
    assert m.gate_to_path == (0, 1, 2, 3, 4)
    assert m.stem_gate.outputs == ("rgb_feat", "depth_feat", "gate_logits")
    gate = next(t for t in m.stem_gate.tensors if t.name == "gate_logits")
    assert gate.shape == (1, 5)
    assert m.labels_dtype == "int32" and m.precision == "fp32"
    assert len(m.palette) == len(m.classes) + 1 == 14
    assert m.verify.passed and m.verify.summary["min_path_label_agreement"] >= 0.999


@pytest.mark.parametrize("name", ["esanet-tiny", "rgb-tiny", "depth-tiny", "early-tiny", "cen-tiny"])
def test_static_families_export_one_path(tmp_path, name, checkpoint_factory):
    ckpt = checkpoint_factory(tmp_path / f"{name}.safetensors", name)
    result = export_bundle(ckpt, tmp_path / "b", verify_frames=1, verify_data="procedural")
    m = result.manifest
    assert [p.index for p in m.paths] == [0] and m.gate_to_path == (0,)
    assert "gate_logits" not in m.stem_gate.outputs
    worst, agree = _own_parity(result.bundle, ckpt, frames=1)
    assert worst < 1e-3 and agree[0] >= 0.999
    costs = measure_costs(load_model(ckpt).model)
    graph = onnx.load(str(result.bundle / "path_0.onnx"))
    assert conv_madds(graph) == pytest.approx(costs.paths[0].path_madds, rel=0.02)
    if name == "cen-tiny":   # exchange masks folded to constants: no |gamma| < t computed in the graph
        assert not {"Abs", "Less", "NonZero", "ScatterND"} & set(op_counts(graph))


def test_modality_dynmm_exports_one_graph_per_expert(tmp_path, checkpoint_factory):
    ckpt = checkpoint_factory(tmp_path / "mod.safetensors", "dynmm-modality-tiny")
    result = export_bundle(ckpt, tmp_path / "b", verify_frames=1, verify_data="procedural")
    m = result.manifest
    assert len(m.paths) == len(m.path_set) >= 2 and "gate_logits" in m.stem_gate.outputs
    rgb_only = [p for p in m.paths if list(p.decision) == [True, False]]
    assert rgb_only and rgb_only[0].inputs == ("rgb_frame",)   # the RGB expert never sees depth
    worst, agree = _own_parity(result.bundle, ckpt, frames=1)
    assert worst < 1e-3 and all(a >= 0.999 for a in agree.values())


def test_subset_of_paths_maps_every_gate_choice(dynmm_checkpoint, tmp_path):
    result = export_bundle(dynmm_checkpoint, tmp_path / "b", paths="0,2,4", verify_frames=1,
                           verify_data="procedural", logits=True)
    m = result.manifest
    assert [p.index for p in m.paths] == [0, 2, 4]
    assert m.gate_to_path == (0, 2, 2, 4, 4)   # the cheapest exported path fusing at least as much
    assert sorted(p.name for p in result.bundle.glob("path_*.onnx")) == ["path_0.onnx", "path_2.onnx", "path_4.onnx"]
    with pytest.raises(ConfigError, match="gate choice 3 .* add path 3"):
        export_bundle(dynmm_checkpoint, tmp_path / "c", paths="0,2")
    with pytest.raises(ConfigError, match="0..4"):
        export_bundle(dynmm_checkpoint, tmp_path / "c", paths="0,7")
    assert not (tmp_path / "c").exists()
    # --logits: path graphs output the logits too, and labels are their argmax
    assert m.logits and m.path(4).outputs == ("labels", "logits")
    out = run_named(ort_session(result.bundle / "path_4.onnx"),
                    run_named(ort_session(result.bundle / "stem_gate.onnx"),
                              procedural_frames(1, SIZE, seed=3)[0].inputs()))
    assert out["logits"].shape == (1, 13, *SIZE)
    assert np.array_equal(out["logits"].argmax(1), out["labels"])


def test_exporting_twice_gives_identical_files(dynmm_checkpoint, dynmm_bundle, tmp_path):
    again = export_bundle(dynmm_checkpoint, tmp_path / "again", verify_frames=3)
    first = sorted(p.name for p in dynmm_bundle.bundle.iterdir())
    assert first == sorted(p.name for p in again.bundle.iterdir())
    for name in first:
        assert (dynmm_bundle.bundle / name).read_bytes() == (again.bundle / name).read_bytes(), name


def test_existing_output_needs_force(dynmm_checkpoint, tmp_path):
    out = tmp_path / "b"
    export_bundle(dynmm_checkpoint, out, paths="4", verify_frames=1, verify_data="procedural")
    with pytest.raises(EdgefuseError, match="--force"):
        export_bundle(dynmm_checkpoint, out, paths="4", verify_frames=1, verify_data="procedural")
    before = (out / "manifest.json").read_text()
    export_bundle(dynmm_checkpoint, out, paths="2,4", force=True, verify_frames=1, verify_data="procedural")
    assert (out / "manifest.json").read_text() != before and (out / "path_2.onnx").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["b"]      # no temp folders left behind
    other = tmp_path / "notabundle"
    other.mkdir()
    (other / "precious.txt").write_text("keep me")
    with pytest.raises(EdgefuseError, match="not an edgefuse bundle"):
        export_bundle(dynmm_checkpoint, other, force=True)
    assert (other / "precious.txt").read_text() == "keep me"


def test_failed_verification_leaves_no_valid_bundle(dynmm_checkpoint, tmp_path, monkeypatch):
    import edgefuse.export.verify as verify

    monkeypatch.setattr(verify, "MIN_LABEL_AGREEMENT", 1.01)   # nothing can pass
    out = tmp_path / "b"
    with pytest.raises(VerificationError, match="path_4.*b.failed"):
        export_bundle(dynmm_checkpoint, out, paths="4", verify_frames=1, verify_data="procedural")
    assert not out.exists()
    failed = tmp_path / "b.failed"
    assert (failed / "manifest.json").is_file()
    with pytest.raises(EdgefuseError, match="failed verification"):
        load_bundle(failed)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.failed"]


def test_int8_bundle_runs_and_reports_agreement(dynmm_checkpoint, tmp_path):
    steps, counts = [], []
    result = export_bundle(dynmm_checkpoint, tmp_path / "b8", precision="int8", paths="0,4", int8_target="tensorrt",
                           calib_frames=4, verify_frames=2, calib_data="procedural", progress=steps.append,
                           count=lambda done, total: counts.append((steps[-1], done, total)))
    m = load_bundle(result.bundle).manifest
    assert m.precision == "int8" and m.engine_precision == "int8"
    assert m.int8_target == "tensorrt" and m.calibration["target"] == "tensorrt"
    assert m.calibration["frames"] == 4 and m.calibration["activations"] == "int8 symmetric"
    # one calibration pass for the three graphs, frame by frame; paths 0 and 4 share the RGB
    # stage 1 (and both read the stem's features): those tensors are collected once
    calib_step = next(s for s in steps if s.startswith("calibrate 3 graphs in one pass"))
    assert [(d, t) for s, d, t in counts if s == calib_step] == [(0, 4), (1, 4), (2, 4), (3, 4), (4, 4), (4, 4)]
    one = m.calibration["one_pass"]
    assert 0 < one["distinct"] < one["tensors"] and one["nodes_merged"] < one["nodes"]
    assert m.calibration["max_frames"] == 4 and steps.index(calib_step) + 1 == steps.index("quantize 3 graphs")
    assert [(d, t) for s, d, t in counts if s == "quantize 3 graphs"] == [(0, 3), (1, 3), (2, 3), (3, 3)]
    # verification: 2 frames through PyTorch, ONNX fp32 and int8
    assert [(d, t) for s, d, t in counts if s == "verify on 2 frames"] == [(i, 6) for i in range(7)]
    i8 = json.loads((result.bundle / "verify.json").read_text())["int8"]
    assert 0.0 < i8["label_agreement_vs_fp32"] <= 1.0
    assert set(i8["path_label_agreement_vs_fp32"]) == {"path_0", "path_4"}
    assert i8["miou_change"] == pytest.approx(i8["miou_int8"] - i8["miou_fp32"])
    assert m.verify.summary["int8"]["label_agreement_vs_fp32"] == i8["label_agreement_vs_fp32"]
    assert not (result.bundle / ".fp32").exists()
    for k in (0, 4):
        graph = onnx.load(str(result.bundle / f"path_{k}.onnx"))
        ops = op_counts(graph)
        assert ops.get("QuantizeLinear", 0) > 0 and ops.get("DequantizeLinear", 0) > 0
        # symmetric activations: every zero point is 0 (what TensorRT accepts)
        zps = [onnx.numpy_helper.to_array(t) for t in graph.graph.initializer if t.name.endswith("_zero_point")]
        assert zps and all(np.all(z == 0) for z in zps)
        # the Q/DQ graph computes the same convolutions as the fp32 one
        assert conv_madds(graph) == pytest.approx(m.path(k).path_madds, rel=0.02)
    sess = ort_session(result.bundle / "path_4.onnx")
    stem = ort_session(result.bundle / "stem_gate.onnx")
    feats = run_named(stem, procedural_frames(1, SIZE, seed=5)[0].inputs())
    assert run_named(sess, feats)["labels"].shape == (1, *SIZE)


def test_int8_for_the_cpu_is_the_default_with_onnx(dynmm_checkpoint, tmp_path):
    """--precision int8 with --backend onnx quantises for ONNX Runtime's CPU kernels: uint8
    activations with zero points, int8 per-channel weights in 7 bits (reduce_range)."""
    result = export_bundle(dynmm_checkpoint, tmp_path / "b8", precision="int8", paths="4",
                           calib_frames=4, verify_frames=2, calib_data="procedural", verify_data="procedural")
    m = load_bundle(result.bundle).manifest
    assert m.int8_target == "cpu" and m.int8_scheme == "cpu"
    assert m.calibration["activations"] == "uint8 asymmetric" and m.calibration["reduce_range"] is True
    graph = onnx.load(str(result.bundle / "path_4.onnx"))
    inits = {t.name: onnx.numpy_helper.to_array(t) for t in graph.graph.initializer}
    act_zps = [v for k, v in inits.items() if k.endswith("_zero_point") and v.dtype == np.uint8]
    assert act_zps and any(np.any(z != 0) for z in act_zps)      # asymmetric activations
    weight_q = [n.input[0] for n in graph.graph.node if n.op_type == "DequantizeLinear" and n.input[0] in inits
                and inits[n.input[0]].dtype == np.int8 and inits[n.input[0]].ndim == 4]
    assert weight_q and all(np.abs(inits[w]).max() <= 64 for w in weight_q)   # 7-bit weights
    assert result.verify["int8"]["label_agreement_vs_fp32"] >= 0.9


def test_int8_target_is_checked_before_any_work(dynmm_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="TensorRT rejects"):
        export_bundle(dynmm_checkpoint, tmp_path / "b", precision="int8", backend="tensorrt", int8_target="cpu")
    with pytest.raises(ConfigError, match="not one of cpu, tensorrt"):
        export_bundle(dynmm_checkpoint, tmp_path / "b", precision="int8", int8_target="gpu")
    with pytest.raises(ConfigError, match="apply to --precision int8 only"):
        export_bundle(dynmm_checkpoint, tmp_path / "b", int8_target="cpu")
    with pytest.raises(ConfigError, match="reduce_range"):
        export_bundle(dynmm_checkpoint, tmp_path / "b", precision="int8", int8_target="tensorrt",
                      int8_reduce_range=True)
    assert list(tmp_path.iterdir()) == []
