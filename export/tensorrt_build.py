"""TensorRT engines from the bundle's ONNX graphs, and the rule that decides whether an
engine built elsewhere may run here.

The adapter is deliberately thin (it cannot run on the machines this is developed on):
ONNX parser -> network -> builder config (workspace limit, timing cache, precision) ->
`build_serialized_network`. It uses only the named-tensor API that TensorRT 10.3
(JetPack 6) and 11.x share; tests/export/test_tensorrt_names.py checks every `trt.X`
attribute used here against both versions' vocabularies.

Weights (issue 10): an engine embeds its weights, so F+1 engines would store the RGB encoder
F+1 times. Engines of a bundle with a shared weights file are built *weight-stripped*
(BuilderFlag.STRIP_PLAN + REFIT_IDENTICAL: the plan keeps no weights, and the builder may
still optimise as if they were constants) and refitted at load from the bundle's ONNX graph,
whose weights are that file (OnnxParserRefitter.refit_from_file; edgefuse.runtime.runners.
tensorrt). On the GPU each engine still holds its own copy (TensorRT shares no weights
between engines): the device memory each needs is recorded at build time and shown by
`edgefuse inspect`.

Precision (TensorRT 11 removed the weak-typing builder flags, 10.x deprecated calibrators):
  - int8: from the Q/DQ graphs of an int8 bundle, as a strongly typed network (the Q/DQ
    nodes carry the scales; no calibrator, no INT8 flag);
  - fp16: the FP16 builder flag over the fp32 graphs, TensorRT 10 only; TensorRT 11 needs
    an fp16 ONNX graph (ModelOpt AutoCast), which edgefuse does not write: refused;
  - fp32: no flag.

`check_engine_compat` is a pure function of the manifest entry and the runtime: engines
are not portable across TensorRT versions or GPU architectures (docs/architecture.md "The bundle").
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from edgefuse.errors import ConfigError, EdgefuseError, require
from edgefuse.export.bundle import sha256_file
from edgefuse.export.manifest import EngineEntry

ENGINE_DIR = "engines"
TIMING_CACHE = f"{ENGINE_DIR}/timing.cache"
_HINT = ("TensorRT itself comes from NVIDIA: JetPack on Jetson, `pip install tensorrt` on x86 "
         "with CUDA; or export with --backend onnx")


def require_tensorrt():
    """The tensorrt module, or a MissingExtraError naming the extra."""
    return require("tensorrt", "tensorrt", _HINT)


def trt_major(trt) -> int:
    return int(str(trt.__version__).split(".")[0])


# --- compatibility ------------------------------------------------------------------------
class Action(str, enum.Enum):
    OK = "ok"
    REBUILD = "rebuild"
    REFUSE = "refuse"


class OnMismatch(str, enum.Enum):
    REBUILD = "rebuild"   # rebuild the engine from the bundle's ONNX (minutes on a Jetson)
    REFUSE = "refuse"     # stop with a message saying what differs and how to fix it


def parse_on_mismatch(value: OnMismatch | str, flag: str = "--on-mismatch") -> OnMismatch:
    """`value` as an OnMismatch; a ConfigError naming `flag` and the choices otherwise
    (the CLI prints it without a traceback and exits 2)."""
    try:
        return OnMismatch(str(value).strip().lower() if not isinstance(value, OnMismatch) else value)
    except ValueError:
        raise ConfigError(f"{flag} {value!r} is not one of refuse, rebuild "
                          "(refuse: stop when an engine was built for another TensorRT or GPU; "
                          "rebuild: rebuild it from the bundle's ONNX)") from None


@dataclass(frozen=True)
class RuntimeInfo:
    tensorrt_version: str | None   # None: TensorRT not installed
    gpu_name: str | None
    compute_capability: str | None  # "8.7"


@dataclass(frozen=True)
class Compat:
    action: Action
    message: str


def _release(version: str) -> tuple[str, ...]:
    # Engines deserialise only with the TensorRT release that built them: major.minor.patch
    # (the fourth number is the build of the same release).
    return tuple(version.split(".")[:3])


def check_engine_compat(engine: EngineEntry, runtime: RuntimeInfo,
                        on_mismatch: OnMismatch | str = OnMismatch.REFUSE) -> Compat:
    """Decide whether `engine` (a manifest entry) can run on `runtime`: ok, rebuild from
    the bundle's ONNX, or refuse - with a message that says what differs and what to do."""
    policy = OnMismatch(on_mismatch)
    if engine.backend != "tensorrt":
        return Compat(Action.REFUSE, f"engine {engine.file} is for backend {engine.backend!r}, not tensorrt")
    if runtime.tensorrt_version is None:
        return Compat(Action.REFUSE, f"engine {engine.file} needs TensorRT, which is not installed here "
                                     "(install the 'tensorrt' extra on an NVIDIA machine, or run the "
                                     "bundle's ONNX graphs with --backend ort)")
    if runtime.gpu_name is None or runtime.compute_capability is None:
        return Compat(Action.REFUSE, "no NVIDIA GPU found: TensorRT engines need one")
    differences = []
    if _release(engine.tensorrt_version) != _release(runtime.tensorrt_version):
        differences.append(f"TensorRT {engine.tensorrt_version} built it, this is TensorRT {runtime.tensorrt_version}")
    if engine.compute_capability != runtime.compute_capability:
        differences.append(f"it was built for compute capability {engine.compute_capability} "
                           f"({engine.gpu_name}), this GPU is {runtime.compute_capability} ({runtime.gpu_name})")
    if not differences:
        if engine.gpu_name and engine.gpu_name != runtime.gpu_name:
            return Compat(Action.OK, f"engine {engine.file} was built on {engine.gpu_name}, running on "
                                     f"{runtime.gpu_name} (same architecture; tactics may be slower)")
        return Compat(Action.OK, f"engine {engine.file} matches this TensorRT and GPU")
    what = f"engine {engine.file} cannot run here: " + "; ".join(differences)
    if policy is OnMismatch.REFUSE:
        return Compat(Action.REFUSE, what + ". Rebuild the engines from the bundle's ONNX (`edgefuse run` / "
                                            "`edgefuse bench` --on-mismatch rebuild; runner option "
                                            "on_mismatch='rebuild'), re-export with --backend tensorrt on this "
                                            "machine, or run the ONNX graphs with ONNX Runtime")
    major = int(runtime.tensorrt_version.split(".")[0])
    if engine.precision == "fp16" and major >= 11:
        return Compat(Action.REFUSE, what + ". A rebuild is not possible: TensorRT 11 has no FP16 builder "
                                            "flag and the bundle's graphs are fp32; export an int8 or fp32 bundle")
    return Compat(Action.REBUILD, what + f". Rebuilding it from {engine.onnx_file}")


def detect_runtime() -> RuntimeInfo:
    """TensorRT version and GPU of this machine (None where absent); never raises."""
    try:
        import tensorrt as trt  # noqa: F401 - optional
        version: str | None = str(trt.__version__)
    except ImportError:
        version = None
    name, cc = gpu_info()
    return RuntimeInfo(version, name, cc)


def gpu_info() -> tuple[str | None, str | None]:
    """(name, "major.minor") of CUDA device 0, through torch or pycuda; (None, None) without one."""
    try:
        import torch

        if torch.cuda.is_available():
            major, minor = torch.cuda.get_device_capability(0)
            return torch.cuda.get_device_name(0), f"{major}.{minor}"
    except Exception:  # noqa: BLE001 - a broken CUDA install is "no GPU" here
        pass
    try:
        import pycuda.driver as cuda

        cuda.init()
        dev = cuda.Device(0)
        major, minor = dev.compute_capability()
        return dev.name(), f"{major}.{minor}"
    except Exception:  # noqa: BLE001
        return None, None


# --- building -------------------------------------------------------------------------------
def network_flags(trt, precision: str) -> int:
    """create_network flags: strongly typed for Q/DQ graphs on TensorRT 10 (in 11 every
    network is strongly typed and the flag is ignored); explicit batch is the default since 10."""
    if precision == "int8" and trt_major(trt) < 11:
        return 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    return 0


def check_precision(trt, precision: str) -> None:
    if precision == "fp16" and trt_major(trt) >= 11:
        raise EdgefuseError(
            f"TensorRT {trt.__version__} removed the FP16 builder flag (strong typing only) and edgefuse "
            "writes fp32 graphs; build fp16 engines with TensorRT 10 (JetPack 6), or export "
            "--precision int8 or fp32")


def build_engine(onnx_path: str | Path, precision: str, workspace_bytes: int,
                 timing_cache: bytes = b"", strip: bool = False) -> tuple[bytes, bytes]:
    """Serialized engine for one ONNX graph, and the updated timing cache. `strip`: a
    weight-stripped plan, to be refitted from the same graph's weights at load."""
    trt = require_tensorrt()
    check_precision(trt, precision)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(network_flags(trt, precision))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EdgefuseError(f"TensorRT's ONNX parser rejected {Path(onnx_path).name}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if precision == "fp16" and trt_major(trt) < 11:
        config.set_flag(trt.BuilderFlag.FP16)
    if strip:
        config.set_flag(trt.BuilderFlag.STRIP_PLAN)
        config.set_flag(trt.BuilderFlag.REFIT_IDENTICAL)
    cache = config.create_timing_cache(timing_cache)
    config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EdgefuseError(f"TensorRT could not build an engine from {Path(onnx_path).name} "
                            "(see the TensorRT log above; on a Jetson try a smaller --workspace)")
    return bytes(serialized), bytes(config.get_timing_cache().serialize())


def check_build_machine(precision: str) -> None:
    """Raise a clear error unless this machine can build `precision` engines: TensorRT
    installed (else the error names the extra), an NVIDIA GPU, a precision it supports."""
    trt = require_tensorrt()
    check_precision(trt, precision)
    name, _ = gpu_info()
    if name is None:
        raise EdgefuseError("--backend tensorrt needs an NVIDIA GPU; none was found (use --backend onnx)")


def engine_device_memory(plan: bytes) -> int:
    """Device memory (bytes) the engine needs beside its weights, as TensorRT reports it for
    the built plan (ICudaEngine.device_memory_size_v2: activations and scratch)."""
    trt = require_tensorrt()
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(plan)
    if engine is None:
        raise EdgefuseError("TensorRT could not deserialise the engine it just built")
    return int(engine.device_memory_size_v2)


def graph_weight_bytes(onnx_path: Path, precision: str) -> int:
    """Bytes of weights an engine built from `onnx_path` holds on the device: the graph's
    initializers (read without their data), float32 ones halved for an fp16 build. An
    estimate from the graph: TensorRT may fold or pad some of them."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    model = onnx.load(str(onnx_path), load_external_data=False)
    total = 0
    for t in model.graph.initializer:
        size = int(np.prod(t.dims, dtype=np.int64)) * np.dtype(helper.tensor_dtype_to_np_dtype(t.data_type)).itemsize
        total += size // 2 if precision == "fp16" and t.data_type == TensorProto.FLOAT else size
    return total


def build_engines(bundle_dir: Path, graphs: dict[str, str], precision: str, workspace_bytes: int,
                  progress: Callable[[str], None] | None = None, strip: bool = False) -> list[EngineEntry]:
    """One engine per graph ({"stem_gate": "stem_gate.onnx", "path_0": ...}) into
    `bundle_dir/engines/`, sharing one timing cache that is kept in the bundle. Every entry
    names the cache and records its sha256 (written once all graphs are built), so the
    bundle's integrity check covers the cache like the engines. `strip`: weight-stripped
    plans (the graphs' weights are the bundle's shared weights file), refitted at load.
    Each entry records the device memory the engine needs (activations, weights)."""
    trt = require_tensorrt()
    name, cc = gpu_info()
    if name is None or cc is None:
        raise EdgefuseError("--backend tensorrt needs an NVIDIA GPU; none was found (use --backend onnx)")
    (bundle_dir / ENGINE_DIR).mkdir(exist_ok=True)
    cache_path = bundle_dir / TIMING_CACHE
    cache = cache_path.read_bytes() if cache_path.is_file() else b""
    entries = []
    for graph, onnx_file in graphs.items():
        if progress:
            progress(f"tensorrt {graph}")
        engine, cache = build_engine(bundle_dir / onnx_file, precision, workspace_bytes, cache, strip=strip)
        rel = f"{ENGINE_DIR}/{graph}.{precision}.plan"
        (bundle_dir / rel).write_bytes(engine)
        entries.append(EngineEntry(graph=graph, backend="tensorrt", precision=precision, file=rel,
                                   sha256=sha256_file(bundle_dir / rel), onnx_file=onnx_file,
                                   tensorrt_version=str(trt.__version__), gpu_name=name, compute_capability=cc,
                                   workspace_bytes=int(workspace_bytes), timing_cache=TIMING_CACHE,
                                   stripped=strip, device_memory_bytes=engine_device_memory(engine),
                                   weights_bytes=graph_weight_bytes(bundle_dir / onnx_file, precision)))
    cache_path.write_bytes(cache)
    cache_sha = sha256_file(cache_path)
    return [replace(e, timing_cache_sha256=cache_sha) for e in entries]
