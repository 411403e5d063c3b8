"""One-pass calibration (export/calibrate.py, issue 19): the graphs merged with every shared
computation once, per-frame histograms whose percentile ranges match ONNX Runtime's own
calibrator, the early stop, and the frame order that lets a calibration stop early."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgefuse.export.calib_frames import spread_order
from edgefuse.export.calibrate import (BATCH_FRAMES, Collector, NotMergeable, calibrate, range_change,
                                       shared_graph)


def _model(name, inputs, outputs, nodes, inits):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
                          [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
                          initializer=[numpy_helper.from_array(a, n) for n, a in inits.items()])
    return onnx.shape_inference.infer_shapes(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]))


def _weights(seed):
    return np.random.default_rng(seed).normal(size=(4, 4, 3, 3)).astype(np.float32)


def _graphs(pads_b=(1, 1, 1, 1)):
    """A stem (x -> feat) and two paths that share their first conv + relu (the same weights
    under other names) and differ after it; path b's second conv has its own weights."""
    stem = _model("stem", [("x", [1, 4, 8, 8])], [("feat", [1, 4, 8, 8])],
                  [helper.make_node("Mul", ["x", "half"], ["feat"], name="scale")], {"half": np.float32([0.5])})

    def path(name, w2, pads2):
        nodes = [helper.make_node("Conv", ["feat", f"{name}_w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
                 helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
                 helper.make_node("Conv", ["r1", f"{name}_w2"], ["c2"], name="conv2", pads=list(pads2)),
                 helper.make_node("Relu", ["c2"], ["y"], name="relu2")]
        return _model(name, [("feat", [1, 4, 8, 8])], [("y", None)], nodes,
                      {f"{name}_w1": _weights(1), f"{name}_w2": w2})

    return stem, {"path_0": path("a", _weights(2), (1, 1, 1, 1)), "path_1": path("b", _weights(3), pads_b)}


def test_shared_computation_is_merged_once_and_computes_what_each_graph_computes():
    import onnxruntime as ort

    stem, paths = _graphs()
    shared = shared_graph(stem, paths, ["path_0", "path_1"])
    a, b = shared.tensors["path_0"], shared.tensors["path_1"]
    # the stem output, conv1 and relu1 (same weights under other names) are one tensor each ...
    assert a["feat"] == b["feat"] and a["c1"] == b["c1"] and a["r1"] == b["r1"]
    # ... what follows other weights is not
    assert a["c2"] != b["c2"] and a["y"] != b["y"]
    assert shared.total == 10 and len(shared.distinct) == 7
    assert shared.nodes_total == 9 and shared.nodes_merged == 7
    assert sum(1 for t in shared.model.graph.initializer if t.dims == [4, 4, 3, 3]) == 3   # w1 once

    x = np.random.default_rng(0).normal(size=(1, 4, 8, 8)).astype(np.float32)
    run = ort.InferenceSession(shared.model.SerializeToString(), providers=["CPUExecutionProvider"])
    merged = dict(zip(shared.distinct, run.run(shared.distinct, {"x": x})))
    feat = ort.InferenceSession(stem.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
    for name, model in paths.items():
        alone = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        np.testing.assert_allclose(merged[shared.tensors[name]["y"]], alone.run(None, {"feat": feat})[0], rtol=1e-6)


def test_a_different_attribute_is_not_the_same_computation():
    same_w2 = _graphs()[1]["path_0"]
    # path_1 with path_0's second weights but other pads: conv2 must not be merged
    stem, paths = _graphs(pads_b=(0, 0, 0, 0))
    paths["path_1"].graph.initializer[1].CopyFrom(numpy_helper.from_array(_weights(2), "b_w2"))
    shared = shared_graph(stem, paths, ["path_0", "path_1"])
    assert shared.tensors["path_0"]["c2"] != shared.tensors["path_1"]["c2"]
    # with the same pads and weights the whole path is one computation
    stem, paths = _graphs()
    paths["path_1"] = same_w2
    shared = shared_graph(stem, paths, ["path_0", "path_1"])
    assert shared.tensors["path_0"] == shared.tensors["path_1"]


def test_a_graph_with_a_subgraph_is_not_merged():
    stem, paths = _graphs()
    branch = helper.make_graph([helper.make_node("Identity", ["r1"], ["o"])], "b", [],
                               [helper.make_tensor_value_info("o", TensorProto.FLOAT, None)])
    paths["path_0"].graph.node.append(helper.make_node("If", ["cond"], ["z"], then_branch=branch, else_branch=branch))
    with pytest.raises(NotMergeable, match="subgraph"):
        shared_graph(stem, paths, ["path_0"])


def test_percentile_ranges_match_onnx_runtimes_calibrator(tmp_path):
    """The same tensors and ranges as quantize_static's own Percentile calibrator on the same
    frames, to within a histogram bin (the bins start at 0 here, at min |x| there)."""
    from onnxruntime.quantization import CalibrationMethod
    from onnxruntime.quantization.calibrate import create_calibrator

    from edgefuse.export.int8 import feed_reader

    stem, paths = _graphs()
    rng = np.random.default_rng(1)
    feeds = [{"x": (rng.normal(size=(1, 4, 8, 8)) * (1 + i)).astype(np.float32)} for i in range(6)]
    result = calibrate(shared_graph(stem, paths, ["path_0"]), feeds, 6, "Percentile", tolerance=0)
    onnx.save(paths["path_0"], str(tmp_path / "p.onnx"))
    ref_cal = create_calibrator(tmp_path / "p.onnx", None, augmented_model_path=str(tmp_path / "aug.onnx"),
                                calibrate_method=CalibrationMethod.Percentile)
    with contextlib.redirect_stdout(io.StringIO()):
        ref_cal.collect_data(feed_reader([{"feat": f["x"] * np.float32(0.5)} for f in feeds]))
        ref = ref_cal.compute_data()
    mine = result.ranges["path_0"]
    assert set(mine.keys()) == set(ref.keys()) == {"feat", "c1", "r1", "c2", "y"}
    for t in ref.keys():
        lo, hi = (float(v) for v in ref[t].range_value)
        assert [float(v) for v in mine[t].range_value] == pytest.approx([lo, hi], abs=(hi - lo) / 1000)


def test_calibration_stops_once_ranges_are_stable_and_counts_frames():
    stem, paths = _graphs()
    shared = shared_graph(stem, paths, ["path_0", "path_1"])
    x = np.random.default_rng(2).normal(size=(1, 4, 8, 8)).astype(np.float32)
    calls = []
    same = calibrate(shared, [{"x": x}] * 64, 64, "Percentile", tolerance=0.01,
                     count=lambda done, total: calls.append((done, total)))
    # identical frames: the ranges after 16 frames are those after 8 -> stop at the 2nd batch
    assert same.frames == 2 * BATCH_FRAMES and same.changes == [0.0] and same.changes_max == [0.0]
    assert calls[0] == (0, 64) and calls[-1] == (16, 16)
    assert [d for d, _ in calls[1:-1]] == list(range(1, 17))
    # frames that keep getting larger never settle: every frame is used
    growing = [{"x": x * np.float32(1 + i)} for i in range(32)]
    moving = calibrate(shared, growing, 32, "Percentile", tolerance=0.01)
    assert moving.frames == 32 and len(moving.changes) == 2 and min(moving.changes) > 0.01
    # tolerance 0: every frame, no check
    assert calibrate(shared, [{"x": x}] * 20, 20, "MinMax", tolerance=0).frames == 20
    record = same.record(0.01)
    assert record["frames"] == 16 and record["max_frames"] == 64 and record["range_change"] == [0.0]
    assert record["one_pass"] == {"tensors": 10, "distinct": 7, "nodes": 9, "nodes_merged": 7}


def test_range_change_is_relative_to_the_range_and_weighted_by_values():
    old = {"a": (np.float32(0), np.float32(10)), "b": (np.float32(-1), np.float32(1))}
    assert range_change(old, old) == (0, 0)
    new = {"a": (np.float32(0), np.float32(10)), "b": (np.float32(-1), np.float32(1.5))}
    assert range_change(old, new) == pytest.approx((0.5 / 2.5 / 2, 0.5 / 2.5))
    # b has 1 value per frame, a 999: b's move is a thousandth of the mean
    assert range_change(old, new, {"a": 999, "b": 1}) == pytest.approx((0.2 / 1000, 0.2))
    assert range_change({}, old)[0] == float("inf")


def test_histogram_grows_with_later_frames_and_minmax_keeps_extremes():
    c = Collector("Percentile", ["t"])
    c.add({"t": np.linspace(-1, 1, 1001, dtype=np.float32)})
    c.add({"t": np.linspace(-4, 2, 1001, dtype=np.float32)})
    lo, hi = (float(v) for v in c.ranges()["t"][:2])
    assert lo == pytest.approx(-4, abs=0.01) and hi == pytest.approx(2, abs=0.01)   # |x| <= 4, clipped to min/max
    m = Collector("MinMax", ["t"])
    m.add({"t": np.float32([1, 2])})
    m.add({"t": np.float32([-3, 0])})
    assert m.ranges()["t"] == (np.float32(-3), np.float32(2))


def test_spread_order_prefixes_cover_the_source():
    for n in (1, 5, 32, 33):
        order = spread_order(n)
        assert sorted(order) == list(range(n))
    order = spread_order(32)
    assert order[:4] == [0, 16, 8, 24]
    assert max(order[:8]) >= 28 and min(order[:8]) == 0   # 8 of 32 frames span the source


def test_graphs_that_cannot_be_merged_are_calibrated_one_by_one(dynmm_checkpoint, tmp_path, monkeypatch):
    """The fallback: quantize_static calibrates each graph itself, as before issue 19."""
    import edgefuse.export.calibrate as calibrate_module
    from edgefuse.export.exporter import export_bundle

    def refuse(*args, **kwargs):
        raise NotMergeable("test: a node carries a subgraph")

    monkeypatch.setattr(calibrate_module, "shared_graph", refuse)
    steps = []
    result = export_bundle(dynmm_checkpoint, tmp_path / "b8", precision="int8", paths="4", calib_frames=2,
                           verify_frames=1, calib_data="procedural", verify_data="procedural", progress=steps.append)
    assert "quantize 1 graphs (calibrating each)" in steps
    assert result.manifest.calibration["frames"] == 2 and "one_pass" not in result.manifest.calibration
    assert result.verify["int8"]["label_agreement_vs_fp32"] >= 0.9
