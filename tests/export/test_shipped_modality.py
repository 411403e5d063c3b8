"""The shipped modality-level `dynmm-modality-tiny-synth` (experts = the shipped rgb-tiny-synth
and the static ESANet trained 24 epochs, gate trained with them frozen): loads by name, runs `infer`, and
exports to one graph per expert plus the gate that verifies against PyTorch."""

import json

import onnx
import pytest
import torch

from edgefuse.export.calib_frames import procedural_frames
from edgefuse.checkpoint import WEIGHTS_DIR, load_model
from edgefuse.export.bundle import load_bundle
from edgefuse.export.exporter import export_bundle
from edgefuse.export.verify import single_thread

NAME = "dynmm-modality-tiny-synth"
SIZE = (192, 256)


@pytest.fixture(scope="module")
def shipped():
    return load_model(NAME)


def test_loads_by_name_with_its_static_experts(shipped):
    card = json.loads((WEIGHTS_DIR / f"{NAME}.json").read_text())
    assert shipped.kind == "shipped" and shipped.weights_sha256 == card["weights_sha256"]
    assert shipped.config.name == "dynmm-modality-tiny" and tuple(shipped.config.input_size) == SIZE
    model = shipped.model
    assert model.paths.decisions == ((True, False), (True, True))
    own = model.state_dict()
    # expert 0 is the shipped RGB-only network as it is (frozen while the gate trained)
    for n, t in load_model("rgb-tiny-synth").model.state_dict().items():
        assert torch.equal(own[f"experts.0.{n}"], t), n
    # expert 1 is the static ESANet trained 24 epochs (issue 17: the fair static baseline),
    # made by the command the card records: an ESANet of the shipped one's shape, other weights
    esanet = load_model("esanet-tiny-synth").model.state_dict()
    assert {n: t.shape for n, t in esanet.items()} == {
        n[len("experts.1."):]: t.shape for n, t in own.items() if n.startswith("experts.1.")}
    assert any(not torch.equal(own[f"experts.1.{n}"], t) for n, t in esanet.items() if t.is_floating_point())
    assert "edgefuse train configs/experiments/esanet-tiny-synth-24ep.yaml" in card["command"]
    assert card["train_config"]["model"]["init_experts"][1] == "runs/esanet-tiny-synth-24ep/model.safetensors"
    assert card["eval"]["path_ratio"] is not None and len(card["eval"]["path_ratio"]) == 2


def test_infer_runs_the_chosen_expert(shipped):
    model = shipped.model.eval()
    frames = procedural_frames(2, SIZE, seed=5)
    rgb = torch.cat([torch.from_numpy(f.inputs()["rgb"]) for f in frames])
    depth = torch.cat([torch.from_numpy(f.inputs()["depth"]) for f in frames])
    with torch.no_grad(), single_thread():
        logits, index = model.infer(rgb, depth)
        assert logits.shape == (2, 13, *SIZE) and set(index.tolist()) <= {0, 1}
        for i, k in enumerate(index.tolist()):
            alone = model(rgb[i:i + 1], depth[i:i + 1], path=k)
            assert torch.allclose(logits[i:i + 1], alone, atol=1e-4)


def test_exports_one_graph_per_expert_plus_the_gate_and_verifies(tmp_path, shipped):
    with single_thread():
        result = export_bundle(NAME, tmp_path / "bundle", verify_frames=2)
    b = load_bundle(result.bundle)
    m = b.manifest
    assert m.source == NAME and m.weights_sha256 == shipped.weights_sha256
    assert [p.index for p in m.paths] == [0, 1] and m.gate_to_path == (0, 1)
    inputs = {k: [i.name for i in onnx.load(str(b.paths[k])).graph.input] for k in (0, 1)}
    assert inputs == {0: ["rgb_frame"], 1: ["rgb_frame", "depth_frame"]}   # the RGB expert reads no depth
    report = json.loads((result.bundle / "verify.json").read_text())
    assert report["passed"] and sorted(report["paths"]) == ["path_0", "path_1"]
    assert all(p["label_agreement"] >= 0.999 for p in report["paths"].values()), report["paths"]
