"""Inference backends, chosen by name (`--backend`): dict dispatch, lazy imports, so that
`import edgefuse.runtime` needs neither onnxruntime-gpu, TensorRT, pycuda nor torch CUDA."""

from __future__ import annotations

import importlib
from typing import Any

from edgefuse.errors import ConfigError
from edgefuse.runtime.runners.base import STEM_GATE, IOSpec, Runner, RunnerError, StemResult, path_graph

# backend name -> (module, class)
RUNNERS: dict[str, tuple[str, str]] = {
    "ort": ("edgefuse.runtime.runners.ort", "OrtRunner"),
    "tensorrt": ("edgefuse.runtime.runners.tensorrt", "TensorrtRunner"),
    "torch": ("edgefuse.runtime.runners.torch", "TorchRunner"),
}


def runner_class(backend: str) -> type[Runner]:
    if backend not in RUNNERS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(RUNNERS)}")
    module, cls = RUNNERS[backend]
    return getattr(importlib.import_module(module), cls)


def make_runner(backend: str, bundle: Any, **options: Any) -> Runner:
    """A (not yet activated) runner for `bundle`; options go to the backend's constructor."""
    cls = runner_class(backend)
    try:
        return cls(bundle, **options)
    except TypeError as exc:
        raise ConfigError(f"backend {backend!r}: {exc}") from exc


__all__ = ["RUNNERS", "Runner", "RunnerError", "StemResult", "IOSpec", "STEM_GATE",
           "path_graph", "runner_class", "make_runner"]
