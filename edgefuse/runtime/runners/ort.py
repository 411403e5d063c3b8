"""ONNX Runtime runner: the default backend (CPU here; CUDA / TensorRT execution providers
when onnxruntime-gpu provides them).

The stem's features never round-trip through numpy: the stem/gate session writes them into
OrtValues through an IOBinding (on the GPU when a GPU provider runs the graph), and the path
session binds those same OrtValues as its inputs. Only `gate_logits` (N x P) and `labels`
(N x H x W) are copied to the host.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgefuse.errors import EdgefuseError
from edgefuse.runtime.runners.base import STEM_GATE, Runner, RunnerError, StemResult, path_graph

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
                 warmup: int = 2, spinning: bool = False) -> None:
        super().__init__(bundle)
        self.spinning = spinning
        self.providers_requested = providers
        self.threads = threads
        self.warmup = warmup
        self.sessions: dict[str, _Session] = {}
        self.providers: list[str] = []
        self._device = "cpu"

    # --- lifecycle ------------------------------------------------------------------------
    def _activate(self) -> None:
        import onnxruntime as ort

        self.providers = pick_providers(self.providers_requested, ort.get_available_providers())
        self._device = "cuda" if self.providers[0] in ("CUDAExecutionProvider",
                                                      "TensorrtExecutionProvider") else "cpu"
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
        # Each session owns a thread pool whose workers spin after a run. A frame runs two
        # sessions back to back (stem, then a path), so the stem's spinning workers steal
        # the cores from the path: measured 93 ms vs 27 ms per frame on 2 cores with
        # spinning on. Off by default; --spinning only helps a single-graph loop.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spinning else "0")
        files = {STEM_GATE: self.bundle.stem_gate}
        files.update({path_graph(k): f for k, f in sorted(self.bundle.paths.items())})
        for graph, file in files.items():
            try:
                sess = ort.InferenceSession(str(file), sess_options=opts, providers=self.providers)
            except Exception as exc:  # noqa: BLE001 - ORT raises its own types; name the file
                raise EdgefuseError(f"ONNX Runtime cannot load {file}: {exc}") from exc
            self.sessions[graph] = _Session(sess, tuple(o.name for o in sess.get_outputs()),
                                            tuple(i.name for i in sess.get_inputs()))
        self._warm()

    def _warm(self) -> None:
        # The first run of every graph allocates and picks kernels (10-40x slower than the
        # rest, REFERENCE.md): warm each one so no frame pays for it.
        zeros = {s.name: np.zeros(s.shape, s.dtype) for s in self.input_specs(STEM_GATE)}
        for _ in range(max(self.warmup, 1)):
            res = self._stem_gate(zeros["rgb"], zeros["depth"])
            for k in self.bundle.paths:
                self._run_path(k, res.features)

    def _deactivate(self) -> None:
        self.sessions.clear()

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
        return {}
