"""A tuned checkpoint's operating point (issue 17) in its bundle: recorded in the manifest and
already in the exported gate_logits, so the runtime's argmax routes as PyTorch's `choose`."""

import numpy as np
import torch

from edgefuse.export.calib_frames import procedural_frames
from edgefuse.checkpoint import load_model, save_checkpoint
from edgefuse.export.bundle import load_bundle
from edgefuse.export.exporter import export_bundle
from edgefuse.export.manifest import Manifest
from edgefuse.export.verify import ort_session, run_named
from edgefuse.models.operating_point import OperatingPoint
from edgefuse.models.registry import build_model

SIZE = (64, 128)


def test_bundle_records_and_applies_the_operating_point(tmp_path):
    torch.manual_seed(0)
    model = build_model("dynmm-tiny", input_size=SIZE)
    op = OperatingPoint.from_strength(0.7, [1.0, 2.0, 3.0, 4.0, 5.0], target="madds:0.8", data="tune/test")
    model.set_operating_point(op)
    ckpt = save_checkpoint(tmp_path / "m.safetensors", model)
    out = tmp_path / "b"
    export_bundle(str(ckpt), out, input_size=SIZE, paths="0,4", verify_frames=1, force=True)
    b = load_bundle(out)
    assert b.manifest.operating_point == op.to_dict()
    loaded = load_model(ckpt).model.eval()
    stem = ort_session(b.stem_gate)
    with torch.no_grad():
        for f in procedural_frames(2, SIZE, seed=5):
            x = f.inputs()
            feats = loaded.stem(torch.from_numpy(x["rgb"]), torch.from_numpy(x["depth"]))
            choice, raw = loaded.choose(feats)
            got = run_named(stem, x)["gate_logits"][0]
            assert np.allclose(got, raw[0].numpy() + np.array(op.gate_bias), atol=1e-4)
            assert int(np.argmax(got)) == int(choice[0])
    # the torch backend routes with the bundle's point, even from the untuned checkpoint
    from edgefuse.runtime.runners import make_runner

    loaded.set_operating_point(None)
    untuned = save_checkpoint(tmp_path / "plain.safetensors", loaded)
    x = next(iter(procedural_frames(1, SIZE, seed=6))).inputs()
    with make_runner("torch", b, checkpoint=str(untuned), device="cpu") as tr:
        got = tr.stem_gate(x["rgb"], x["depth"]).gate_logits
    want = run_named(stem, x)["gate_logits"]
    assert np.allclose(np.asarray(got).reshape(-1), want.reshape(-1), atol=1e-4)
    # a manifest without the field (every bundle before it) still reads: no operating point
    data = b.manifest.to_dict()
    del data["operating_point"]
    assert Manifest.from_dict(data).operating_point == {}
