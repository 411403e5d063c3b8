"""Measured costs: multiply-adds (MAdds) of the stem, the gate and every path, counted with
`torch.utils.flop_counter` on each part's own forward at a declared input size.

Nothing here is a hard-coded constant (the official DynMM code hard-codes its path costs;
docs/models-and-training.md "DynMM"). flop_counter counts matrix ops (conv, matmul) as 2 FLOPs per multiply-add;
element-wise ops are not counted, as in thop and the DynMM paper.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from edgefuse.models.base import SegModel


@dataclass(frozen=True)
class PathCost:
    index: int
    decision: tuple[bool, ...]
    madds: float                 # one frame through this path: stem + gate + path
    depth_encoder_madds: float   # the depth encoder's share (stem part + depth stages run)
    path_madds: float            # the path graph alone (what path_<k> computes)


@dataclass(frozen=True)
class CostTable:
    model: str
    input_size: tuple[int, int]
    stem_madds: float
    gate_madds: float
    paths: tuple[PathCost, ...]

    def madds(self) -> list[float]:
        return [p.madds for p in self.paths]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["input_size"] = list(self.input_size)
        for p in d["paths"]:
            p["decision"] = list(p["decision"])
        return d


def _flops(fn: Callable[[], Any]) -> tuple[float, dict[str, float]]:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        fn()
    by_module = {k: float(sum(v.values())) for k, v in counter.get_flop_counts().items()}
    return float(counter.get_total_flops()), by_module


def count_madds(fn: Callable[[], Any]) -> float:
    """MAdds of calling fn() (FLOPs / 2)."""
    return _flops(fn)[0] / 2


def measure_costs(model: SegModel, input_size: tuple[int, int] | None = None) -> CostTable:
    """Measure the cost table of `model` at `input_size` (default: its config's) for one frame."""
    cfg = getattr(model, "config", None)
    h, w = input_size or cfg.input_size
    was_training = model.training
    model.eval()
    try:
        rgb = torch.full((1, 3, h, w), 128.0)
        depth = torch.full((1, 1, h, w), 2000.0)
        stem = count_madds(lambda: model.stem(rgb, depth))
        with torch.no_grad():
            feats = model.stem(rgb, depth)
        gate = count_madds(lambda: model.gate(feats)) if model.is_dynamic else 0.0
        depth_stem = count_madds(lambda: model.depth_stem(rgb, depth))
        paths = []
        for k in range(model.num_paths):
            pm = model.path_module(k)
            args = [feats[n] for n in pm.input_names]
            total, by_module = _flops(lambda: pm(*args))
            depth_part = sum(v for name, v in by_module.items()
                             if name.count(".") == 2 and name.split(".")[2].startswith("depth"))
            path = total / 2
            # Depth-encoder work a path runs inside a part not named 'depth*' (e.g. a
            # modality-level expert's own depth stem, models/modality.py).
            own_depth_stem = count_madds(lambda: model.path_depth_stem(k, rgb, depth))
            paths.append(PathCost(k, tuple(model.paths[k]), stem + gate + path,
                                  depth_stem + depth_part / 2 + own_depth_stem, path))
    finally:
        model.train(was_training)
    name = getattr(cfg, "name", "") or type(model).__name__
    return CostTable(name, (h, w), stem, gate, tuple(paths))
