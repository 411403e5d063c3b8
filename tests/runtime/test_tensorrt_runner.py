"""The TensorRT runner without a GPU: its TensorRT vocabulary checked against TensorRT 10.3
and 11.4, and its engine selection, buffer plan and per-frame flow run on fakes of
`tensorrt` and `pycuda.driver` (fake engines are JSON files describing their tensors)."""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from runtime_fakes import SIZE

import edgefuse.runtime.runners.tensorrt as trt_runner
from edgefuse.errors import EdgefuseError, MissingExtraError
from edgefuse.export.bundle import load_bundle
from edgefuse.export.manifest import EngineEntry
from edgefuse.export.tensorrt_build import RuntimeInfo
from edgefuse.runtime.runners.tensorrt import TRT_NAMES, TensorIO, TensorrtRunner, plan_buffers

# The vocabularies the export tests keep in the repo (tests/export/data/tensorrt-api).
VOCAB = Path(__file__).resolve().parents[1] / "export" / "data" / "tensorrt-api"
ORIN = RuntimeInfo("10.3.0", "Orin", "8.7")


# --- static: the TensorRT names the runner uses exist in both versions -------------------------
def _vocab(version: str) -> set[str]:
    f = VOCAB / f"tensorrt-{version}-python-names.txt"
    assert f.is_file(), f"{f} is part of the repository (tests/export/data/tensorrt-api)"
    return set(f.read_text().split())


@pytest.mark.parametrize("version", ["10.3", "11.4"])
def test_trt_names_exist_in_both_versions(version):
    missing = sorted(set(TRT_NAMES) - _vocab(version))
    assert not missing, f"not in TensorRT {version}: {missing}"


def _root(node):
    while isinstance(node, (ast.Attribute, ast.Call, ast.Subscript)):
        node = node.value if not isinstance(node, ast.Call) else node.func
    return node


def test_every_attribute_used_on_tensorrt_objects_is_declared():
    tree = ast.parse(Path(trt_runner.__file__).read_text())
    trt_roots = {"trt", "engine", "runtime", "refitter", "parser"}
    used = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        base = node.value
        # self.contexts[g].x / self.engines[g].x: execution contexts and engines
        if isinstance(base, ast.Subscript) and isinstance(base.value, ast.Attribute) \
                and base.value.attr in ("contexts", "engines"):
            used.add(node.attr)
        root = _root(node)
        if isinstance(root, ast.Name) and root.id in trt_roots:
            used.add(node.attr)
    assert used, "the AST walk found nothing: the check is broken"
    assert used <= set(TRT_NAMES), f"undeclared TensorRT names: {sorted(used - set(TRT_NAMES))}"


# --- fakes ---------------------------------------------------------------------------------------
class _Member:
    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return self.name


class FakeCuda:
    """pycuda.driver: device memory is a dict of byte arrays keyed by fake pointers."""

    def __init__(self):
        self.mem: dict[int, np.ndarray] = {}
        self.next_ptr = 4096
        self.copies = []

    class Stream:
        handle = 7

        def synchronize(self):
            pass

    def mem_alloc(self, nbytes):
        ptr = self.next_ptr
        self.next_ptr += nbytes + 256
        self.mem[ptr] = np.zeros(nbytes, np.uint8)
        return ptr

    def pagelocked_empty(self, shape, dtype):
        return np.empty(shape, dtype)

    def memcpy_htod_async(self, dev, host, stream):
        self.copies.append("htod")
        self.mem[int(dev)][:] = np.ascontiguousarray(host).view(np.uint8).reshape(-1)

    def memcpy_dtoh_async(self, host, dev, stream):
        self.copies.append("dtoh")
        host.view(np.uint8).reshape(-1)[:] = self.mem[int(dev)]


def make_fake_trt(cuda: FakeCuda):
    dtypes = {n: _Member(n) for n in ("FLOAT", "HALF", "INT32", "INT64", "INT8", "UINT8", "BOOL")}
    np_of = {"float32": "FLOAT", "int32": "INT32", "int64": "INT64"}
    modes = {"in": _Member("INPUT"), "out": _Member("OUTPUT")}

    class Context:
        def __init__(self, engine):
            self.engine, self.addr, self.runs = engine, {}, 0

        def set_tensor_address(self, name, ptr):
            self.addr[name] = int(ptr)

        def _view(self, name):
            t = self.engine.tensors[name]
            return cuda.mem[self.addr[name]].view(t["dtype"]).reshape(t["shape"])

        def execute_async_v3(self, handle):
            self.runs += 1
            g = self.engine.graph
            if g == "stem_gate":
                # every feature = mean of rgb; logits = [0, 1, ..] with the last largest
                m = float(self._view("rgb").mean())
                for name, t in self.engine.tensors.items():
                    if t["mode"] == "out" and name != "gate_logits":
                        self._view(name)[...] = m
                if "gate_logits" in self.engine.tensors:
                    v = self._view("gate_logits")
                    v[...] = np.arange(v.size).reshape(v.shape)
            else:
                k = int(g.split("_")[1])   # labels = k + the feature value the stem wrote
                self._view("labels")[...] = k + int(self._view("rgb_feat").flat[0])

    class Engine:
        def __init__(self, desc):
            self.graph = desc["graph"]
            self.tensors = {t["name"]: t for t in desc["tensors"]}
            self.order = [t["name"] for t in desc["tensors"]]

        num_io_tensors = property(lambda self: len(self.order))

        def get_tensor_name(self, i):
            return self.order[i]

        def get_tensor_mode(self, name):
            return modes[self.tensors[name]["mode"]]

        def get_tensor_shape(self, name):
            return tuple(self.tensors[name]["shape"])

        def get_tensor_dtype(self, name):
            return dtypes[np_of[self.tensors[name]["dtype"]]]

        def create_execution_context(self):
            ctx = Context(self)
            contexts.append(ctx)
            return ctx

    class Logger:
        WARNING = 2

        def __init__(self, level):
            pass

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            return Engine(json.loads(data))

    refits: list = []

    class Refitter:
        """Records what a weight-stripped engine was refitted from."""

        def __init__(self, engine, logger):
            self.engine, self.source = engine, None

        def refit_cuda_engine(self):
            refits.append((self.engine.graph, self.source))
            return self.source is not None

    class OnnxParserRefitter:
        fail = False   # set on the class to make refit_from_file fail
        num_errors = property(lambda self: 1 if self.fail else 0)

        def __init__(self, refitter, logger):
            self.refitter = refitter

        def refit_from_file(self, path):
            if not self.fail:
                self.refitter.source = Path(path).name
            return not self.fail

        def get_error(self, i):
            return "weight 'conv1.weight' not found"

    contexts: list = []
    return SimpleNamespace(Logger=Logger, Runtime=Runtime, DataType=SimpleNamespace(**dtypes),
                           Refitter=Refitter, OnnxParserRefitter=OnnxParserRefitter,
                           __version__="10.3.0.30", contexts=contexts, refits=refits)


def _engine_bundle(bundle_dir, tmp_path, version="10.3.0.30", cc="8.7", drop=None, dynamic=False, stripped=False):
    """A copy of the test bundle with fake engines added to its (in-memory) manifest."""
    root = tmp_path / "trt_bundle"
    shutil.copytree(bundle_dir, root)
    b = load_bundle(root)
    m = b.manifest
    graphs = [("stem_gate", m.stem_gate)] + [(f"path_{p.index}", p) for p in m.paths]
    entries = []
    (root / "engines").mkdir()
    for graph, entry in graphs:
        if graph == drop:
            continue
        tensors = [{"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
                    "mode": "in" if t.name in entry.inputs else "out"} for t in entry.tensors]
        if dynamic and graph == "stem_gate":
            tensors[0]["shape"][0] = -1
        f = f"engines/{graph}.fp16.plan"
        (root / f).write_text(json.dumps({"graph": graph, "tensors": tensors}))
        entries.append(EngineEntry(graph=graph, backend="tensorrt", precision="fp16", file=f, sha256="0" * 64,
                                   onnx_file=entry.file, tensorrt_version=version, gpu_name="Orin",
                                   compute_capability=cc, stripped=stripped))
    manifest = dataclasses.replace(m, engines=tuple(entries))
    return SimpleNamespace(root=b.root, manifest=manifest, paths=b.paths, stem_gate=b.stem_gate)


def _runner(bundle, cuda=None, **kw):
    cuda = cuda or FakeCuda()
    trt = make_fake_trt(cuda)
    return TensorrtRunner(bundle, trt_module=trt, cuda_module=cuda, runtime_info=ORIN, **kw), trt, cuda


def test_per_frame_flow_on_fakes_shares_feature_buffers(bundle_dir, tmp_path):
    bundle = _engine_bundle(bundle_dir, tmp_path)
    runner, trt, cuda = _runner(bundle, warmup=2)
    h, w = SIZE
    rgb = np.full((1, 3, h, w), 7.0, np.float32)
    depth = np.full((1, 1, h, w), 1000.0, np.float32)
    with runner:
        assert all(c.runs == 2 for c in trt.contexts)            # every engine warmed up
        stem_ctx = next(c for c in trt.contexts if c.engine.graph == "stem_gate")
        for ctx in trt.contexts:
            for name in ("rgb_feat", "depth_feat"):
                if ctx.engine.graph != "stem_gate" and name in ctx.addr:
                    assert ctx.addr[name] == stem_ctx.addr[name]   # same device buffer
        cuda.copies.clear()
        res = runner.stem_gate(rgb, depth)
        assert res.features is None                               # features stay on the device
        assert res.gate_logits.shape == (1, len(bundle.manifest.path_set))
        assert int(np.argmax(res.gate_logits)) == len(bundle.manifest.path_set) - 1
        for p in bundle.manifest.paths:
            labels = runner.run_path(p.index, res.features)
            assert labels.shape == (1, h, w) and labels.dtype == np.int32
            assert (labels == p.index + 7).all()
        # per frame: rgb + depth up, logits down, then one labels copy per path
        assert cuda.copies == ["htod", "htod", "dtoh"] + ["dtoh"] * len(bundle.manifest.paths)
        assert runner.memory_bytes()["io_buffers"] > 0
    assert not runner.active and not runner.contexts


def test_weight_stripped_engines_are_refitted_from_their_graph(bundle_dir, tmp_path):
    bundle = _engine_bundle(bundle_dir, tmp_path, stripped=True)
    runner, trt, _ = _runner(bundle, warmup=1)
    with runner:
        # every engine got its weights from the ONNX graph it was built from, before any run
        assert sorted(trt.refits) == sorted((e.graph, e.onnx_file) for e in bundle.manifest.engines)
    plain = _engine_bundle(bundle_dir, tmp_path / "plain")
    runner, trt, _ = _runner(plain, warmup=1)
    with runner:
        assert trt.refits == []              # engines that keep their weights are not refitted


def test_a_failed_refit_is_a_clear_error(bundle_dir, tmp_path):
    bundle = _engine_bundle(bundle_dir, tmp_path, stripped=True)
    runner, trt, _ = _runner(bundle)
    trt.OnnxParserRefitter.fail = True
    with pytest.raises(EdgefuseError, match=r"refit the weight-stripped engine stem_gate from stem_gate.onnx: "
                                            r"weight 'conv1.weight' not found"):
        runner.activate()


def test_engine_from_another_tensorrt_is_refused_naming_the_file(bundle_dir, tmp_path):
    bundle = _engine_bundle(bundle_dir, tmp_path, version="10.0.1.6")
    runner, _, _ = _runner(bundle)
    with pytest.raises(EdgefuseError, match=r"engines/stem_gate\.fp16\.plan.*TensorRT 10\.0\.1\.6"):
        runner.activate()


def test_engine_for_another_gpu_is_refused(bundle_dir, tmp_path):
    bundle = _engine_bundle(bundle_dir, tmp_path, cc="9.0")
    runner, _, _ = _runner(bundle)
    with pytest.raises(EdgefuseError, match="compute capability 9.0"):
        runner.activate()


def test_missing_engine_says_how_to_build_it(bundle_dir, tmp_path):
    bundle = _engine_bundle(bundle_dir, tmp_path, drop="path_2")
    runner, _, _ = _runner(bundle)
    with pytest.raises(EdgefuseError, match=r"no TensorRT engine for \['path_2'\].*--backend tensorrt"):
        runner.activate()


def test_dynamic_shapes_are_refused(bundle_dir, tmp_path):
    bundle = _engine_bundle(bundle_dir, tmp_path, dynamic=True)
    runner, _, _ = _runner(bundle)
    with pytest.raises(EdgefuseError, match="dynamic shape"):
        runner.activate()


def test_plan_rejects_mismatched_feature_specs():
    f32 = np.dtype(np.float32)
    io = {"stem_gate": [TensorIO("rgb", True, (1, 3, 4, 4), f32), TensorIO("feat", False, (1, 8, 2, 2), f32)],
          "path_0": [TensorIO("feat", True, (1, 8, 2, 2), f32), TensorIO("labels", False, (1, 4, 4), np.dtype(np.int32))]}
    plan = plan_buffers(io)
    assert plan.bindings["path_0"]["feat"] == plan.bindings["stem_gate"]["feat"]
    assert set(plan.host) == {"stem_gate/rgb", "path_0/labels"}
    assert plan.device_bytes == 4 * (48 + 32) + 4 * 16
    io["path_0"][0] = TensorIO("feat", True, (1, 8, 2, 2), np.dtype(np.float16))
    with pytest.raises(EdgefuseError, match="rebuild the engines from one bundle"):
        plan_buffers(io)


def test_without_tensorrt_the_error_names_the_extra(bundle_dir):
    try:
        import tensorrt  # noqa: F401
        pytest.skip("tensorrt is installed here")
    except ImportError:
        pass
    runner = TensorrtRunner(load_bundle(bundle_dir))
    with pytest.raises(MissingExtraError, match=r"edgefuse\[tensorrt\]"):
        runner.activate()
