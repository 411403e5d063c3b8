"""TensorRT runner: the bundle's engines through TensorRT 10's named-tensor API.

Every engine is deserialised (a weight-stripped one refitted from the bundle's shared
weights, `refit_stripped`) and given its own execution context at activate(), every
tensor gets a device buffer (pycuda) whose address is set once with `set_tensor_address`,
and each engine is warmed up (the first inference is much slower, docs/architecture.md "Runners"). The
stem's feature outputs and the paths' feature inputs share the *same* device buffers, so
nothing moves between stem and path; per frame only rgb/depth go up and gate_logits and
labels come down, all on one stream (`execute_async_v3`).

TensorRT cannot run on the development machines: the logic that needs no GPU (engine
selection and compatibility, tensor description, the buffer plan with its sharing) is plain
Python tested with fakes; the adapter that calls TensorRT and pycuda stays thin. Every
attribute used on a TensorRT object is listed in TRT_NAMES and checked against the
TensorRT 10.3 and 11.4 vocabularies by tests/runtime/test_tensorrt_runner.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgefuse.errors import EdgefuseError, require
from edgefuse.runtime.runners.base import STEM_GATE, Runner, RunnerError, StemResult, path_graph, warn_int8_scheme

# Attributes this module uses on tensorrt objects (module, Logger, Runtime, ICudaEngine,
# IExecutionContext, DataType): checked against both TensorRT vocabularies.
TRT_NAMES = (
    "Logger", "WARNING", "Runtime", "deserialize_cuda_engine", "create_execution_context",
    "num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape",
    "get_tensor_dtype", "set_tensor_address", "execute_async_v3", "DataType", "name",
    "Refitter", "OnnxParserRefitter", "refit_from_file", "refit_cuda_engine", "num_errors", "get_error",
)

# TensorRT DataType member name -> numpy dtype. Looked up with getattr so a member absent
# from one TensorRT version (HALF is not in 11.4's vocabulary) is skipped, not an error.
_DTYPES = {"FLOAT": np.float32, "HALF": np.float16, "INT32": np.int32, "INT64": np.int64,
           "INT8": np.int8, "UINT8": np.uint8, "BOOL": np.bool_}


def dtype_map(trt: Any) -> dict[Any, np.dtype]:
    out = {}
    for name, np_type in _DTYPES.items():
        member = getattr(trt.DataType, name, None)
        if member is not None:
            out[member] = np.dtype(np_type)
    return out


@dataclass(frozen=True)
class TensorIO:
    name: str
    is_input: bool
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


def describe_engine(trt: Any, engine: Any, graph: str) -> list[TensorIO]:
    """The engine's I/O tensors (named-tensor API). Bundles have static shapes: a dynamic
    dimension means the engine was not built from this bundle's graphs."""
    dtypes = dtype_map(trt)
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        shape = tuple(int(d) for d in engine.get_tensor_shape(name))
        if any(d < 0 for d in shape):
            raise EdgefuseError(f"engine {graph}: tensor '{name}' has dynamic shape {list(shape)}; "
                                "edgefuse engines have static shapes, rebuild it with `edgefuse export`")
        trt_dtype = engine.get_tensor_dtype(name)
        if trt_dtype not in dtypes:
            raise EdgefuseError(f"engine {graph}: tensor '{name}' has unsupported type {trt_dtype}")
        is_input = engine.get_tensor_mode(name).name == "INPUT"
        out.append(TensorIO(name, is_input, shape, dtypes[trt_dtype]))
    return out


@dataclass
class BufferPlan:
    """One device buffer per distinct tensor; the stem's feature outputs are reused as the
    paths' inputs (`shared`). `host` lists the tensors copied to/from the host per frame."""

    device: dict[str, TensorIO] = field(default_factory=dict)   # buffer key -> tensor
    bindings: dict[str, dict[str, str]] = field(default_factory=dict)  # graph -> tensor -> key
    host: dict[str, TensorIO] = field(default_factory=dict)     # key -> tensor (pinned copies)

    @property
    def device_bytes(self) -> int:
        return sum(t.nbytes for t in self.device.values())


def plan_buffers(io: dict[str, list[TensorIO]]) -> BufferPlan:
    """Buffer plan for graphs {"stem_gate": [...], "path_<k>": [...]}: a path input named
    like a stem output binds the stem's buffer (after checking shape and dtype agree);
    everything else gets its own buffer. Host copies: stem inputs, gate_logits, labels."""
    plan = BufferPlan()
    stem = {t.name: t for t in io[STEM_GATE]}
    plan.bindings[STEM_GATE] = {}
    for t in io[STEM_GATE]:
        key = f"{STEM_GATE}/{t.name}"
        plan.device[key] = t
        plan.bindings[STEM_GATE][t.name] = key
        if t.is_input or t.name == "gate_logits":
            plan.host[key] = t
    for graph, tensors in io.items():
        if graph == STEM_GATE:
            continue
        plan.bindings[graph] = {}
        for t in tensors:
            source = stem.get(t.name)
            if t.is_input and source is not None and not source.is_input:
                if (source.shape, source.dtype) != (t.shape, t.dtype):
                    raise EdgefuseError(
                        f"engine {graph}: input '{t.name}' is {list(t.shape)} {t.dtype} but the "
                        f"stem outputs {list(source.shape)} {source.dtype}; rebuild the engines "
                        "from one bundle")
                plan.bindings[graph][t.name] = f"{STEM_GATE}/{t.name}"
                continue
            if t.is_input:
                raise EdgefuseError(f"engine {graph}: input '{t.name}' is not produced by the stem "
                                    f"(stem outputs: {sorted(n for n, s in stem.items() if not s.is_input)})")
            key = f"{graph}/{t.name}"
            plan.device[key] = t
            plan.bindings[graph][t.name] = key
            if t.name == "labels":
                plan.host[key] = t
    return plan


def refit_stripped(trt: Any, engine: Any, logger: Any, onnx_path: Path, graph: str) -> None:
    """Give a weight-stripped engine its weights (issue 10): TensorRT's ONNX refitter reads
    them from the bundle graph the engine was built from, i.e. from the bundle's shared
    weights file, whose references load_bundle validated and whose hash it checked."""
    refitter = trt.Refitter(engine, logger)
    parser = trt.OnnxParserRefitter(refitter, logger)
    if not parser.refit_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgefuseError(f"TensorRT could not refit the weight-stripped engine {graph} from "
                            f"{onnx_path.name}: {errors}; re-export the bundle with --backend tensorrt")
    if not refitter.refit_cuda_engine():
        raise EdgefuseError(f"TensorRT could not refit the weight-stripped engine {graph} (weights from "
                            f"{onnx_path.name} missing or of another shape); re-export the bundle")


def select_engines(manifest: Any, runtime: Any, precision: str | None = None,
                   on_mismatch: str = "refuse") -> dict[str, tuple[Any, bool]]:
    """graph -> (EngineEntry, rebuild?) for every graph of the bundle. Compatibility with
    this machine (TensorRT release, GPU architecture) is decided by the exporter's
    `check_engine_compat`: a mismatch is refused with its message (naming the file and what
    differs), or, with on_mismatch="rebuild", marked for an in-memory rebuild from the
    bundle's ONNX. A graph without an engine is an error that says how to build one."""
    from edgefuse.export.tensorrt_build import Action, check_engine_compat

    graphs = [STEM_GATE] + [path_graph(p.index) for p in manifest.paths]
    candidates: dict[str, list[Any]] = {}
    for e in manifest.engines:
        if e.backend == "tensorrt" and (precision is None or e.precision == precision):
            candidates.setdefault(e.graph, []).append(e)
    missing = [g for g in graphs if g not in candidates]
    if missing:
        what = f" {precision}" if precision else ""
        raise EdgefuseError(
            f"the bundle has no{what} TensorRT engine for {missing}; build them with "
            "`edgefuse export ... --backend tensorrt` (or run with --backend ort)")
    chosen: dict[str, tuple[Any, bool]] = {}
    for graph in graphs:
        entry = candidates[graph][0]
        compat = check_engine_compat(entry, runtime, on_mismatch)
        if compat.action is Action.REFUSE:
            raise EdgefuseError(compat.message)
        chosen[graph] = (entry, compat.action is Action.REBUILD)
    return chosen


class TensorrtRunner(Runner):
    name = "tensorrt"

    def __init__(self, bundle: Any, precision: str | None = None, warmup: int = 3,
                 on_mismatch: str = "refuse", trt_module: Any = None, cuda_module: Any = None,
                 runtime_info: Any = None) -> None:
        super().__init__(bundle)
        self.precision = precision
        self.on_mismatch = on_mismatch
        self._runtime_info = runtime_info  # injectable for tests (else detected)
        self.warmup = warmup
        self._trt_module = trt_module     # injectable for tests (fakes)
        self._cuda_module = cuda_module
        self.contexts: dict[str, Any] = {}
        self.engines: dict[str, Any] = {}
        self.io: dict[str, list[TensorIO]] = {}
        self.plan = BufferPlan()
        self.dev: dict[str, Any] = {}
        self.host: dict[str, np.ndarray] = {}
        self.stream: Any = None

    def _modules(self) -> tuple[Any, Any]:
        trt = self._trt_module or require("tensorrt", "tensorrt", "TensorRT comes from NVIDIA (JetPack on Jetson)")
        if self._cuda_module is not None:
            return trt, self._cuda_module
        require("pycuda.autoinit", "tensorrt")   # creates the CUDA context
        return trt, require("pycuda.driver", "tensorrt")

    def _activate(self) -> None:
        trt, cuda = self._modules()
        info = self._runtime_info
        if info is None:
            from edgefuse.export.tensorrt_build import detect_runtime

            info = detect_runtime()
        warn_int8_scheme(self.bundle.manifest, "tensorrt")
        entries = select_engines(self.bundle.manifest, info, self.precision, self.on_mismatch)
        logger = trt.Logger(trt.Logger.WARNING)
        runtime = trt.Runtime(logger)
        root = self.bundle.root
        for graph, (entry, rebuild) in entries.items():
            if rebuild:
                # Rebuilt in memory: the bundle's files stay as their hashes say.
                from edgefuse.export.tensorrt_build import build_engine

                data, _ = build_engine(root / entry.onnx_file, entry.precision,
                                       entry.workspace_bytes or (1 << 30))
            else:
                data = (root / entry.file).read_bytes()   # hashes were checked by load_bundle
            engine = runtime.deserialize_cuda_engine(data)
            if engine is None:
                raise EdgefuseError(f"TensorRT could not deserialise {entry.file} ({graph}); it was "
                                    f"built for {entry.gpu_name or 'another GPU'} with TensorRT "
                                    f"{entry.tensorrt_version or '?'}: rebuild it on this machine")
            if entry.stripped and not rebuild:   # a rebuilt engine keeps its weights
                refit_stripped(trt, engine, logger, root / entry.onnx_file, graph)
            self.engines[graph] = engine
            self.contexts[graph] = engine.create_execution_context()
            self.io[graph] = describe_engine(trt, engine, graph)
        self.plan = plan_buffers(self.io)
        self.stream = cuda.Stream()
        for key, t in self.plan.device.items():
            self.dev[key] = cuda.mem_alloc(max(t.nbytes, 1))
        for key, t in self.plan.host.items():
            self.host[key] = cuda.pagelocked_empty(t.shape, t.dtype)
        for graph, binds in self.plan.bindings.items():
            for name, key in binds.items():
                self.contexts[graph].set_tensor_address(name, int(self.dev[key]))
        self._cuda = cuda
        for _ in range(self.warmup):
            for graph in self.contexts:
                self.contexts[graph].execute_async_v3(self.stream.handle)
        self.stream.synchronize()

    def _deactivate(self) -> None:
        for buf in self.dev.values():
            free = getattr(buf, "free", None)
            if free is not None:
                free()
        self.dev.clear()
        self.host.clear()
        self.contexts.clear()
        self.engines.clear()

    # --- copies -------------------------------------------------------------------------------
    def _upload(self, key: str, arr: np.ndarray) -> None:
        host = self.host.get(key)
        if host is None:   # a path input fed directly (bench): stage through a temporary
            host = np.ascontiguousarray(arr, dtype=self.plan.device[key].dtype)
        else:
            np.copyto(host, arr, casting="same_kind")
        self._cuda.memcpy_htod_async(self.dev[key], host, self.stream)

    def _download(self, key: str) -> np.ndarray:
        host = self.host.get(key)
        if host is None:
            t = self.plan.device[key]
            host = self._cuda.pagelocked_empty(t.shape, t.dtype)
        self._cuda.memcpy_dtoh_async(host, self.dev[key], self.stream)
        return host

    def _run(self, graph: str) -> None:
        self.contexts[graph].execute_async_v3(self.stream.handle)

    # --- runner API ---------------------------------------------------------------------------
    def _infer(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        binds = self.plan.bindings[graph]
        for name, arr in feeds.items():
            self._upload(binds[name], arr)
        self._run(graph)
        outs = {t.name: self._download(binds[t.name]) for t in self.io[graph] if not t.is_input}
        self.stream.synchronize()
        return {k: np.array(v) for k, v in outs.items()}

    def _stem_gate(self, rgb: np.ndarray, depth: np.ndarray) -> StemResult:
        binds = self.plan.bindings[STEM_GATE]
        self._upload(binds["rgb"], rgb)
        self._upload(binds["depth"], depth)
        self._run(STEM_GATE)
        logits = self._download(binds["gate_logits"]) if "gate_logits" in binds else None
        self.stream.synchronize()
        # Features stay in the shared device buffers the path contexts already point at.
        return StemResult(None, None if logits is None else np.array(logits))

    def _run_path(self, k: int, features: Any) -> np.ndarray:
        graph = path_graph(k)
        if graph not in self.contexts:
            raise RunnerError(f"path {k} is not in this bundle (exported: {sorted(self.bundle.paths)})")
        self._run(graph)
        labels = self._download(self.plan.bindings[graph]["labels"])
        self.stream.synchronize()
        return np.array(labels)

    def memory_bytes(self) -> dict[str, int]:
        return {"io_buffers": self.plan.device_bytes}
