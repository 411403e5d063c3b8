"""The TensorRT adapter without TensorRT: engine compatibility decisions, the builder calls
it makes on each TensorRT major version (through a recording fake of the module), the
manifest entries of an export with --backend tensorrt, and the missing-extra error."""

import importlib.machinery
import sys
import types

import pytest
import torch._dynamo  # noqa: F401 - imported before any fake `tensorrt` module: it probes for one

from edgefuse.errors import EdgefuseError, MissingExtraError
from edgefuse.export import tensorrt_build as tb
from edgefuse.export.bundle import load_bundle
from edgefuse.export.manifest import EngineEntry

SHA = "0" * 64


def engine(**kw):
    base = dict(graph="path_0", backend="tensorrt", precision="fp16", file="engines/path_0.fp16.plan", sha256=SHA,
                onnx_file="path_0.onnx", tensorrt_version="10.3.0.30", gpu_name="Orin", compute_capability="8.7")
    return EngineEntry(**{**base, **kw})


HERE = tb.RuntimeInfo("10.3.0.30", "Orin", "8.7")


@pytest.mark.parametrize("entry, runtime, policy, action, words", [
    (engine(), HERE, "refuse", tb.Action.OK, "matches"),
    (engine(), tb.RuntimeInfo("10.3.0.26", "Orin", "8.7"), "refuse", tb.Action.OK, "matches"),  # build number only
    (engine(), tb.RuntimeInfo("10.3.0.30", "Orin NX", "8.7"), "refuse", tb.Action.OK, "same architecture"),
    (engine(), tb.RuntimeInfo("10.7.0", "Orin", "8.7"), "refuse", tb.Action.REFUSE, "TensorRT 10.3.0.30 built it"),
    (engine(), tb.RuntimeInfo("10.7.0", "Orin", "8.7"), "rebuild", tb.Action.REBUILD, "Rebuilding it from path_0.onnx"),
    (engine(), tb.RuntimeInfo("10.3.0.30", "H100", "9.0"), "refuse", tb.Action.REFUSE, "compute capability 8.7"),
    (engine(), tb.RuntimeInfo("10.3.0.30", "H100", "9.0"), "rebuild", tb.Action.REBUILD, "9.0"),
    (engine(), tb.RuntimeInfo("11.4.0", "Orin", "8.7"), "rebuild", tb.Action.REFUSE, "no FP16 builder flag"),
    (engine(precision="int8"), tb.RuntimeInfo("11.4.0", "Orin", "8.7"), "rebuild", tb.Action.REBUILD, "Rebuilding"),
    (engine(), tb.RuntimeInfo(None, None, None), "rebuild", tb.Action.REFUSE, "not installed"),
    (engine(), tb.RuntimeInfo("10.3.0.30", None, None), "rebuild", tb.Action.REFUSE, "no NVIDIA GPU"),
    (engine(backend="openvino"), HERE, "rebuild", tb.Action.REFUSE, "openvino"),
])
def test_engine_compat(entry, runtime, policy, action, words):
    compat = tb.check_engine_compat(entry, runtime, policy)
    assert compat.action is action
    assert words in compat.message


def test_compat_rejects_unknown_policy():
    with pytest.raises(ValueError):
        tb.check_engine_compat(engine(), HERE, "maybe")


# --- a recording fake of the tensorrt module ------------------------------------------------
class _Enum:
    def __init__(self, **members):
        self.__dict__.update(members)


def fake_tensorrt(version: str, calls: list, parse_ok: bool = True, build_ok: bool = True):
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)
    trt.__version__ = version
    trt.MemoryPoolType = _Enum(WORKSPACE="WORKSPACE")
    trt.BuilderFlag = _Enum(FP16="FP16", STRIP_PLAN="STRIP_PLAN", REFIT_IDENTICAL="REFIT_IDENTICAL")
    trt.NetworkDefinitionCreationFlag = _Enum(STRONGLY_TYPED=1)

    class Logger:
        WARNING = "warning"

        def __init__(self, level):
            calls.append(("Logger", level))

    class Cache:
        def __init__(self, data):
            self.data = data

        def serialize(self):
            return self.data + b"+"

    class Config:
        def __init__(self):
            self.cache = None

        def set_memory_pool_limit(self, pool, size):
            calls.append(("set_memory_pool_limit", pool, size))

        def set_flag(self, flag):
            calls.append(("set_flag", flag))

        def create_timing_cache(self, data):
            return Cache(bytes(data))

        def set_timing_cache(self, cache, ignore_mismatch):
            self.cache = cache

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            pass

        def create_network(self, flags):
            calls.append(("create_network", flags))
            return object()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            return b"ENGINE" if build_ok else None

    class OnnxParser:
        num_errors = 0 if parse_ok else 1

        def __init__(self, network, logger):
            pass

        def parse_from_file(self, path):
            calls.append(("parse_from_file", path))
            return parse_ok

        def get_error(self, i):
            return "unsupported operator Foo"

    class Engine:
        device_memory_size_v2 = 12345

    class Runtime:
        def __init__(self, logger):
            pass

        def deserialize_cuda_engine(self, data):
            calls.append(("deserialize_cuda_engine", bytes(data)))
            return Engine()

    trt.Logger, trt.Builder, trt.OnnxParser, trt.Runtime = Logger, Builder, OnnxParser, Runtime
    return trt


@pytest.mark.parametrize("version, precision, flags, fp16_flag", [
    ("10.3.0.30", "fp32", 0, False),
    ("10.3.0.30", "fp16", 0, True),
    ("10.3.0.30", "int8", 1 << 1, False),     # strongly typed: the Q/DQ nodes decide
    ("11.4.0", "int8", 0, False),             # always strongly typed in 11
    ("11.4.0", "fp32", 0, False),
])
def test_builder_calls_per_version(monkeypatch, tmp_path, version, precision, flags, fp16_flag):
    calls = []
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt(version, calls))
    (tmp_path / "g.onnx").write_bytes(b"onnx")
    plan, cache = tb.build_engine(tmp_path / "g.onnx", precision, 1 << 28, b"old")
    assert plan == b"ENGINE" and cache == b"old+"
    assert ("create_network", flags) in calls
    assert ("set_memory_pool_limit", "WORKSPACE", 1 << 28) in calls
    assert (("set_flag", "FP16") in calls) is fp16_flag
    assert ("set_flag", "STRIP_PLAN") not in calls
    calls.clear()
    tb.build_engine(tmp_path / "g.onnx", precision, 1 << 28, b"", strip=True)
    assert {("set_flag", "STRIP_PLAN"), ("set_flag", "REFIT_IDENTICAL")} <= set(calls)


def test_fp16_refused_on_tensorrt_11(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("11.4.0", []))
    with pytest.raises(EdgefuseError, match="removed the FP16 builder flag"):
        tb.build_engine(tmp_path / "g.onnx", "fp16", 1 << 28)


def test_parser_and_builder_failures_are_clear(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("10.3.0", [], parse_ok=False))
    with pytest.raises(EdgefuseError, match="rejected g.onnx: unsupported operator Foo"):
        tb.build_engine(tmp_path / "g.onnx", "fp32", 1 << 28)
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("10.3.0", [], build_ok=False))
    with pytest.raises(EdgefuseError, match="could not build an engine from g.onnx"):
        tb.build_engine(tmp_path / "g.onnx", "fp32", 1 << 28)


def test_missing_tensorrt_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(MissingExtraError, match=r"edgefuse\[tensorrt\]") as info:
        tb.require_tensorrt()
    assert info.value.extra == "tensorrt"
    assert tb.detect_runtime().tensorrt_version is None


def test_export_with_tensorrt_records_engines(monkeypatch, dynmm_checkpoint, tmp_path):
    calls = []
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("10.3.0.30", calls))
    monkeypatch.setattr(tb, "gpu_info", lambda: ("Orin", "8.7"))
    from edgefuse.export.exporter import export_bundle

    result = export_bundle(dynmm_checkpoint, tmp_path / "b", backend="tensorrt", precision="fp16", paths="4",
                           verify_frames=1, verify_data="procedural", workspace_mb=64)
    m = load_bundle(result.bundle).manifest          # engine hashes are checked too
    assert m.precision == "fp32" and m.engine_precision == "fp16"
    assert [e.graph for e in m.engines] == ["stem_gate", "path_4"]
    for e in m.engines:
        assert (e.tensorrt_version, e.gpu_name, e.compute_capability) == ("10.3.0.30", "Orin", "8.7")
        assert e.onnx_file == ("stem_gate.onnx" if e.graph == "stem_gate" else f"{e.graph}.onnx")
        assert e.workspace_bytes == 64 << 20 and e.timing_cache == "engines/timing.cache"
        assert (result.bundle / e.file).read_bytes() == b"ENGINE"
        assert tb.check_engine_compat(e, tb.RuntimeInfo("10.3.0.30", "Orin", "8.7")).action is tb.Action.OK
        # weight-stripped (the weights are the bundle's shared file), with the device memory it needs
        assert e.stripped and e.device_memory_bytes == 12345
        assert e.weights_bytes == tb.graph_weight_bytes(result.bundle / e.onnx_file, "fp16") > 0
    assert (result.bundle / "engines" / "timing.cache").read_bytes() == b"++"   # one cache shared by both builds
    assert sum(1 for c in calls if c[0] == "parse_from_file") == 2
    assert calls.count(("set_flag", "STRIP_PLAN")) == 2 and calls.count(("deserialize_cuda_engine", b"ENGINE")) == 2
    # fp16 engines hold float weights at half size: about half of what the fp32 graph stores
    fp32 = tb.graph_weight_bytes(result.bundle / "path_4.onnx", "fp32")
    assert 0.45 * fp32 < tb.graph_weight_bytes(result.bundle / "path_4.onnx", "fp16") < 0.6 * fp32


def test_tensorrt_export_is_refused_up_front(monkeypatch, dynmm_checkpoint, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("10.3.0.30", []))
    monkeypatch.setattr(tb, "gpu_info", lambda: (None, None))
    from edgefuse.export.exporter import export_bundle

    with pytest.raises(EdgefuseError, match="needs an NVIDIA GPU"):
        export_bundle(dynmm_checkpoint, tmp_path / "b", backend="tensorrt", paths="4",
                      verify_frames=1, verify_data="procedural")
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt("11.4.0", []))
    monkeypatch.setattr(tb, "gpu_info", lambda: ("H100", "9.0"))
    with pytest.raises(EdgefuseError, match="FP16"):
        export_bundle(dynmm_checkpoint, tmp_path / "b", backend="tensorrt", precision="fp16")
    assert not (tmp_path / "b").exists() and list(tmp_path.iterdir()) == []
