"""PyTorch runner: the reference backend, from the checkpoint the bundle was exported from.

It runs the same split as the ONNX graphs (`stem_gate_module`, `path_module(k)`), so its
labels are directly comparable. On a CUDA device each graph is captured once in a CUDA
graph at activate() and replayed per frame: static input buffers are filled with
`copy_`, the stem's static outputs are the paths' static inputs (nothing is copied
between them), and only labels come back to the host.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgefuse.errors import EdgefuseError
from edgefuse.runtime.runners.base import STEM_GATE, Runner, RunnerError, StemResult, path_graph


def labels_of(logits: Any) -> Any:
    """Per-pixel argmax over the classes (N x C x H x W -> N x H x W int32), first maximum on
    ties, as `torch.argmax`. On a CPU a running maximum over the channels, which reads each
    class plane once and vectorises across pixels: markedly faster than the strided reduction
    of `torch.argmax(dim=1)` for 40 classes at 480x640 (issue 10), which made the
    torch backend's frame look slower than the official DynMM forward that stops at logits
    (issue 10). NaN logits never win here (they do in torch.argmax). On a GPU `torch.argmax`
    is one kernel and stays."""
    import torch

    if logits.device.type != "cpu" or logits.shape[1] < 2:
        return logits.argmax(dim=1).to(torch.int32)
    best = logits[:, 0]
    index = torch.zeros(best.shape, dtype=torch.int32, device=logits.device)
    for c in range(1, logits.shape[1]):
        plane = logits[:, c]
        better = plane > best
        best = torch.where(better, plane, best)
        index.masked_fill_(better, c)
    return index


class TorchRunner(Runner):
    name = "torch"

    def __init__(self, bundle: Any, checkpoint: str | None = None, device: str = "auto",
                 cuda_graphs: bool = True, warmup: int = 2) -> None:
        super().__init__(bundle)
        self.checkpoint = checkpoint
        self.device_requested = device
        self.cuda_graphs = cuda_graphs
        self.warmup = warmup
        self.stem_module: Any = None
        self.path_modules: dict[int, Any] = {}
        self.graphs_captured: dict[str, Any] = {}
        self._static: dict[str, Any] = {}

    def _load(self) -> Any:
        from edgefuse.checkpoint import load_model

        from pathlib import Path

        from edgefuse.checkpoint import shipped_weights

        m = self.bundle.manifest
        spec = self.checkpoint or m.source
        if self.checkpoint is None and Path(spec).suffix and not Path(spec).is_file() \
                and spec not in shipped_weights():
            # Bundles record only a checkpoint's file name (never where it lived).
            raise EdgefuseError(f"the bundle was exported from checkpoint {spec!r}, which is not here; "
                                "pass its path with --checkpoint for the torch backend")
        loaded = load_model(spec, input_size=tuple(m.input_size))
        if m.weights_sha256 is not None and loaded.weights_sha256 != m.weights_sha256:
            raise EdgefuseError(
                f"the torch backend loaded {spec!r}, whose weights (sha256 "
                f"{(loaded.weights_sha256 or 'random')[:12]}...) are not the ones the bundle was "
                f"exported from ({m.weights_sha256[:12]}...); pass the exporting checkpoint with "
                "--checkpoint")
        if m.weights_sha256 is None:
            # A randomly initialised registry model cannot be rebuilt bit for bit: the torch
            # backend then only measures speed, its labels differ from the bundle's.
            import warnings

            warnings.warn(f"bundle {self.bundle.root} was exported from a randomly initialised "
                          "model; the torch backend's outputs will not match it", stacklevel=2)
        # The bundle's operating point, not the checkpoint's (the same weights may carry
        # another): the gate logits must be the ONNX graph's (export/manifest.py).
        if loaded.model.is_dynamic:
            from edgefuse.models.operating_point import OperatingPoint

            op = getattr(m, "operating_point", None) or None
            loaded.model.set_operating_point(
                None if op is None else OperatingPoint.from_dict(op, loaded.model.num_paths, "bundle manifest"))
        return loaded.model

    def _activate(self) -> None:
        import torch

        device = self.device_requested
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        model = self._load().to(self.device).eval()
        self.stem_module = model.stem_gate_module().eval()
        self.output_names = self.stem_module.output_names
        self.path_modules = {k: model.path_module(k).eval() for k in self.bundle.paths}
        h, w = self.bundle.manifest.input_size
        self._static["rgb"] = torch.zeros(1, 3, h, w, device=self.device)
        self._static["depth"] = torch.zeros(1, 1, h, w, device=self.device)
        self._pinned: dict[str, Any] = {}
        if self.device.type == "cuda":
            # Page-locked staging buffers: host<->device copies run at full bus speed and
            # asynchronously (a 480x640 frame is 4.9 MB of float32 up, 1.2 MB of labels down).
            self._pinned = {"rgb": torch.empty(1, 3, h, w, pin_memory=True),
                            "depth": torch.empty(1, 1, h, w, pin_memory=True),
                            "labels": torch.empty(1, h, w, dtype=torch.int32, pin_memory=True)}
        if self.device.type == "cuda" and self.cuda_graphs:
            self._capture()
        else:
            with torch.inference_mode():
                for _ in range(self.warmup):
                    feats = self._eager_stem(self._static["rgb"], self._static["depth"])
                    for k in self.path_modules:
                        self._eager_path(k, feats)

    def _capture(self) -> None:
        """Capture stem_gate and each path once (after warm-up on a side stream, as the
        PyTorch CUDA-graph docs require), sharing the stem's output tensors."""
        import torch

        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.inference_mode(), torch.cuda.stream(side):
            for _ in range(max(self.warmup, 3)):
                feats = self._eager_stem(self._static["rgb"], self._static["depth"])
                for k in self.path_modules:
                    self._eager_path(k, feats)
        torch.cuda.current_stream().wait_stream(side)
        with torch.inference_mode():
            g = torch.cuda.CUDAGraph()
            with torch.cuda.graph(g):
                outs = self.stem_module(self._static["rgb"], self._static["depth"])
            self.graphs_captured[STEM_GATE] = g
            self._static["stem_out"] = dict(zip(self.output_names, outs))
            for k, module in self.path_modules.items():
                g = torch.cuda.CUDAGraph()
                with torch.cuda.graph(g):
                    labels = self._eager_path(k, self._static["stem_out"])
                self.graphs_captured[path_graph(k)] = g
                self._static[f"labels_{k}"] = labels

    def _deactivate(self) -> None:
        self.graphs_captured.clear()
        self._static.clear()
        self._pinned = {}
        self.path_modules.clear()
        self.stem_module = None

    # --- eager pieces -------------------------------------------------------------------------
    def _eager_stem(self, rgb: Any, depth: Any) -> dict[str, Any]:
        return dict(zip(self.output_names, self.stem_module(rgb, depth)))

    def _eager_path(self, k: int, feats: dict[str, Any]) -> Any:
        module = self.path_modules[k]
        return labels_of(module(*(feats[n] for n in module.input_names)))   # the bundle's int32 labels

    # --- runner API ---------------------------------------------------------------------------
    def _to_host(self, t: Any) -> np.ndarray:
        return t.detach().cpu().numpy()

    def _upload(self, name: str, arr: np.ndarray) -> None:
        import torch

        src = torch.from_numpy(arr)
        if self._pinned:
            self._pinned[name].copy_(src)
            src = self._pinned[name]
        self._static[name].copy_(src, non_blocking=True)

    def _labels_to_host(self, labels: Any) -> np.ndarray:
        import torch

        if not self._pinned:
            return self._to_host(labels)
        host = self._pinned["labels"]
        host.copy_(labels, non_blocking=True)
        torch.cuda.current_stream().synchronize()
        return host.numpy().copy()   # the pinned buffer is reused by the next frame

    def _infer(self, graph: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.inference_mode():
            tensors = {n: torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for n, a in feeds.items()}
            if graph == STEM_GATE:
                return {n: self._to_host(t) for n, t in self._eager_stem(tensors["rgb"], tensors["depth"]).items()}
            k = int(graph.split("_", 1)[1])
            return {"labels": self._to_host(self._eager_path(k, tensors))}

    def _stem_gate(self, rgb: np.ndarray, depth: np.ndarray) -> StemResult:
        import torch

        with torch.inference_mode():
            self._upload("rgb", rgb)
            self._upload("depth", depth)
            if STEM_GATE in self.graphs_captured:
                self.graphs_captured[STEM_GATE].replay()
                feats = self._static["stem_out"]
            else:
                feats = self._eager_stem(self._static["rgb"], self._static["depth"])
            logits = feats.get("gate_logits")
            return StemResult(feats, None if logits is None else self._to_host(logits))

    def _run_path(self, k: int, features: Any) -> np.ndarray:
        import torch

        if k not in self.path_modules:
            raise RunnerError(f"path {k} is not in this bundle (exported: {sorted(self.bundle.paths)})")
        with torch.inference_mode():
            graph = self.graphs_captured.get(path_graph(k))
            if graph is not None:
                graph.replay()
                return self._labels_to_host(self._static[f"labels_{k}"])
            return self._labels_to_host(self._eager_path(k, features))
