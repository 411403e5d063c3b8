"""CEN: shapes, exchange semantics on crafted gammas (M = 2 and 3), the l1 penalty,
frozen (export) mode parity and an ONNX graph without data-dependent indexing."""

from __future__ import annotations

import io

import pytest
import torch

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.models.base import InputNorm
from edgefuse.models.cen import CENOutput, CENSegNet, cen_loss
from edgefuse.models.cen_layers import ExchangingBN
from edgefuse.models.costs import count_madds, measure_costs
from edgefuse.models.registry import build_model
from edgefuse.models.resnet import EncoderSpec

SIZE = (64, 64)
THRESHOLD = 2e-2


def _inputs(n: int = 2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    rgb = torch.rand(n, 3, *SIZE, generator=g) * 255
    depth = torch.rand(n, 1, *SIZE, generator=g) * 5000
    depth[:, :, :8] = 0  # some invalid pixels
    return rgb, depth


def _cen(modalities: tuple[str, ...] = ("rgb", "depth"), block: str = "basic", arch: str = "resnet18") -> CENSegNet:
    torch.manual_seed(0)
    return CENSegNet(EncoderSpec(arch, block, 0.25), 5, modalities, THRESHOLD, (32, 16, 16), 1, (1, 2),
                     InputNorm((0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 3000.0, 1000.0))


def _craft_low_gammas(model: CENSegNet, seed: int = 1) -> None:
    """Push a random ~30% of all exchanging gammas (in and out of designated parts) below
    the threshold, with both signs."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for bn in model.exchanging_bns().values():
            for b in bn.bns:
                low = torch.rand(b.weight.shape, generator=g) < 0.3
                sign = torch.where(torch.rand(b.weight.shape, generator=g) < 0.5, -1.0, 1.0)
                b.weight[low] = sign[low] * THRESHOLD * 0.5


# --- shapes ------------------------------------------------------------------------------
@pytest.mark.parametrize("modalities", [("rgb", "depth"), ("rgb", "depth", "gray")])
def test_forward_shapes_train_and_eval(modalities):
    model = _cen(modalities)
    rgb, depth = _inputs()
    model.train()
    out = model(rgb, depth)
    assert isinstance(out, CENOutput)
    assert out.logits.shape == (2, 5, *SIZE)
    assert [s.shape[-1] for s in out.side] == [8, 4, 2]
    assert out.modalities == modalities and len(out.per_modality) == len(modalities)
    assert all(o.logits.shape == (2, 5, *SIZE) for o in out.per_modality)
    # the ensemble is the softmax(alpha)-weighted sum of the per-modality outputs
    w = out.ensemble_weights
    assert torch.allclose(out.logits, sum(w[m] * o.logits for m, o in enumerate(out.per_modality)), atol=1e-5)
    model.eval()
    assert model(rgb, depth).shape == (2, 5, *SIZE)
    assert not model.is_dynamic and model.num_paths == 1


def test_registry_configs_build_and_run():
    model = build_model("cen-tiny", input_size=SIZE)
    rgb, depth = _inputs()
    model.eval()
    assert model(rgb, depth).shape == (2, 13, *SIZE)
    assert model.feature_names == ("rgb_feat", "depth_feat")


def test_bottleneck_encoder_runs():
    model = _cen(block="bottleneck", arch="resnet50")
    names = list(model.exchanging_bns())
    assert names and all(n.endswith("bn2") for n in names)  # only the 3x3 conv's BN exchanges
    model.eval()
    assert model(*_inputs(1)).shape == (1, 5, *SIZE)


def test_conv_weights_shared_bn_private():
    model = _cen()
    convs = [n for n, _ in model.encoder.named_parameters() if "conv" in n]
    assert "conv1.weight" in convs and "layer1.0.conv1.weight" in convs  # torchvision names, one copy
    assert "bn1.bns.0.weight" in dict(model.encoder.named_parameters())
    assert "bn1.bns.1.weight" in dict(model.encoder.named_parameters())


# --- exchange semantics --------------------------------------------------------------------
def _eval_bn(channels: int, modalities: int, gammas: torch.Tensor) -> ExchangingBN:
    bn = ExchangingBN(channels, modalities, THRESHOLD)
    with torch.no_grad():
        for m, b in enumerate(bn.bns):
            b.weight.copy_(gammas[m])
            b.bias.copy_(torch.randn(channels))
    return bn.eval()


def test_exchange_two_modalities_only_designated_low_gamma_channels():
    c = 8  # designated parts: modality 0 -> channels 0..3, modality 1 -> 4..7
    gammas = torch.ones(2, c)
    gammas[0, 1] = 0.001   # low, inside modality 0's part: exchanged
    gammas[0, 5] = 0.001   # low, outside modality 0's part: kept
    gammas[1, 6] = -0.005  # |gamma| low, inside modality 1's part: exchanged
    gammas[1, 2] = 0.0     # low, outside modality 1's part: kept
    gammas[1, 7] = 0.5     # high, inside: kept
    bn = _eval_bn(c, 2, gammas)
    xs = [torch.randn(2, c, 4, 4), torch.randn(2, c, 4, 4)]
    ys = [b(x) for b, x in zip(bn.bns, xs)]  # each modality's own BN output
    out = bn(xs)
    expected0, expected1 = ys[0].clone(), ys[1].clone()
    expected0[:, 1] = ys[1][:, 1]
    expected1[:, 6] = ys[0][:, 6]
    assert torch.equal(out[0], expected0)
    assert torch.equal(out[1], expected1)
    assert bn.masks().nonzero().tolist() == [[0, 1], [1, 6]]


def test_exchange_three_modalities_takes_mean_of_the_others():
    c = 9  # parts: 0..2, 3..5, 6..8
    gammas = torch.ones(3, c)
    gammas[0, 0] = 0.01    # in part 0: exchanged -> mean of modalities 1, 2
    gammas[0, 4] = 0.01    # outside: kept
    gammas[1, 5] = -0.01   # in part 1: exchanged -> mean of 0, 2
    gammas[2, 8] = 0.0     # in part 2: exchanged -> mean of 0, 1
    gammas[2, 1] = 0.0     # outside: kept
    gammas[1, 3] = 0.03    # in part 1 but above threshold: kept
    bn = _eval_bn(c, 3, gammas)
    xs = [torch.randn(2, c, 3, 3) for _ in range(3)]
    ys = [b(x) for b, x in zip(bn.bns, xs)]
    out = bn(xs)
    expected = [y.clone() for y in ys]
    expected[0][:, 0] = (ys[1][:, 0] + ys[2][:, 0]) / 2
    expected[1][:, 5] = (ys[0][:, 5] + ys[2][:, 5]) / 2
    expected[2][:, 8] = (ys[0][:, 8] + ys[1][:, 8]) / 2
    for o, e in zip(out, expected):
        assert torch.allclose(o, e, atol=1e-6)
    changed = [(m, ch) for m in range(3) for ch in range(c) if not torch.equal(out[m][:, ch], ys[m][:, ch])]
    assert changed == [(0, 0), (1, 5), (2, 8)]


def test_exchange_gradient_goes_to_the_replacing_modality():
    gammas = torch.ones(2, 4)
    gammas[0, 0] = 0.0  # modality 0 channel 0 is replaced by modality 1's
    bn = _eval_bn(4, 2, gammas)
    xs = [torch.randn(1, 4, 2, 2, requires_grad=True) for _ in range(2)]
    out = bn(xs)
    out[0][:, 0].sum().backward()
    assert torch.all(xs[0].grad == 0)                  # the replaced value gets no gradient
    assert torch.all(xs[1].grad[:, 0] != 0)            # the replacing one does
    assert torch.all(xs[1].grad[:, 1:] == 0)


def test_model_exchange_masks_follow_crafted_gammas_m3():
    model = _cen(("rgb", "depth", "disparity"))
    name, bn = next(iter(model.exchanging_bns().items()))
    c = bn.bns[0].weight.numel()
    with torch.no_grad():
        for b in bn.bns:
            b.weight.fill_(1.0)
        bn.bns[2].weight[c - 1] = 1e-3       # inside modality 2's part (last third)
        bn.bns[2].weight[0] = 1e-3           # outside it
        bn.bns[0].weight[0] = -1e-3          # inside modality 0's part
    masks = model.exchange_masks()[name]
    assert masks.nonzero().tolist() == [[0, 0], [2, c - 1]]


# --- l1 penalty ------------------------------------------------------------------------------
def test_l1_penalty_equals_hand_computed_designated_sum():
    for modalities in [("rgb", "depth"), ("rgb", "depth", "gray")]:
        model = _cen(modalities)
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() == 1:
                    p.uniform_(-1, 1)
        m_count = len(modalities)
        expected = 0.0
        for bn in model.exchanging_bns().values():
            c = bn.bns[0].weight.numel()
            for m, b in enumerate(bn.bns):
                lo, hi = m * c // m_count, (m + 1) * c // m_count
                expected += b.weight[lo:hi].abs().sum().item()
        penalty = model.cen_l1_penalty()
        assert penalty.item() == pytest.approx(expected, rel=1e-5)
        penalty.backward()
        bn = next(iter(model.exchanging_bns().values()))
        c = bn.bns[0].weight.numel()
        grad = bn.bns[0].weight.grad
        lo, hi = 0, c // m_count
        assert torch.equal(grad[lo:hi], bn.bns[0].weight[lo:hi].sign().detach())
        assert torch.all(grad[hi:] == 0)  # no penalty outside the designated part


def test_cen_loss_trains_members_and_alpha():
    model = _cen()
    model.train()
    out = model(*_inputs())
    target = torch.randint(-1, 5, (2, *SIZE))
    loss = cen_loss(out, target, model, l1_weight=5e-3)
    loss.backward()
    assert torch.isfinite(loss)
    assert model.ensemble.alpha.grad is not None and model.ensemble.alpha.grad.abs().sum() > 0
    assert model.encoder.conv1.weight.grad.abs().sum() > 0


# --- frozen / export mode ---------------------------------------------------------------------
def test_frozen_output_equals_dynamic_output():
    model = _cen(("rgb", "depth", "gray"))
    _craft_low_gammas(model)
    model.eval()
    rgb, depth = _inputs()
    masks = model.exchange_masks()
    assert any(m.any() for m in masks.values())
    dynamic = model(rgb, depth)
    model.freeze_exchange()
    assert model.is_frozen
    frozen = model(rgb, depth)
    assert torch.equal(dynamic, frozen)
    # masks are constants now: changing gamma does not change them
    bn = next(iter(model.exchanging_bns().values()))
    with torch.no_grad():
        bn.bns[0].weight.fill_(0.0)
    assert all(torch.equal(masks[n], m) for n, m in model.exchange_masks().items())
    with pytest.raises(EdgefuseError, match="unfreeze_exchange"):
        model.train()(rgb, depth)
    model.unfreeze_exchange()
    assert not model.is_frozen


FORBIDDEN_OPS = {"NonZero", "ScatterND", "ScatterElements", "Scatter", "GatherND", "Compress", "Loop", "If"}


def _onnx_ops(module: torch.nn.Module, args: tuple, input_names: list[str]) -> tuple[set[str], int, bytes]:
    import onnx
    buf = io.BytesIO()
    torch.onnx.export(module, args, buf, input_names=input_names, dynamo=False, opset_version=17)
    graph = onnx.load_from_string(buf.getvalue()).graph
    ops = [n.op_type for n in graph.node]
    return set(ops), ops.count("Where"), buf.getvalue()


def test_frozen_path_exports_without_data_dependent_indexing():
    model = _cen()
    _craft_low_gammas(model)
    with torch.no_grad():  # the first layer: only modality 0 exchanges; the second: none
        bns = list(model.exchanging_bns().values())
        bns[0].bns[1].weight.fill_(1.0)
        bns[1].bns[0].weight.fill_(1.0)
        bns[1].bns[1].weight.fill_(1.0)
    model.eval()
    rgb, depth = _inputs(1)
    model.freeze_exchange()
    with torch.no_grad():
        feats = model.stem(rgb, depth)
    pm = model.path_module(0).eval()
    args = tuple(feats[n] for n in pm.input_names)
    with torch.no_grad():
        reference = pm(*args)
    ops, wheres, blob = _onnx_ops(pm, args, list(pm.input_names))
    assert not ops & FORBIDDEN_OPS, ops & FORBIDDEN_OPS
    # one constant select per (layer, modality) that exchanges anything, none elsewhere
    per_layer = [int(m.any(dim=1).sum()) for m in model.exchange_masks().values()]
    assert per_layer[:2] == [1, 0] and sum(per_layer) > 0
    assert wheres == sum(per_layer)
    import onnxruntime as ort
    sess = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: a.numpy() for n, a in zip(pm.input_names, args)})[0]
    assert torch.allclose(torch.from_numpy(got), reference, atol=1e-4)
    # the stem_gate graph as well
    sg = model.stem_gate_module()
    ops, _, _ = _onnx_ops(sg, (rgb, depth), ["rgb", "depth"])
    assert not ops & FORBIDDEN_OPS


# --- costs and errors ---------------------------------------------------------------------------
def test_depth_share_of_costs_is_the_depth_stream():
    model = _cen()
    table = measure_costs(model, SIZE)
    rgb, depth = _inputs(1)
    model.eval()

    def encoder():
        xs = [model._broaden(x) for x in model.modality_inputs(rgb, depth)]
        xs = model.encoder.stem(xs)
        for i in range(1, 5):
            xs = getattr(model.encoder, f"layer{i}")(xs)

    # rgb (broadened 3 ch) and depth (replicated to 3 ch) do the same conv work: half each
    assert table.paths[0].depth_encoder_madds == pytest.approx(count_madds(encoder) / 2)
    assert table.paths[0].madds > table.paths[0].depth_encoder_madds > 0


@pytest.mark.parametrize("kwargs, match", [
    (dict(block="nbt1d", encoder="resnet34"), "CEN supports blocks"),
    (dict(cen={"modalities": ["rgb"]}), "at least 2"),
    (dict(cen={"modalities": ["rgb", "thermal"]}), "unknown CEN modalities"),
    (dict(cen={"modalities": ["rgb", "rgb"]}), "distinct"),
])
def test_bad_configurations_raise_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        build_model("cen-tiny", input_size=SIZE, **kwargs)


def test_load_torchvision_named_weights(tmp_path):
    from edgefuse.models.resnet import ResNetEncoder

    model = _cen()
    source = ResNetEncoder(EncoderSpec("resnet18", "basic", 0.25), 3)
    with torch.no_grad():
        for p in source.parameters():
            p.normal_()
        for b in source.buffers():
            if b.is_floating_point():
                b.uniform_(0.5, 2.0)
    state = {**source.state_dict(), "fc.weight": torch.zeros(10, 128), "fc.bias": torch.zeros(10)}
    torch.save(state, tmp_path / "r18.pth")
    missing = model.load_pretrained(str(tmp_path / "r18.pth"))
    assert missing == []
    enc = model.encoder
    assert torch.equal(enc.conv1.weight, source.conv1.weight)
    assert torch.equal(enc.layer2[0].conv1.weight, source.layer2[0].conv1.weight)
    for m in range(2):  # each modality's private BN starts from the same ImageNet BN
        assert torch.equal(enc.layer3[1].bn2.bns[m].weight, source.layer3[1].bn2.weight)
        shortcut_bn = getattr(enc.layer2[0].downsample, "1").bns[m]
        assert torch.equal(shortcut_bn.running_var, source.layer2[0].downsample[1].running_var)
