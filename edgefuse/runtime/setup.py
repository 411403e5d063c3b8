"""One runtime set-up for every front end (docs/architecture.md "The per-frame step").

`edgefuse run`, `edgefuse bench` and the ROS node all need the same four things: the bundle
(hash-checked), a runner for it with the backend's options, the path policy, and the
per-frame processor. `RuntimeConfig` holds what chooses them, typed, and is built once from
CLI flags (`RunConfig` / `BenchConfig` extend it) or from ROS parameters
(`NodeConfig.runtime_config()`); `open_runtime(config)` opens them. What a front end adds on
top (frame source, sinks, timing loops, ROS topics) stays in that front end, and the sinks are
handed in by the caller: the runtime imports no front end.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from edgefuse.errors import ConfigError
from edgefuse.runtime.policy import PathCostInfo, PathPolicy, PolicyConfig
from edgefuse.runtime.processor import FrameProcessor
from edgefuse.runtime.sinks import Sink


def _ort_options(c: "RuntimeConfig") -> dict[str, Any]:
    return {"providers": c.providers, "share_weights": c.share_weights, **({"threads": c.threads} if c.threads else {})}


def _tensorrt_options(c: "RuntimeConfig") -> dict[str, Any]:
    return {"on_mismatch": c.on_mismatch}


def _torch_options(c: "RuntimeConfig") -> dict[str, Any]:
    return {"checkpoint": c.checkpoint} if c.checkpoint else {}


# backend -> the runner's constructor options it takes from the config (edgefuse.runtime.runners)
RUNNER_OPTIONS: dict[str, Callable[["RuntimeConfig"], dict[str, Any]]] = {
    "ort": _ort_options, "tensorrt": _tensorrt_options, "torch": _torch_options}


@dataclass
class RuntimeConfig:
    """What opens a bundle for per-frame inference. Each field is a flag of `edgefuse run` /
    `edgefuse bench` (`--backend`, `--threads`, ...) and a parameter of the ROS node."""

    bundle: str
    backend: str = "ort"                 # ort | tensorrt | torch
    threads: int = 0                     # ort: intra-op threads (0: ONNX Runtime's default)
    providers: str = "auto"              # ort: execution providers
    share_weights: bool = True           # ort: one copy of the weights for every session
    on_mismatch: str = "refuse"          # tensorrt: an engine built elsewhere: refuse | rebuild
    checkpoint: str | None = None        # torch: the exporting checkpoint
    budget_ms: float | None = None       # latency budget for stem/gate + path (None: none)
    min_depth_valid: float = 0.5         # below this valid-depth fraction: the RGB-only path

    def __post_init__(self) -> None:
        if self.backend not in RUNNER_OPTIONS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose one of {', '.join(RUNNER_OPTIONS)}")
        if self.threads < 0:
            raise ConfigError(f"--threads must be >= 0 (0: the backend's default), got {self.threads}")
        from edgefuse.export.tensorrt_build import parse_on_mismatch

        self.on_mismatch = parse_on_mismatch(self.on_mismatch).value
        self.policy_config()   # a bad budget or depth threshold fails here, before any loading

    def runner_options(self) -> dict[str, Any]:
        """Keyword options of `make_runner(self.backend, bundle, ...)`."""
        return RUNNER_OPTIONS[self.backend](self)

    def policy_config(self) -> PolicyConfig:
        return PolicyConfig(budget_ms=self.budget_ms, min_depth_valid=self.min_depth_valid)


# --- bundle -> policy ---------------------------------------------------------------------------
def open_bundle(path: str | Path) -> Any:
    """load_bundle with hash checks: a tampered file is refused with its name."""
    from edgefuse.export.bundle import load_bundle

    return load_bundle(path, check_hashes=True)


def path_costs(manifest: Any) -> tuple[PathCostInfo, ...]:
    from edgefuse.models.paths import PathSet

    return tuple(PathCostInfo(p.index, float(p.madds), float(p.depth_encoder_madds),
                              PathSet.depth_stages(tuple(p.decision))) for p in manifest.paths)


def make_policy(manifest: Any, config: PolicyConfig) -> PathPolicy:
    return PathPolicy(path_costs(manifest), tuple(manifest.gate_to_path), config)


@dataclass
class Runtime:
    """An opened bundle with its runner (not yet activated: use it as a context manager, or
    `with runtime.runner`) and its policy."""

    config: RuntimeConfig
    bundle: Any
    runner: Any
    policy: PathPolicy
    input_size: tuple[int, int] = field(init=False)
    palette: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        m = self.bundle.manifest
        self.input_size = tuple(int(s) for s in m.input_size)   # type: ignore[assignment]
        self.palette = np.asarray(m.palette, dtype=np.uint8)

    @property
    def manifest(self) -> Any:
        return self.bundle.manifest

    def processor(self, sinks: Sequence[Sink] = ()) -> FrameProcessor:
        """The per-frame step over this runtime, writing to the caller's sinks."""
        return FrameProcessor(self.input_size, self.runner, self.policy, sinks, self.config.min_depth_valid)


def open_runtime(config: RuntimeConfig, bundle: Any = None, runner: Any = None) -> Runtime:
    """Open `config.bundle` (unless a loaded `bundle` is given), make the runner (unless
    given: tests hand in fakes) and the policy."""
    from edgefuse.runtime.runners import make_runner

    if bundle is None:
        if not config.bundle:
            raise ConfigError("no bundle: give a folder written by `edgefuse export`")
        bundle = open_bundle(config.bundle)
    policy = make_policy(bundle.manifest, config.policy_config())
    if runner is None:
        runner = make_runner(config.backend, bundle, **config.runner_options())
    return Runtime(config, bundle, runner, policy)
