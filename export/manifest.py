"""The bundle manifest: the single source of truth at run time (docs/architecture.md "The bundle").

`manifest.json` is plain JSON, read with `json` (never eval) and validated against the
dataclasses below: unknown keys, wrong types, bad hashes and file names that could escape
the bundle folder are errors. Another tool (the runtime) reads this file, so the field
names are a contract (/tmp/contracts.md "Bundle"); add fields, never rename them, and bump
FORMAT_VERSION when an old reader could misread a new file.

Nothing here depends on time or the machine: exporting the same checkpoint twice gives a
byte-identical manifest (issue 4, determinism). TensorRT engine entries are the exception
by nature (they name the GPU they were built on).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from edgefuse.config import from_dict, to_dict
from edgefuse.errors import ConfigError, EdgefuseError

# 2 (issue 10): graphs keep their large initializers in one shared external-data file
# (`weights`), each distinct tensor once; int8 bundles record their quantisation target;
# TensorRT engines may be weight-stripped. Format-1 bundles (weights inside every graph)
# are still read: nothing in them means something else now.
FORMAT_VERSION = 2
MANIFEST_NAME = "manifest.json"
VERIFY_NAME = "verify.json"

_SHA256 = re.compile(r"[0-9a-f]{64}")
PRECISIONS = ("fp32", "fp16", "int8")
INT8_TARGETS = ("cpu", "tensorrt")
LABEL_DTYPES = ("int32", "int64")


class ManifestError(EdgefuseError):
    """manifest.json is missing, malformed, or describes a bundle that cannot be trusted."""


def check_relative_file(name: str, where: str) -> str:
    """A file named in a manifest must be a plain relative path inside the bundle: no
    absolute paths, no '..', no backslashes or drive letters (security: a manifest must
    never make the runtime read outside its folder)."""
    if not isinstance(name, str) or not name:
        raise ManifestError(f"{where}: file name must be a non-empty string, got {name!r}")
    p = PurePosixPath(name)
    if p.is_absolute() or "\\" in name or ":" in name or any(part in ("..", "") for part in name.split("/")):
        raise ManifestError(f"{where}: file {name!r} escapes the bundle folder; manifests may only "
                            "name files inside the bundle (relative paths without '..')")
    return name


def _check_sha(value: str, where: str) -> None:
    if not _SHA256.fullmatch(value or ""):
        raise ManifestError(f"{where}: sha256 {value!r} is not 64 lowercase hex digits")


@dataclass(frozen=True)
class TensorSpec:
    """Static shape and element type of one graph input or output."""

    name: str
    shape: tuple[int, ...]
    dtype: str  # numpy name: float32, int32, int64, ...


@dataclass(frozen=True)
class GraphEntry:
    """One ONNX graph in the bundle: stem_gate.onnx."""

    file: str
    sha256: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    tensors: tuple[TensorSpec, ...] = ()
    madds: float = 0.0   # the graph's own MAdds (measured on the PyTorch module)


@dataclass(frozen=True)
class PathEntry:
    """One exported path graph: `index` is the path's index in the model's path set (the
    gate's choice it was built for)."""

    index: int
    decision: tuple[bool, ...]
    madds: float                 # one frame through this path: stem + gate + path
    depth_encoder_madds: float   # the depth encoder's share of `madds`
    path_madds: float            # this graph alone
    file: str
    sha256: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...] = ("labels",)
    tensors: tuple[TensorSpec, ...] = ()


@dataclass(frozen=True)
class EngineEntry:
    """A backend-specific engine built from one of the bundle's ONNX graphs (TensorRT).

    Engines are not portable across TensorRT versions or GPUs: the runtime compares these
    fields with its own (`edgefuse.export.tensorrt_build.check_engine_compat`)."""

    graph: str                   # "stem_gate" or "path_<k>"
    backend: str                 # "tensorrt"
    precision: str               # fp32 | fp16 | int8
    file: str
    sha256: str
    onnx_file: str               # the graph it was built from (rebuild source)
    tensorrt_version: str = ""
    gpu_name: str = ""
    compute_capability: str = ""  # "8.7" (Jetson Orin), "9.0" (H100)
    workspace_bytes: int = 0
    timing_cache: str = ""       # file in the bundle: the builder's timing cache, shared by the engines
    timing_cache_sha256: str = ""  # of `timing_cache` once every engine was built ("": not recorded)
    # Weight-stripped plan (BuilderFlag.STRIP_PLAN): refitted at load from `onnx_file`, whose
    # weights live in the bundle's shared weights file (stored once, not once per engine).
    stripped: bool = False
    # Device memory the built engine needs, as the builder reported it (0: not recorded):
    # activations / scratch (ICudaEngine.device_memory_size_v2) and the weights it holds.
    device_memory_bytes: int = 0
    weights_bytes: int = 0


@dataclass(frozen=True)
class WeightsEntry:
    """The ONNX external-data file every graph's large initializers live in, each distinct
    tensor stored once (edgefuse.export.weights). Graphs may reference no other file."""

    file: str
    sha256: str
    size_bytes: int
    tensors: int              # distinct tensors stored
    referenced_bytes: int     # what one copy per graph would have stored


@dataclass(frozen=True)
class VerifyEntry:
    """Where the verification report is, and its headline (the full report: verify.json)."""

    file: str
    sha256: str
    passed: bool
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Manifest:
    format_version: int
    edgefuse_version: str
    model: dict[str, Any]        # ModelConfig.to_dict() (includes "name" and "family")
    weights_sha256: str | None   # None: randomly initialised registry model
    source: str                  # what the user exported (checkpoint, weights or model name)
    input_size: tuple[int, int]  # [H, W]; static shapes, one bundle per input size
    normalization: dict[str, Any]
    classes: tuple[str, ...]     # class index c <-> dataset label c + 1 (0 = void)
    palette: tuple[tuple[int, int, int], ...]   # index 0 = void, then one per class
    precision: str               # of the ONNX graphs: fp32 | int8 (Q/DQ nodes)
    engine_precision: str        # what engines built from them use: fp32 | fp16 | int8
                                 # (fp16 is a TensorRT build flag over the fp32 graphs)
    labels_dtype: str            # element type of every path's `labels` output
    logits: bool                 # path graphs also output `logits` (N x C x H x W)
    stem_gate: GraphEntry
    paths: tuple[PathEntry, ...]
    gate_to_path: tuple[int, ...]   # gate choice -> index of the exported path that serves it
    path_set: tuple[tuple[bool, ...], ...]   # every decision the gate can choose from
    engines: tuple[EngineEntry, ...] = ()
    verify: VerifyEntry | None = None
    calibration: dict[str, Any] = field(default_factory=dict)   # int8 only
    weights: WeightsEntry | None = None   # None: format 1, every graph embeds its weights
    int8_target: str = ""        # int8: the quantisation scheme's target, cpu | tensorrt
    # The model's operating point (edgefuse/models/operating_point.py): the cost bias chosen
    # for a target on tuning data. Already added to stem_gate's gate_logits, so a runtime's
    # plain argmax routes as the checkpoint did; recorded here to say which point it is.
    # {}: none (plain argmax; every bundle exported before this field).
    operating_point: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self)

    # --- lookups -------------------------------------------------------------------
    @property
    def int8_scheme(self) -> str:
        """cpu | tensorrt for an int8 bundle ("" otherwise); format-1 int8 bundles were all
        quantised for TensorRT (symmetric int8 activations)."""
        if self.precision != "int8":
            return ""
        return self.int8_target or "tensorrt"

    @property
    def dynamic(self) -> bool:
        return "gate_logits" in self.stem_gate.outputs

    def path(self, index: int) -> PathEntry:
        for p in self.paths:
            if p.index == index:
                return p
        raise KeyError(f"path {index} is not in this bundle (exported: {[p.index for p in self.paths]})")

    def path_for_choice(self, choice: int) -> PathEntry:
        """The exported path that serves gate choice `choice`."""
        return self.path(self.gate_to_path[choice])

    def files(self) -> list[tuple[str, str, str]]:
        """(role, file, sha256) of every file the manifest vouches for."""
        out = [("stem_gate", self.stem_gate.file, self.stem_gate.sha256)]
        out += [(f"path_{p.index}", p.file, p.sha256) for p in self.paths]
        out += [(f"engine {e.graph}", e.file, e.sha256) for e in self.engines]
        # The TensorRT timing cache is shared by the engines: listed once per (file, hash);
        # bundles written before its hash was recorded name it without one (not checked).
        caches = dict.fromkeys((e.timing_cache, e.timing_cache_sha256) for e in self.engines
                               if e.timing_cache and e.timing_cache_sha256)
        out += [("timing_cache", name, sha) for name, sha in caches]
        if self.weights is not None:
            out.append(("weights", self.weights.file, self.weights.sha256))
        if self.verify is not None:
            out.append(("verify", self.verify.file, self.verify.sha256))
        return out

    # --- (de)serialisation --------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return to_dict(self)

    def to_json(self) -> str:
        # Fixed key order (dataclass order) and indentation: byte-identical re-exports.
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        if not isinstance(data, dict):
            raise ManifestError(f"manifest must be a JSON object, got {type(data).__name__}")
        version = data.get("format_version")
        if not isinstance(version, int) or isinstance(version, bool):
            raise ManifestError(f"manifest has no integer format_version (got {version!r}); "
                                "is this an edgefuse bundle?")
        if version > FORMAT_VERSION:
            raise ManifestError(
                f"bundle format {version} is newer than this edgefuse reads ({FORMAT_VERSION}); "
                "upgrade edgefuse or re-export the bundle with this version")
        if version < 1:
            raise ManifestError(f"bundle format {version} is not valid (expected 1..{FORMAT_VERSION})")
        try:
            return from_dict(cls, data, where="manifest")
        except ManifestError:
            raise
        except ConfigError as exc:
            raise ManifestError(str(exc)) from exc

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ManifestError(f"manifest is not valid JSON: {exc}") from exc
        return cls.from_dict(data)


def validate(m: Manifest) -> None:
    """Cross-field checks the types cannot express (raises ManifestError)."""
    if m.precision not in PRECISIONS:
        raise ManifestError(f"manifest.precision {m.precision!r} is not one of {PRECISIONS}")
    if m.engine_precision not in PRECISIONS:
        raise ManifestError(f"manifest.engine_precision {m.engine_precision!r} is not one of {PRECISIONS}")
    if m.precision == "int8" and m.engine_precision != "int8":
        raise ManifestError("Q/DQ (int8) graphs build int8 engines only; engine_precision must be int8")
    if m.precision == "fp16":
        raise ManifestError("bundle graphs are fp32 or int8; fp16 is an engine_precision")
    if m.labels_dtype not in LABEL_DTYPES:
        raise ManifestError(f"manifest.labels_dtype {m.labels_dtype!r} is not one of {LABEL_DTYPES}")
    if len(m.input_size) != 2 or min(m.input_size) < 1:
        raise ManifestError(f"manifest.input_size {list(m.input_size)} is not [H, W]")
    if m.weights_sha256 is not None:
        _check_sha(m.weights_sha256, "manifest.weights_sha256")
    if len(m.palette) != len(m.classes) + 1:
        raise ManifestError(f"palette has {len(m.palette)} colours; expected void + {len(m.classes)} classes")
    if not m.paths:
        raise ManifestError("manifest lists no path graphs")
    graphs = [("stem_gate", m.stem_gate)] + [(f"paths[{p.index}]", p) for p in m.paths]
    for where, g in graphs:
        check_relative_file(g.file, f"manifest.{where}")
        _check_sha(g.sha256, f"manifest.{where}")
    for e in m.engines:
        for name in (e.file, e.onnx_file) + ((e.timing_cache,) if e.timing_cache else ()):
            check_relative_file(name, f"manifest.engines[{e.graph}]")
        _check_sha(e.sha256, f"manifest.engines[{e.graph}]")
        if e.timing_cache_sha256:
            if not e.timing_cache:
                raise ManifestError(f"manifest.engines[{e.graph}]: timing_cache_sha256 without a timing_cache file")
            _check_sha(e.timing_cache_sha256, f"manifest.engines[{e.graph}].timing_cache")
    if m.verify is not None:
        check_relative_file(m.verify.file, "manifest.verify")
        _check_sha(m.verify.sha256, "manifest.verify")
    if m.weights is not None:
        check_relative_file(m.weights.file, "manifest.weights")
        _check_sha(m.weights.sha256, "manifest.weights")
        if m.weights.size_bytes < 0:
            raise ManifestError(f"manifest.weights.size_bytes {m.weights.size_bytes} is negative")
    if m.precision == "int8" and m.int8_target not in ("",) + INT8_TARGETS:
        raise ManifestError(f"manifest.int8_target {m.int8_target!r} is not one of {INT8_TARGETS}")
    if m.precision != "int8" and m.int8_target:
        raise ManifestError(f"manifest.int8_target {m.int8_target!r} is set on a {m.precision} bundle")
    if any(e.stripped for e in m.engines) and m.weights is None:
        raise ManifestError("weight-stripped engines need the bundle's shared weights file (manifest.weights)")
    indices = [p.index for p in m.paths]
    if len(set(indices)) != len(indices):
        raise ManifestError(f"manifest lists path indices twice: {indices}")
    if len(m.gate_to_path) != len(m.path_set):
        raise ManifestError(f"gate_to_path has {len(m.gate_to_path)} entries for a gate with "
                            f"{len(m.path_set)} choices")
    missing = sorted(set(m.gate_to_path) - set(indices))
    if missing:
        raise ManifestError(f"gate_to_path sends gate choices to paths {missing} that the bundle "
                            f"does not contain (exported: {indices})")
    produced = set(m.stem_gate.outputs)
    for p in m.paths:
        if not 0 <= p.index < len(m.path_set) or tuple(m.path_set[p.index]) != tuple(p.decision):
            raise ManifestError(f"paths[{p.index}].decision {list(p.decision)} does not match "
                                "path_set at that index")
        absent = [n for n in p.inputs if n not in produced]
        if absent:
            raise ManifestError(f"path {p.index} consumes {absent}, which stem_gate does not output "
                                f"({sorted(produced)})")
        if "labels" not in p.outputs:
            raise ManifestError(f"path {p.index} has no 'labels' output")
    if len(m.path_set) > 1 and "gate_logits" not in m.stem_gate.outputs:
        raise ManifestError("a model with several gate choices needs a gate_logits output in stem_gate")
    if m.operating_point:
        bias = m.operating_point.get("gate_bias")
        if not isinstance(bias, list) or len(bias) != len(m.path_set):
            raise ManifestError(f"operating_point.gate_bias must list one bias per gate choice "
                                f"({len(m.path_set)}), got {bias!r}")


def read_manifest(bundle_dir: str | Path) -> Manifest:
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        raise ManifestError(f"{path} not found: {bundle_dir} is not an edgefuse bundle "
                            "(create one with `edgefuse export MODEL --out DIR`)")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ManifestError(f"cannot read {path}: {exc}") from exc
    try:
        return Manifest.from_json(text)
    except ManifestError as exc:
        raise ManifestError(f"{path}: {exc}") from exc


def write_manifest(bundle_dir: str | Path, manifest: Manifest) -> Path:
    path = Path(bundle_dir) / MANIFEST_NAME
    path.write_text(manifest.to_json(), encoding="utf-8")
    return path
