"""`--on-mismatch refuse|rebuild` on `edgefuse run` and `edgefuse bench`: the flag reaches
the TensorRT runner (RunConfig / BenchConfig.backend_options -> make_runner), through the
real CLI, on a bundle whose engines (fakes, hashed in its manifest) were built by another
TensorRT release. TensorRT and pycuda are the fakes of test_tensorrt_runner.py."""

from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
from test_tensorrt_runner import ORIN, FakeCuda, make_fake_trt

import edgefuse.export.tensorrt_build as tb
from edgefuse.cli.main import main
from edgefuse.export.bundle import load_bundle, sha256_file
from edgefuse.export.manifest import EngineEntry, write_manifest
from edgefuse.runtime.runners.tensorrt import TensorrtRunner


def _engine_desc(graph: str, entry) -> dict:
    return {"graph": graph, "tensors": [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                                         "mode": "in" if t.name in entry.inputs else "out"}
                                        for t in entry.tensors]}


@pytest.fixture
def old_engine_bundle(bundle_dir, tmp_path):
    """A bundle on disk with fake engines built by TensorRT 10.0.1.6 (this 'machine' has
    10.3.0), recorded in its manifest with their real sha256, so load_bundle accepts it."""
    root = tmp_path / "trt_bundle"
    shutil.copytree(bundle_dir, root)
    m = load_bundle(root).manifest
    (root / "engines").mkdir()
    entries, descs = [], {}
    for graph, entry in [("stem_gate", m.stem_gate)] + [(f"path_{p.index}", p) for p in m.paths]:
        f = f"engines/{graph}.fp16.plan"
        descs[entry.file] = json.dumps(_engine_desc(graph, entry)).encode()
        (root / f).write_bytes(descs[entry.file])
        entries.append(EngineEntry(graph=graph, backend="tensorrt", precision="fp16", file=f,
                                   sha256=sha256_file(root / f), onnx_file=entry.file,
                                   tensorrt_version="10.0.1.6", gpu_name="Orin", compute_capability="8.7"))
    write_manifest(root, dataclasses.replace(m, engines=tuple(entries)))
    load_bundle(root)   # valid and hash-clean
    return root, descs


@pytest.fixture
def fake_tensorrt(monkeypatch, old_engine_bundle):
    """Fake tensorrt / pycuda for every TensorrtRunner the CLI makes; this machine is an
    Orin with TensorRT 10.3.0; build_engine records what it rebuilds."""
    root, descs = old_engine_bundle
    cuda = FakeCuda()
    trt = make_fake_trt(cuda)
    monkeypatch.setattr(TensorrtRunner, "_modules", lambda self: (trt, cuda))
    monkeypatch.setattr(tb, "detect_runtime", lambda: ORIN)
    rebuilt = []

    def build_engine(onnx_path, precision, workspace_bytes, timing_cache=b""):
        rebuilt.append((onnx_path.name, precision))
        return descs[onnx_path.name], b""

    monkeypatch.setattr(tb, "build_engine", build_engine)
    return root, rebuilt


def _graphs(root):
    m = load_bundle(root).manifest
    return {m.stem_gate.file} | {p.file for p in m.paths}


def test_run_refuses_a_mismatched_engine_by_default(fake_tensorrt, capsys):
    root, rebuilt = fake_tensorrt
    rc = main(["run", "--bundle", str(root), "--backend", "tensorrt", "--frames", "2"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "TensorRT 10.0.1.6 built it" in err and "--on-mismatch rebuild" in err
    assert "Traceback" not in err
    assert rebuilt == []


def test_run_on_mismatch_rebuild_rebuilds_from_the_onnx_and_runs(fake_tensorrt, capsys):
    root, rebuilt = fake_tensorrt
    before = {f.name: f.read_bytes() for f in (root / "engines").iterdir()}
    rc = main(["run", "--bundle", str(root), "--backend", "tensorrt", "--on-mismatch", "rebuild",
               "--camera", "synthetic", "--frames", "2", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 2
    # every graph rebuilt from the bundle's ONNX, at the engine's precision ...
    assert {name for name, _ in rebuilt} == _graphs(root) and {p for _, p in rebuilt} == {"fp16"}
    # ... in memory: the bundle's files stay as their hashes say
    assert {f.name: f.read_bytes() for f in (root / "engines").iterdir()} == before
    load_bundle(root)


def test_bench_passes_the_policy_too(fake_tensorrt, capsys):
    root, rebuilt = fake_tensorrt
    args = ["bench", "--bundle", str(root), "--backend", "tensorrt", "--frames", "2", "--warmup", "0",
            "--iterations", "2"]
    assert main(args) == 2
    assert "--on-mismatch rebuild" in capsys.readouterr().err and rebuilt == []
    assert main(args + ["--on-mismatch", "rebuild"]) == 0
    assert {name for name, _ in rebuilt} == _graphs(root)


@pytest.mark.parametrize("command", ["run", "bench"])
def test_invalid_on_mismatch_is_a_clean_cli_error(bundle_dir, capsys, command):
    rc = main([command, "--bundle", str(bundle_dir), "--frames", "1", "--on-mismatch", "maybe"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "--on-mismatch 'maybe'" in err and "refuse" in err and "rebuild" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("command", ["run", "bench"])
def test_help_says_what_each_policy_does(command, capsys):
    import typer.main

    from edgefuse.cli.main import app

    cmd = typer.main.get_command(app).commands[command]
    option = next(p for p in cmd.params if "--on-mismatch" in p.opts)
    assert option.default == "refuse"
    assert "refuse (default): stop" in option.help and "rebuild: rebuild it" in option.help
    assert main([command, "--help"]) == 0
    assert "--on-mismatch" in capsys.readouterr().out
