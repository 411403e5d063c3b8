"""Export of a fusion-level DynMM with per-path BatchNorm (issue 17): each path graph holds its
own set folded into its convolutions (it verifies against PyTorch), and the shared weights
file still stores each distinct tensor once."""

import numpy as np
import torch
from conftest import SIZE

from edgefuse.checkpoint import load_model, save_checkpoint
from edgefuse.export.bundle import load_bundle
from edgefuse.export.verify import ort_session
from edgefuse.models.registry import build_model


def test_per_path_bn_bundle_runs_each_paths_own_set(tmp_path):
    from edgefuse.export.exporter import export_bundle

    torch.manual_seed(0)
    model = build_model("dynmm-tiny", input_size=SIZE, per_path_bn=True)
    g = torch.Generator().manual_seed(1)
    for m in model.modules():   # every set of every layer different (folding is exercised per path)
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
    ckpt = save_checkpoint(tmp_path / "ppbn.safetensors", model)
    result = export_bundle(ckpt, tmp_path / "bundle", paths="1,4", verify_frames=2)   # verified against PyTorch
    bundle = load_bundle(result.bundle)
    model = load_model(ckpt).model.eval()
    rgb = torch.rand(1, 3, *SIZE) * 255
    depth = torch.rand(1, 1, *SIZE) * 4000 + 500
    with torch.no_grad():
        feats = model.stem(rgb, depth)
        for k in (1, 4):
            sess = ort_session(bundle.path_file(k))
            names = [i.name for i in sess.get_inputs()]
            got = sess.run(None, {n: feats[n].numpy() for n in names})[0]
            want = model.run_path(k, feats)
            want = (want[0] if isinstance(want, tuple) else want).argmax(1).numpy()
            assert np.mean(got.reshape(want.shape) == want) > 0.99
    # identical tensors stored once: what the paths share (the RGB stage 1 and the depth stages
    # both paths run, unfolded by any per-path set) is not stored per graph
    w = bundle.manifest.weights
    assert w.size_bytes < w.referenced_bytes
