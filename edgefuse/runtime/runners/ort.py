"""ONNX Runtime runner: the default backend (CPU here; CUDA / TensorRT execution providers
when onnxruntime-gpu provides them).

A format-2 bundle's weights are mapped once and shared by every session (ort_memory.py):
the engine set's memory is one model plus what the depth stages add, not one model per path.

The stem's features never round-trip through numpy: the stem/gate session writes them into
OrtValues through an IOBinding (on the GPU when a GPU provider runs the graph), and the path
session binds those same OrtValues as its inputs. Only `gate_logits` (N x P) and `labels`
(N x H x W) are copied to the host.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefuse.errors import EdgefuseError
from edgefuse.runtime.runners.base import STEM_GATE, Runner, RunnerError, StemResult, path_graph, warn_int8_scheme

# Preference order when the user asks for "auto": the first available wins.
PROVIDER_ORDER = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
PROVIDER_ALIASES = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider",
                    "tensorrt": "TensorrtExecutionProvider", "trt": "TensorrtExecutionProvider"}


def pick_providers(requested: str, available: list[str]) -> list[str]:
    """Providers for a session: 'auto' = every available one in PROVIDER_ORDER; or a comma
    list of aliases (cpu, cuda, tensorrt) / full names, each of which must be available."""
    if requested == "auto":
        chosen = [p for p in PROVIDER_ORDER if p in available]
        return chosen or list(available)
    chosen = []
    for item in (s.strip() for s in requested.split(",") if s.strip()):
        full = PROVIDER_ALIASES.get(item.lower(), item)
        if full not in available:
            raise EdgefuseError(
                f"ONNX Runtime provider {item!r} is not available here (available: {available}); "
                "for CUDA / TensorRT install onnxruntime-gpu instead of onnxruntime")
        chosen.append(full)
    if "CPUExecutionProvider" not in chosen:
        chosen.append("CPUExecutionProvider")   # fallback for ops a GPU provider lacks
    return chosen


@dataclass
class _Session:
    session: Any
    outputs: tuple[str, ...]
    inputs: tuple[str, ...] = ()


class OrtRunner(Runner):
    name = "ort"

    def __init__(self, bundle: Any, providers: str = "auto", threads: int = 0,
                 warmup: int = 1, spinning: bool = False, share_weights: bool = True,
                 optimized_cache: bool = True) -> None:
        super().__init__(bundle)
        self.spinning = spinning
        self.share_weights = share_weights
        self.optimized_cache = optimized_cache   # CPU: layout-optimised graphs cached per machine
        self.shared: Any = None   # SharedWeights while active (format-2 bundles)
        self.providers_requested = providers
        self.threads = threads
        self.warmup = warmup
        self.sessions: dict[str, _Session] = {}
        self.providers: list[str] = []
        self._device = "cpu"

    # --- lifecycle ------------------------------------------------------------------------
    def _activate(self) -> None:
        import onnxruntime as ort

        t0 = time.perf_counter()
        self.providers = pick_providers(self.providers_requested, ort.get_available_providers())
        self._device = "cuda" if self.providers[0] in ("CUDAExecutionProvider",
                                                      "TensorrtExecutionProvider") else "cpu"
        files = {STEM_GATE: self.bundle.stem_gate}
        files.update({path_graph(k): f for k, f in sorted(self.bundle.paths.items())})
        level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        disabled: list[str] = []
        weights = getattr(self.bundle, "weights_file", None)
        if self.share_weights and weights is not None and self._device == "cpu":
            from edgefuse.runtime.runners.ort_memory import COPYING_OPTIMIZERS, SharedWeights

            cached = None
            if self.optimized_cache:
                from edgefuse.runtime.runners.ort_cache import optimized_graphs

                cached = optimized_graphs(self.bundle)
            if cached is not None:   # optimised once for this CPU: nothing left to transform
                files, level = cached.files, ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                self.shared = SharedWeights(cached.weights_file, cached.external)
            else:
                self.shared = SharedWeights(weights, self.bundle.external)
                disabled = list(COPYING_OPTIMIZERS)
        for graph, file in files.items():
            opts = self._options(ort, level)
            if self.shared is not None:
                self.shared.add_to(opts, graph)
            try:
                sess = ort.InferenceSession(str(file), sess_options=opts, providers=self.providers,
                                            disabled_optimizers=disabled)
            except Exception as exc:  # noqa: BLE001 - ORT raises its own types; name the file
                raise EdgefuseError(f"ONNX Runtime cannot load {file}: {exc}") from exc
            self.sessions[graph] = _Session(sess, tuple(o.name for o in sess.get_outputs()),
                                            tuple(i.name for i in sess.get_inputs()))
        t1 = time.perf_counter()
        warn_int8_scheme(self.bundle.manifest, "ort", self.providers[0])
        self._warm()
        self.startup = {"load_s": t1 - t0, "warmup_s": time.perf_counter() - t1}

    def _options(self, ort: Any, level: Any) -> Any:
        opts = ort.SessionOptions()
        opts.graph_optimization_level = level
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        # Each session owns a thread pool whose workers spin after a run. A frame runs two
        # sessions back to back (stem, then a path), so the stem's spinning workers steal
        # the cores from the path: a frame took several times longer with spinning on
        # (docs/export.md "Findings"). Off by default; --spinning only helps a single-graph loop.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        if self._device == "cpu":
            from edgefuse.runtime.runners.ort_memory import shared_cpu_arena

            shared_cpu_arena(opts)
        return opts

    def _warm(self) -> None:
        # The first run of every graph allocates and picks kernels (much slower than the rest
        # on a GPU, docs/architecture.md "Runners"): on a GPU provider every graph is warmed so
        # no frame pays for it. On the CPU a first run costs about the CPU time of any other
        # run (docs/export.md "Findings", warm-up on a CPU); what it does allocate comes
        # from the one shared arena, which the largest path sizes. So the CPU warms the stem
        # and the largest path only: a DynMM then starts about as fast as its static model
        # instead of paying a frame of every path (issue 10, start-up).
        zeros = {s.name: np.zeros(s.shape, s.dtype) for s in self.input_specs(STEM_GATE)}
        paths = sorted(self.bundle.paths)
        if self._device == "cpu":
            paths = [max(self.bundle.manifest.paths, key=lambda p: p.madds).index]
        for _ in range(max(self.warmup, 1)):
            res = self._stem_gate(zeros["rgb"], zeros["depth"])
            for k in paths:
                self._run_path(k, res.features)

    def _deactivate(self) -> None:
        self.sessions.clear()
        self.shared = None   # after the sessions: they read its memory

    # --- graphs -----------------------------------------------------------------------------
    def _infer(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        s = self.sessions[graph]
        outs = s.session.run(list(s.outputs), feeds)
        return dict(zip(s.outputs, outs))

    def _stem_gate(self, rgb: np.ndarray, depth: np.ndarray) -> StemResult:
        s = self.sessions[STEM_GATE]
        binding = s.session.io_binding()
        binding.bind_cpu_input("rgb", np.ascontiguousarray(rgb))
        binding.bind_cpu_input("depth", np.ascontiguousarray(depth))
        for name in s.outputs:
            # Features stay where the graph computed them; the gate logits come home.
            binding.bind_output(name, "cpu" if name == "gate_logits" else self._device)
        s.session.run_with_iobinding(binding)
        values = dict(zip(s.outputs, binding.get_outputs()))
        logits = values.pop("gate_logits", None)
        return StemResult(values, None if logits is None else logits.numpy())

    def _run_path(self, k: int, features: Any) -> np.ndarray:
        graph = path_graph(k)
        s = self.sessions.get(graph)
        if s is None:
            raise RunnerError(f"path {k} is not in this bundle (exported: {sorted(self.bundle.paths)})")
        binding = s.session.io_binding()
        for name in s.inputs:
            binding.bind_ortvalue_input(name, features[name])
        binding.bind_output("labels", "cpu")
        s.session.run_with_iobinding(binding)
        return binding.get_outputs()[s.outputs.index("labels")].numpy()

    def memory_bytes(self) -> dict[str, int]:
        if self.shared is None:
            return {}
        out = {"shared_weights_bytes": self.shared.nbytes}
        resident = self.shared.resident_bytes()
        if resident is not None:
            out["shared_weights_resident_bytes"] = resident
        return out
