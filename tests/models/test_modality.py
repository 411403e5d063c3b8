"""Modality-level DynMM: shapes for every gate, only the chosen expert runs (hooks and
FLOPs), grouped output == per-expert output, straight-through gradients reach the gate,
path modules equal the dynamic model, costs per expert, configuration errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from edgefuse.errors import ConfigError
from edgefuse.models.costs import count_madds, measure_costs
from edgefuse.models.modality import ModalityDynMM
from edgefuse.models.registry import build_model

SIZE = (64, 64)
GATES = ("conv", "mlp", "transformer")


def _model(gate: str = "conv", experts=("rgb", "esanet")) -> ModalityDynMM:
    torch.manual_seed(0)
    return build_model("dynmm-modality-tiny", input_size=SIZE,
                       modality={"gate": gate, "gate_size": [16, 16], "experts": list(experts)})


def _inputs(n: int = 4, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, *SIZE, generator=g) * 255, torch.rand(n, 1, *SIZE, generator=g) * 5000


class FixedGate(nn.Module):
    """Replaces the gate net: per-sample logits chosen by the test (argmax = choice)."""

    def __init__(self, choices: list[int], num_paths: int) -> None:
        super().__init__()
        self.logits = torch.nn.functional.one_hot(torch.tensor(choices), num_paths).float() * 4.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits[: x.shape[0]]


def _count_calls(model: ModalityDynMM) -> list[list[int]]:
    """Per expert, the batch size of every call of its decoder."""
    calls: list[list[int]] = [[] for _ in model.experts]
    for k, expert in enumerate(model.experts):
        expert.decoder.register_forward_hook(lambda mod, args, out, k=k: calls[k].append(args[0].shape[0]))
    return calls


@pytest.mark.parametrize("gate", GATES)
def test_forward_shapes_train_and_eval(gate):
    model = _model(gate)
    rgb, depth = _inputs(3)
    model.train()
    # every training mode once with the conv gate; the other gates in the default mode
    for mode in ("random", "gumbel_hard", "gumbel_soft") if gate == "conv" else ("gumbel_hard",):
        model.gate_mode = mode
        out = model(rgb, depth)
        assert out.logits.shape == (3, 13, *SIZE)
        assert [s.shape[-1] for s in out.side] == [8, 4, 2]
        assert out.gate_logits.shape == (3, 2) and out.gate_weights.shape == (3, 2)
    model.eval()
    logits, index = model.infer(rgb, depth)
    assert logits.shape == (3, 13, *SIZE) and index.shape == (3,)
    assert model.paths.decisions == ((True, False), (True, True))
    assert model.path_inputs(0) == ("rgb_frame",) and model.path_inputs(1) == ("rgb_frame", "depth_frame")
    assert not model.uses_depth(0) and model.uses_depth(1)


def test_only_the_chosen_expert_runs_at_inference():
    model = _model().eval()
    calls = _count_calls(model)
    rgb, depth = _inputs()
    model.gate_net = FixedGate([0, 0, 0, 0], 2)
    model(rgb, depth)
    assert calls == [[4], []]  # the RGB-D expert never ran
    calls[0].clear()
    model.gate_net = FixedGate([1, 0, 1, 1], 2)
    _, index = model.infer(rgb, depth)
    assert index.tolist() == [1, 0, 1, 1]
    assert calls == [[1], [3]]  # each expert once, on its own samples only


def test_cheaper_choice_executes_fewer_operations():
    model = _model().eval()
    rgb, depth = _inputs(2)
    model.gate_net = FixedGate([0, 0], 2)
    rgb_only = count_madds(lambda: model(rgb, depth))
    model.gate_net = FixedGate([1, 1], 2)
    rgbd = count_madds(lambda: model(rgb, depth))
    costs = [count_madds(lambda k=k: model.experts[k](rgb, depth)) for k in range(2)]
    assert rgb_only == pytest.approx(costs[0]) and rgbd == pytest.approx(costs[1])
    assert rgb_only < 0.8 * rgbd


def test_hard_training_runs_only_chosen_experts_and_gradients_reach_the_gate():
    model = _model("transformer").train()
    model.gate_mode = "gumbel_hard"
    calls = _count_calls(model)
    rgb, depth = _inputs()
    torch.manual_seed(3)
    out = model(rgb, depth)
    counts = torch.bincount(out.path_index, minlength=2).tolist()
    assert [sum(c) for c in calls] == counts  # grouped, never masked: N samples -> N decoded
    assert all(len(c) <= 1 for c in calls)
    assert torch.equal(out.gate_weights.detach(), nn.functional.one_hot(out.path_index, 2).float())
    (out.logits * torch.randn_like(out.logits)).sum().backward()
    gate_grads = [p.grad for p in model.gate_net.parameters()]
    assert all(g is not None for g in gate_grads)
    assert sum(g.abs().sum() for g in gate_grads) > 0


def test_grouped_output_equals_each_expert_alone():
    model = _model("mlp").eval()
    rgb, depth = _inputs()
    model.gate_net = FixedGate([1, 0, 0, 1], 2)
    logits, index = model.infer(rgb, depth)
    for i, k in enumerate(index.tolist()):
        alone = model.experts[k](rgb[i:i + 1], depth[i:i + 1])
        assert torch.allclose(logits[i:i + 1], alone, atol=1e-5)
        assert torch.allclose(logits[i:i + 1], model(rgb[i:i + 1], depth[i:i + 1], path=k), atol=1e-5)


def test_soft_mode_blends_every_expert():
    model = _model().train()
    model.gate_mode = "gumbel_soft"
    rgb, depth = _inputs(2)
    out = model(rgb, depth)
    assert out.path_index is None
    experts = [model(rgb, depth, path=k).logits for k in range(2)]  # train mode: same batch stats
    blend = sum(out.gate_weights[:, k].view(-1, 1, 1, 1) * experts[k] for k in range(2))
    assert torch.allclose(out.logits, blend, atol=1e-5)


@pytest.mark.parametrize("gate", GATES)
def test_path_modules_equal_dynamic_model(gate):
    model = _model(gate).eval()
    rgb, depth = _inputs(2)
    with torch.no_grad():
        feats = model.stem(rgb, depth)
        for k in range(model.num_paths):
            pm = model.path_module(k).eval()
            got = pm(*(feats[n] for n in pm.input_names))
            assert torch.allclose(got, model(rgb, depth, path=k), atol=1e-5)
        sg = model.stem_gate_module()
        outs = sg(rgb, depth)
        assert sg.output_names == ("rgb_frame", "depth_frame", "gate_logits")
        assert outs[-1].shape == (2, 2)
    # the RGB-only path module holds no depth weights at all
    assert not any("depth" in n for n, _ in model.path_module(0).named_parameters())


def test_costs_are_the_experts_costs_plus_the_gate():
    model = _model()
    table = measure_costs(model, SIZE)
    experts = [measure_costs(e, SIZE).paths[0] for e in model.experts]
    assert table.gate_madds > 0
    for p, e in zip(table.paths, experts):
        assert p.madds == pytest.approx(e.madds + table.gate_madds)
        assert p.depth_encoder_madds == pytest.approx(e.depth_encoder_madds)
    assert table.paths[0].depth_encoder_madds == 0 < table.paths[1].depth_encoder_madds


def test_cen_and_depth_experts():
    model = _model(experts=("depth", "cen"))
    assert model.paths.decisions == ((False, True), (True, True))
    assert model.path_inputs(0) == ("depth_frame",)
    model.eval()
    assert model(*_inputs(2)).shape == (2, 13, *SIZE)
    table = measure_costs(model, SIZE)
    cen = measure_costs(model.experts[1], SIZE).paths[0]
    assert table.paths[1].depth_encoder_madds == pytest.approx(cen.depth_encoder_madds)


def test_gate_input_follows_the_input_size():
    model = build_model("dynmm-modality-tiny", input_size=(64, 128))  # tiny: gate_stride 4
    assert model.gate_size == (16, 32)
    assert build_model("dynmm-modality-r18", width=0.25, input_size=(160, 160)).gate_size == (20, 20)


@pytest.mark.parametrize("overrides, match", [
    (dict(modality={"gate_stride": 3}), "power of 2"),
    (dict(modality={"experts": ["esanet", "early"]}), "distinct modality subsets"),
    (dict(modality={"experts": ["rgb", "dynmm"]}), "not a static network"),
    (dict(modality={"experts": ["rgb", "lidar"]}), "unknown expert family"),
    (dict(modality={"experts": ["rgb"]}), "at least 2 experts"),
    (dict(modality={"gate": "rnn", "gate_size": [16, 16]}), "unknown gate"),
    (dict(modality={"gate_size": [24, 24]}), "must divide the input size"),
])
def test_bad_configurations_raise_config_error(overrides, match):
    with pytest.raises(ConfigError, match=match):
        build_model("dynmm-modality-tiny", input_size=SIZE, **overrides)


def _snapshot(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("mode", ["gumbel_hard", "gumbel_soft"])
def test_frozen_experts_keep_every_parameter_and_buffer_through_a_gate_step(mode):
    from edgefuse.train.config import OptimConfig
    from edgefuse.train.schedules import build_optimizer

    model = _model()
    model.freeze_experts(True)
    model.train()            # as the trainer does after freezing (and after each stage's eval)
    assert model.experts_frozen and model.training and model.gate_net.training
    assert not any(m.training for m in model.experts.modules())
    assert not model.path_module(1).training   # a path view of a frozen expert stays frozen
    model.gate_mode = mode
    experts_before, gate_before = _snapshot(model.experts), _snapshot(model.gate_net)
    opt = build_optimizer(model, OptimConfig(kind="adamw", lr=0.05), 0.05)
    assert {id(p) for g in opt.param_groups for p in g["params"]} == {id(p) for p in model.gate_net.parameters()}
    rgb, depth = _inputs()
    for _ in range(2):
        out = model(rgb, depth)
        loss = nn.functional.cross_entropy(out.logits, torch.randint(0, 13, (4, *SIZE)))
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = _snapshot(model.experts)
    assert after.keys() == experts_before.keys()
    changed = [k for k in after if not torch.equal(after[k], experts_before[k])]
    assert changed == []     # weights, BN running mean/var and num_batches_tracked
    gate_after = _snapshot(model.gate_net)
    assert any(not torch.equal(gate_after[k], gate_before[k]) for k in gate_after if "weight" in k)
    # unfreezing gives the experts back their gradients and the model's mode
    model.freeze_experts(False)
    assert all(m.training for m in model.experts.modules())
    assert all(p.requires_grad for p in model.experts.parameters())
    model.eval()
    model.train()
    assert all(m.training for m in model.experts.modules())


def _static(family: str, seed: int, **overrides):
    torch.manual_seed(seed)
    return build_model(f"{family}-tiny", input_size=SIZE, **overrides).eval()


def test_load_experts_from_static_networks_by_expert_index(tmp_path):
    from edgefuse.checkpoint import save_checkpoint

    rgb_net, rgbd_net = _static("rgb", 1), _static("esanet", 2)
    path = save_checkpoint(tmp_path / "esanet.safetensors", rgbd_net)
    model = _model().eval()
    gate_before = _snapshot(model.gate_net)
    from edgefuse.checkpoint import load_model

    assert model.load_experts([rgb_net, load_model(str(path)).model], [None, str(path)]) == [0, 1]
    for k, src in enumerate((rgb_net, rgbd_net)):
        own = model.state_dict()
        for name, t in src.state_dict().items():   # the names line up under experts.k.
            assert torch.equal(own[f"experts.{k}.{name}"], t)
    assert all(torch.equal(v, gate_before[k]) for k, v in _snapshot(model.gate_net).items())
    rgb, depth = _inputs(2)
    with torch.no_grad():
        assert torch.allclose(model(rgb, depth, path=0), rgb_net(rgb, depth), atol=1e-5)
        assert torch.allclose(model(rgb, depth, path=1), rgbd_net(rgb, depth), atol=1e-5)
    # None keeps an expert as it is
    other = _static("rgb", 3)
    before = _snapshot(model.experts[1])
    assert model.load_experts([other, None]) == [0]
    assert all(torch.equal(v, before[k]) for k, v in _snapshot(model.experts[1]).items())


@pytest.mark.parametrize("sources, match", [
    (lambda: [_static("esanet", 0), _static("rgb", 0)], "reads \\(rgb, depth\\)"),
    (lambda: [_static("rgb", 0)], "one source per expert"),
    (lambda: [_static("rgb", 0, width=0.5), None], "width"),
    (lambda: [None, _static("esanet", 0, depth_mean=900.0)], "depth_mean"),
    (lambda: [None, _static("early", 0)], "'early' network"),
])
def test_load_experts_rejects_mismatched_sources(sources, match):
    with pytest.raises(ConfigError, match=match):
        _model().load_experts(sources())
