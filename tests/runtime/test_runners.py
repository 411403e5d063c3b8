"""Runners: input checking, dispatch, and ORT / torch agreement on every path."""

from __future__ import annotations

import numpy as np
import pytest
from runtime_fakes import SIZE

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.export.bundle import load_bundle
from edgefuse.runtime.runners import RUNNERS, RunnerError, make_runner, path_graph


@pytest.fixture(scope="module")
def bundle(bundle_dir):
    return load_bundle(bundle_dir)


@pytest.fixture(scope="module")
def inputs():
    rng = np.random.default_rng(1)
    h, w = SIZE
    rgb = (rng.random((1, 3, h, w)) * 255).astype(np.float32)
    depth = (rng.random((1, 1, h, w)) * 4000).astype(np.float32)
    return rgb, depth


@pytest.fixture(scope="module")
def ort_runner(bundle):
    with make_runner("ort", bundle, threads=1) as r:
        yield r


def test_dispatch_is_a_dict_and_unknown_backends_fail():
    assert set(RUNNERS) == {"ort", "tensorrt", "torch"}
    with pytest.raises(ConfigError, match="choose one of"):
        make_runner("onnx-gpu", None)


def test_construction_is_cheap_and_use_before_activate_fails(bundle, inputs):
    r = make_runner("ort", bundle)
    assert not r.active and not r.sessions
    with pytest.raises(RunnerError, match="before activate"):
        r.stem_gate(*inputs)


def test_infer_checks_names_shapes_dtypes(ort_runner, inputs):
    rgb, depth = inputs
    with pytest.raises(RunnerError, match="'rgb' has shape"):
        ort_runner.infer("stem_gate", {"rgb": rgb[:, :, :32], "depth": depth})
    with pytest.raises(RunnerError, match="'depth' has dtype float64"):
        ort_runner.infer("stem_gate", {"rgb": rgb, "depth": depth.astype(np.float64)})
    with pytest.raises(RunnerError, match="missing input"):
        ort_runner.infer("stem_gate", {"rgb": rgb})
    with pytest.raises(RunnerError, match="no graph"):
        ort_runner.infer("path_9", {})


def test_fast_path_matches_plain_infer_on_every_path(ort_runner, bundle, inputs):
    rgb, depth = inputs
    stem = ort_runner.stem_gate(rgb, depth)
    outs = ort_runner.infer("stem_gate", {"rgb": rgb, "depth": depth})
    np.testing.assert_allclose(stem.gate_logits, outs["gate_logits"], rtol=1e-5, atol=1e-5)
    for p in bundle.manifest.paths:
        feeds = {n: outs[n] for n in p.inputs}
        ref = ort_runner.infer(path_graph(p.index), feeds)["labels"]
        got = ort_runner.run_path(p.index, stem.features)
        assert got.shape == (1, *SIZE)
        np.testing.assert_array_equal(got, ref)


def test_torch_runner_agrees_with_ort(bundle, runtime_checkpoint, ort_runner, inputs):
    rgb, depth = inputs
    with make_runner("torch", bundle, checkpoint=str(runtime_checkpoint), device="cpu") as tr:
        ts, os_ = tr.stem_gate(rgb, depth), ort_runner.stem_gate(rgb, depth)
        np.testing.assert_allclose(ts.gate_logits, os_.gate_logits, rtol=1e-3, atol=1e-3)
        for p in bundle.manifest.paths:
            a = tr.run_path(p.index, ts.features)
            b = ort_runner.run_path(p.index, os_.features)
            assert (a == b).mean() > 0.99, p.index


def test_torch_runner_refuses_other_weights(bundle, tmp_path):
    from edgefuse.checkpoint import save_checkpoint
    from edgefuse.models.registry import build_model

    import torch

    torch.manual_seed(123)   # the session checkpoint was built with seed 0
    other = save_checkpoint(tmp_path / "other.safetensors", build_model("dynmm-tiny", input_size=SIZE))
    r = make_runner("torch", bundle, checkpoint=str(other), device="cpu")
    with pytest.raises(EdgefuseError, match="not the ones the bundle was exported from"):
        r.activate()


def test_ort_unavailable_provider_says_how_to_fix(bundle):
    r = make_runner("ort", bundle, providers="cuda")
    with pytest.raises(EdgefuseError, match="onnxruntime-gpu"):
        r.activate()


def test_torch_runner_asks_for_the_checkpoint_when_not_found(bundle):
    r = make_runner("torch", bundle, device="cpu")
    with pytest.raises(EdgefuseError, match="--checkpoint"):
        r.activate()


@pytest.mark.parametrize("scheme, backend, provider, words", [
    ("tensorrt", "ort", "CPUExecutionProvider", "--int8-target cpu"),
    ("cpu", "tensorrt", None, "TensorRT rejects"),
    ("cpu", "ort", "TensorrtExecutionProvider", "TensorRT rejects"),
    ("cpu", "ort", "CPUExecutionProvider", None),
    ("tensorrt", "tensorrt", None, None),
    ("tensorrt", "ort", "CUDAExecutionProvider", None),   # nothing known: no claim
    ("", "ort", "CPUExecutionProvider", None),             # not an int8 bundle
])
def test_int8_scheme_mismatch(scheme, backend, provider, words):
    from types import SimpleNamespace

    from edgefuse.runtime.runners.base import int8_scheme_mismatch

    message = int8_scheme_mismatch(SimpleNamespace(int8_scheme=scheme), backend, provider)
    assert (message is None) if words is None else (words in message and scheme in message)


def test_runner_warns_once_about_an_int8_bundle_made_for_tensorrt(bundle, caplog):
    import dataclasses
    import logging

    def as_int8(target):
        m = dataclasses.replace(bundle.manifest, precision="int8", engine_precision="int8", int8_target=target)
        return dataclasses.replace(bundle, manifest=m)

    with caplog.at_level(logging.WARNING, logger="edgefuse.runtime.runners"):
        with make_runner("ort", as_int8("tensorrt"), threads=1):
            pass
        assert [r.getMessage() for r in caplog.records].count(caplog.records[0].getMessage()) == 1
        assert "quantised for TensorRT" in caplog.text and "--int8-target cpu" in caplog.text
        caplog.clear()
        with make_runner("ort", as_int8("cpu"), threads=1):
            pass
        assert caplog.text == ""


def test_torch_labels_are_argmax_with_first_maximum_on_ties():
    import torch

    from edgefuse.runtime.runners.torch import labels_of

    g = torch.Generator().manual_seed(0)
    logits = torch.randint(0, 4, (2, 7, 5, 6), generator=g).float()    # many ties
    labels = labels_of(logits)
    assert labels.dtype == torch.int32 and labels.shape == (2, 5, 6)
    assert torch.equal(labels, logits.argmax(dim=1).to(torch.int32))
    assert torch.equal(labels_of(logits[:, :1]), torch.zeros(2, 5, 6, dtype=torch.int32))
