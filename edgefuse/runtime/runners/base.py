"""The runner interface (docs/architecture.md "Runners", Polygraphy's shape).

A runner serves one bundle: the stem/gate graph and every exported path graph.
  - construct cheaply (no engine, no device memory);
  - `activate()` loads sessions / engines and warms each one up;
  - `infer(graph, feeds)` runs one graph on numpy feeds, checked against the graph's
    declared inputs (names, shapes, dtypes), and returns numpy outputs (bench, tests);
  - `stem_gate(rgb, depth)` and `run_path(k, features)` are the per-frame fast path: the
    stem features stay in the backend's own form (ORT values, device buffers, tensors)
    between the two calls, and only the small `labels` map comes back to the host;
  - `with runner:` activates and releases.
"""

from __future__ import annotations

import abc
import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefuse.errors import EdgefuseError

log = logging.getLogger(__name__)

STEM_GATE = "stem_gate"


def path_graph(k: int) -> str:
    return f"path_{k}"


@dataclass(frozen=True)
class IOSpec:
    """A graph input as the runner expects it."""

    name: str
    shape: tuple[int, ...]
    dtype: str   # numpy dtype name


@dataclass
class StemResult:
    """Output of the stem/gate graph: backend-native features (opaque to the caller) and
    the gate logits on the host (None for a static bundle)."""

    features: Any
    gate_logits: np.ndarray | None


# The scheme each runtime takes: ONNX Runtime's CPU kernels run U8S8 (the cpu scheme);
# TensorRT, native or as ONNX Runtime's execution provider, accepts only symmetric Q/DQ.
_RUNTIME_TARGET = {("ort", "CPUExecutionProvider"): "cpu", ("ort", "TensorrtExecutionProvider"): "tensorrt",
                   ("tensorrt", None): "tensorrt"}
_MISMATCH = {
    ("tensorrt", "cpu"): "it was quantised for TensorRT (symmetric int8 activations), which ONNX Runtime's CPU "
                         "kernels run slower than the fp32 graphs; re-export it with --precision int8 "
                         "--int8-target cpu for this machine",
    ("cpu", "tensorrt"): "it was quantised for the CPU (uint8 activations with zero points), which TensorRT "
                         "rejects; re-export it with --precision int8 --int8-target tensorrt",
}


def int8_scheme_mismatch(manifest, backend: str, provider: str | None = None) -> str | None:
    """A one-line warning when an int8 bundle's scheme is not the one `backend` (and ORT
    `provider`) runs well; None when it matches, or when nothing is known about the pair."""
    scheme = getattr(manifest, "int8_scheme", "")
    wanted = _RUNTIME_TARGET.get((backend, provider if backend == "ort" else None))
    if not scheme or wanted is None or scheme == wanted:
        return None
    where = f"{backend} ({provider})" if provider else backend
    return f"int8 bundle for {scheme} run with {where}: {_MISMATCH[(scheme, wanted)]}"


def warn_int8_scheme(manifest: Any, backend: str, provider: str | None = None) -> None:
    """Say once, when a runner starts, that an int8 bundle was quantised for another runtime
    (issue 10: the scheme follows the target; `edgefuse run` and `bench` both start one)."""
    message = int8_scheme_mismatch(manifest, backend, provider)
    if message:
        log.warning("%s", message)


class RunnerError(EdgefuseError):
    """Bad feeds, or a runner used before activate()."""


def check_feeds(graph: str, specs: tuple[IOSpec, ...], feeds: dict[str, np.ndarray]) -> None:
    """Raise RunnerError naming every input of `graph` whose name, shape or dtype does not
    match its declared spec (an engine fed a wrong shape fails far less clearly)."""
    expected = {s.name: s for s in specs}
    problems = []
    missing = sorted(set(expected) - set(feeds))
    extra = sorted(set(feeds) - set(expected))
    if missing:
        problems.append(f"missing input(s) {missing}")
    if extra:
        problems.append(f"unknown input(s) {extra}")
    for name, spec in expected.items():
        if name not in feeds:
            continue
        arr = feeds[name]
        shape = tuple(getattr(arr, "shape", ()))
        dtype = str(getattr(arr, "dtype", type(arr).__name__))
        if shape != tuple(spec.shape):
            problems.append(f"'{name}' has shape {list(shape)}, expected {list(spec.shape)}")
        if dtype != spec.dtype:
            problems.append(f"'{name}' has dtype {dtype}, expected {spec.dtype}")
    if problems:
        raise RunnerError(f"{graph}: " + "; ".join(problems) +
                          f" (declared inputs: {[(s.name, list(s.shape), s.dtype) for s in specs]})")


class Runner(abc.ABC):
    """One backend serving one bundle (see the module docstring)."""

    name: str = ""

    def __init__(self, bundle: Any) -> None:
        self.bundle = bundle
        self.active = False
        # Seconds activate() took ("total_s") and, where a backend tells them apart, "load_s"
        # (sessions / engines) and "warmup_s" (issue 10: start-up is a cost a robot pays).
        self.startup: dict[str, float] = {}
        self._specs: dict[str, tuple[IOSpec, ...]] = {}   # per graph, read from the manifest once

    # --- lifecycle ------------------------------------------------------------------------
    def activate(self) -> Runner:
        if not self.active:
            t0 = time.perf_counter()
            self._activate()
            self.startup = {**self.startup, "total_s": time.perf_counter() - t0}
            self.active = True
        return self

    def deactivate(self) -> None:
        if self.active:
            self._deactivate()
            self.active = False

    def __enter__(self) -> Runner:
        return self.activate()

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def _require_active(self) -> None:
        if not self.active:
            raise RunnerError(f"{type(self).__name__} used before activate() (use `with runner:`)")

    # --- graphs -----------------------------------------------------------------------------
    def graphs(self) -> list[str]:
        """Names of the graphs this runner serves: stem_gate, then path_<k> in index order."""
        return [STEM_GATE] + [path_graph(p.index) for p in self.bundle.manifest.paths]

    def input_specs(self, graph: str) -> tuple[IOSpec, ...]:
        """Declared inputs of `graph`, from the manifest's tensor specs."""
        cached = self._specs.get(graph)
        if cached is None:
            cached = self._specs[graph] = self._read_specs(graph)
        return cached

    def _read_specs(self, graph: str) -> tuple[IOSpec, ...]:
        m = self.bundle.manifest
        entry = m.stem_gate if graph == STEM_GATE else m.path(int(graph.split("_", 1)[1]))
        tensors = {t.name: t for t in entry.tensors}
        specs = []
        for name in entry.inputs:
            t = tensors.get(name)
            if t is None:
                raise RunnerError(f"manifest gives no shape/dtype for input '{name}' of {graph}; "
                                  "re-export the bundle with this edgefuse version")
            specs.append(IOSpec(name, tuple(int(d) for d in t.shape), t.dtype))
        return tuple(specs)

    def infer(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run one graph on host arrays (checked against its declared inputs)."""
        self._require_active()
        if graph not in self.graphs():
            raise RunnerError(f"no graph {graph!r} in this bundle; graphs: {self.graphs()}")
        check_feeds(graph, self.input_specs(graph), feeds)
        return self._infer(graph, feeds)

    # --- per frame ----------------------------------------------------------------------------
    def stem_gate(self, rgb: np.ndarray, depth: np.ndarray) -> StemResult:
        """rgb float32 1x3xHxW (0..255), depth float32 1x1xHxW (mm) -> features + gate logits."""
        self._require_active()
        check_feeds(STEM_GATE, self.input_specs(STEM_GATE), {"rgb": rgb, "depth": depth})
        return self._stem_gate(rgb, depth)

    def run_path(self, k: int, features: Any) -> np.ndarray:
        """Labels (1 x H x W integer class map) of path k on the stem's features."""
        self._require_active()
        return self._run_path(k, features)

    def memory_bytes(self) -> dict[str, int]:
        """Engine memory the backend can report (file sizes are reported by bench)."""
        return {}

    # --- to implement --------------------------------------------------------------------------
    @abc.abstractmethod
    def _activate(self) -> None: ...

    @abc.abstractmethod
    def _deactivate(self) -> None: ...

    @abc.abstractmethod
    def _infer(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    @abc.abstractmethod
    def _stem_gate(self, rgb: np.ndarray, depth: np.ndarray) -> StemResult: ...

    @abc.abstractmethod
    def _run_path(self, k: int, features: Any) -> np.ndarray: ...
