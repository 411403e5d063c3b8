"""Fusion-level DynMM: every path equals its static module, skipped work is really skipped,
batches are grouped by path (never masked), and the gate learns through straight-through."""

import pytest
import torch

from edgefuse.models.losses import resource_loss
from edgefuse.models.costs import measure_costs
from edgefuse.models.registry import build_model

SIZE = (64, 64)


def _inputs(n=3, size=SIZE):
    return torch.rand(n, 3, *size) * 255, torch.rand(n, 1, *size) * 5000


DYNAMIC = [
    ("dynmm-tiny", {}),
    ("dynmm-tiny", {"paths": "exhaustive"}),
    ("dynmm-tiny", {"paths": "0000,0100,1010,1111"}),
    ("dynmm-r50", {"width": 0.125, "input_size": (160, 160), "decoder_channels": (32, 32, 32)}),
    ("dynmm-r34-nbt1d", {"width": 0.125, "input_size": (160, 160), "decoder_channels": (32, 32, 32)}),
]


@pytest.mark.parametrize("name,overrides", DYNAMIC)
def test_every_path_equals_its_static_module(name, overrides):
    overrides = {"input_size": SIZE, **overrides}
    model = build_model(name, **overrides).eval()
    rgb, depth = _inputs(2, overrides["input_size"])
    with torch.no_grad():
        feats = model.stem(rgb, depth)
        for k in range(model.num_paths):
            dynamic = model(rgb, depth, path=k)
            pm = model.path_module(k).eval()
            static = pm(*[feats[n] for n in pm.input_names])
            torch.testing.assert_close(dynamic, static, rtol=0, atol=0)
        # gate-driven inference equals the static module of the path each sample took
        logits, index = model.infer(rgb, depth)
        for i, k in enumerate(index.tolist()):
            pm = model.path_module(k)
            ref = pm(*[feats[n][i:i + 1] for n in pm.input_names])
            torch.testing.assert_close(logits[i:i + 1], ref, rtol=1e-5, atol=1e-5)


def test_path_modules_hold_only_what_they_run():
    model = build_model("dynmm-tiny", input_size=SIZE)
    p0 = model.path_module(0).state_dict()
    p4 = model.path_module(4).state_dict()
    assert not any(k.startswith("parts.depth") or k.startswith("parts.fuse") for k in p0)
    assert model.path_module(0).input_names == ("rgb_feat",)
    assert {k.split(".")[1] for k in p4 if k.startswith("parts.depth")} == {"depth1", "depth2", "depth3", "depth4"}
    assert {k.split(".")[1] for k in model.path_module(2).state_dict() if ".fuse" in k or k.startswith("parts.fuse")} \
        == {"fuse1", "fuse2"}


def _count_calls(model):
    calls = {}
    handles = []
    for i in range(1, 5):
        for tag, mod in ((f"depth{i}", getattr(model.encoder_depth, f"layer{i}")), (f"fuse{i}", model.fuse[i - 1])):
            handles.append(mod.register_forward_hook(lambda m, a, o, tag=tag: calls.__setitem__(tag, calls.get(tag, 0) + 1)))
    return calls, handles


def test_skipped_depth_stages_and_se_blocks_do_not_run():
    model = build_model("dynmm-tiny", input_size=SIZE).eval()
    rgb, depth = _inputs(1)
    for k in range(model.num_paths):
        calls, handles = _count_calls(model)
        with torch.no_grad():
            model(rgb, depth, path=k)
        for h in handles:
            h.remove()
        assert set(calls) == {f"depth{i}" for i in range(1, k + 1)} | {f"fuse{i}" for i in range(1, k + 1)}


def test_mixed_batch_is_grouped_by_path_not_masked():
    model = build_model("dynmm-tiny", input_size=SIZE).eval()
    rgb, depth = _inputs(4)
    index = torch.tensor([4, 0, 2, 0])
    calls, handles = _count_calls(model)
    with torch.no_grad():
        feats = model.stem(rgb, depth)
        out = model.run_grouped(feats, index)
    for h in handles:
        h.remove()
    # path 4 runs depth stage 4 once for its one sample; path 0 samples never touch depth
    assert calls["depth4"] == 1 and calls["depth1"] == 2
    with torch.no_grad():
        for i, k in enumerate(index.tolist()):
            ref = model(rgb[i:i + 1], depth[i:i + 1], path=k)
            torch.testing.assert_close(out[i:i + 1], ref, rtol=1e-5, atol=1e-5)


def test_cheaper_paths_execute_fewer_operations():
    model = build_model("dynmm-tiny", input_size=SIZE)
    costs = measure_costs(model)
    madds = costs.madds()
    assert all(a < b for a, b in zip(madds, madds[1:]))
    depth = [p.depth_encoder_madds for p in costs.paths]
    assert all(a < b for a, b in zip(depth, depth[1:]))
    # path 0 runs no depth stage: its depth cost is the depth stem alone
    assert costs.paths[0].path_madds < costs.paths[4].path_madds
    assert depth[0] == pytest.approx(depth[1] - (costs.paths[1].path_madds - costs.paths[0].path_madds), rel=0.01)


def test_gate_gets_gradients_through_straight_through():
    model = build_model("dynmm-tiny", input_size=SIZE).train()
    model.gate_mode = "gumbel_hard"
    rgb, depth = _inputs(4)
    out = model(rgb, depth)
    # forward value is exactly one-hot
    assert torch.equal(out.gate_weights.detach().sum(1), torch.ones(4))
    assert set(out.gate_weights.detach().unique().tolist()) <= {0.0, 1.0}
    out.logits.square().mean().backward()
    grad = model.gate_net.head.weight.grad
    assert grad is not None and grad.abs().sum() > 0


def test_soft_mode_blends_all_paths_and_random_mode_varies():
    model = build_model("dynmm-tiny", input_size=SIZE).train()
    rgb, depth = _inputs(8)
    model.gate_mode = "gumbel_soft"
    out = model(rgb, depth)
    assert out.path_index is None and torch.allclose(out.gate_weights.sum(1), torch.ones(8))
    model.gate_mode = "random"
    torch.manual_seed(1)
    out = model(rgb, depth)
    assert len(out.path_index.unique()) > 1


def test_resource_loss_pushes_the_gate_to_cheaper_paths():
    model = build_model("dynmm-tiny", input_size=SIZE).train()
    model.gate_mode = "gumbel_soft"
    costs = torch.tensor(measure_costs(model).madds())
    opt = torch.optim.SGD(model.gate_net.parameters(), lr=0.5)
    rgb, depth = _inputs(4)

    def p_cheapest():
        with torch.no_grad():
            model.eval()
            p = model.gate(model.stem(rgb, depth)).softmax(1)[:, 0].mean().item()
            model.train()
        return p

    before = p_cheapest()
    for _ in range(20):
        opt.zero_grad()
        out = model(rgb, depth)
        resource_loss(out.gate_weights, costs).backward()
        opt.step()
    assert p_cheapest() > before


def test_path_and_stem_modules_follow_the_model_mode():
    model = build_model("dynmm-tiny").eval()
    assert not model.path_module(0).training and not model.stem_gate_module().training
    model.train()
    assert model.path_module(0).training and model.stem_gate_module().training
