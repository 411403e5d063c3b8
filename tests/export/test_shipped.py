"""The shipped `dynmm-tiny-synth` weights (trained, not random: real gate logits and real
label maps) through the real exporter at their own 192x256: every exported path's ORT labels
match PyTorch's on the same features, for all paths and for a `--paths` subset."""

import json

import numpy as np
import pytest
import torch

from edgefuse.export.calib_frames import procedural_frames
from edgefuse.checkpoint import WEIGHTS_DIR, load_model
from edgefuse.export.bundle import load_bundle
from edgefuse.export.exporter import export_bundle
from edgefuse.export.verify import ort_session, run_named, single_thread
from edgefuse.models.costs import measure_costs

NAME = "dynmm-tiny-synth"
SIZE = (192, 256)          # the shipped model's own input size (its card's model_config)


@pytest.fixture(scope="module")
def shipped():
    return load_model(NAME)


@pytest.fixture(scope="module")
def bundles(tmp_path_factory):
    """Both exports once per module (about 6 s on 2 cores): all paths, and paths 0,4."""
    out = tmp_path_factory.mktemp("shipped")
    with single_thread():   # module fixtures run before conftest's per-test thread setting
        return {"all": export_bundle(NAME, out / "all", verify_frames=2),
                "0,4": export_bundle(NAME, out / "sub", paths="0,4", verify_frames=2)}


def _parity(bundle_dir, model, frames=1):
    """Independently of the exporter's report: run the stem in PyTorch, feed the same features
    to each ORT path graph and to the PyTorch path module; {path: label agreement}."""
    b = load_bundle(bundle_dir)
    sg = model.stem_gate_module().eval()
    stem = ort_session(b.stem_gate)
    agree = {k: [] for k in b.paths}
    with torch.no_grad(), single_thread():
        for f in procedural_frames(frames, SIZE, seed=11):
            x = f.inputs()
            ref = dict(zip(sg.output_names, (t.numpy() for t in sg(torch.from_numpy(x["rgb"]),
                                                                     torch.from_numpy(x["depth"])))))
            got = run_named(stem, x)
            for n, want_feat in ref.items():
                np.testing.assert_allclose(got[n], want_feat, atol=1e-3, rtol=1e-3)
            for k, path in b.paths.items():
                pm = model.path_module(k).eval()
                want = pm(*(torch.from_numpy(ref[n]) for n in pm.input_names)).argmax(1).numpy()
                labels = run_named(ort_session(path), ref)["labels"]
                assert labels.shape == (1, *SIZE)
                agree[k].append(float(np.mean(labels == want)))
    return {k: float(np.mean(v)) for k, v in agree.items()}


def _verify_json(result):
    return json.loads((result.bundle / "verify.json").read_text())


def test_all_paths_of_the_shipped_model_match_pytorch(bundles, shipped):
    result = bundles["all"]
    m = load_bundle(result.bundle).manifest
    card = json.loads((WEIGHTS_DIR / f"{NAME}.json").read_text())
    assert m.source == NAME and m.weights_sha256 == card["weights_sha256"] == shipped.weights_sha256
    assert m.input_size == SIZE == tuple(card["model_config"]["input_size"])
    assert [p.index for p in m.paths] == list(range(shipped.model.num_paths)) == [0, 1, 2, 3, 4]
    assert m.gate_to_path == (0, 1, 2, 3, 4)
    report = _verify_json(result)
    assert report["passed"] and report["frames"] == 2 and not report["failures"]
    assert sorted(report["paths"]) == [f"path_{k}" for k in range(5)]
    assert all(p["label_agreement"] >= 0.999 for p in report["paths"].values()), report["paths"]
    agree = _parity(result.bundle, shipped.model)
    assert sorted(agree) == [0, 1, 2, 3, 4]
    assert all(a >= 0.999 for a in agree.values()), agree
    # trained weights: the paths really differ (a parity check on identical outputs proves little)
    b = load_bundle(result.bundle)
    feats = run_named(ort_session(b.stem_gate), procedural_frames(1, SIZE, seed=11)[0].inputs())
    labels = [run_named(ort_session(b.paths[k]), feats)["labels"] for k in (0, 4)]
    assert np.mean(labels[0] != labels[1]) > 0.001


def test_a_subset_of_paths_serves_every_gate_choice(bundles, shipped):
    result = bundles["0,4"]
    m = load_bundle(result.bundle).manifest
    exported = [p.index for p in m.paths]
    assert exported == [0, 4]
    assert sorted(p.name for p in result.bundle.glob("path_*.onnx")) == ["path_0.onnx", "path_4.onnx"]
    # expected from the decisions and the measured costs, not from the exporter's rule
    decisions = list(shipped.model.paths)
    cost = {p.index: p.madds for p in measure_costs(shipped.model).paths}
    want = tuple(min((k for k in exported if all(a or not b for a, b in zip(decisions[k], d))),
                     key=lambda k: cost[k]) for d in decisions)
    assert m.gate_to_path == want
    assert len(m.gate_to_path) == len(decisions) == 5 and set(m.gate_to_path) == {0, 4}
    report = _verify_json(result)
    assert report["passed"] and sorted(report["paths"]) == ["path_0", "path_4"]
    assert all(p["label_agreement"] >= 0.999 for p in report["paths"].values()), report["paths"]
    agree = _parity(result.bundle, shipped.model)
    assert sorted(agree) == [0, 4] and all(a >= 0.999 for a in agree.values()), agree
