"""Where does a dynamic model's gate lose accuracy? Every path on every frame (issue 13).

`score_paths` runs the stem once per frame and then *every* path (or modality-level expert)
on it, keeping one confusion matrix per frame and path, and the gate's own choice. From
these, any per-frame selection rule ("policy") is scored exactly as `edgefuse eval` scores
the gate: summed confusion matrices -> mIoU, measured path MAdds -> mean MAdds.

- forced path k: every frame through path k (a static network of that cost);
- the gate: each frame through the gate's argmax path (what `model.infer` runs);
- the **oracle** at tolerance t: per frame, the cheapest path whose pixel accuracy is within t
  points of that frame's best path. t = 0 takes the frame's best path, a large t the
  cheapest path. Varying t draws the **oracle curve** (mIoU vs mean MAdds): what a gate that
  knew each frame's answers could reach at each cost.

The gate's *distance to the oracle curve* at its cost is the best oracle mIoU among curve
points that cost no more than the gate, minus the gate's mIoU (> 0: the gate is below it).
The *gate curve* is the gate under a cost bias on its raw logits (what the runtime's
--budget-ms does): the trade-off the gate itself offers. A model with an operating point
(models/operating_point.py, `edgefuse tune`) is deployed at one point of that curve; the
gate's choice here is that point (its bias applied), and the report marks it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

from edgefuse.eval.evaluate import (ProgressFn, _Tally, build_report, class_names_for, frame_batches,
                                    has_hard_flags, load_for_eval, prediction)
from edgefuse.eval.metrics import ConfusionMatrix
from edgefuse.errors import EdgefuseError
from edgefuse.models.base import SegModel

DEFAULT_TOLERANCE = 2.0   # points of pixel accuracy (the oracle)
# Tolerances (points) that draw the curve: fine where the oracle's choices change fast.
CURVE_TOLERANCES: tuple[float, ...] = tuple(
    [round(0.25 * i, 2) for i in range(21)] + [6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 50, 100])


@dataclass
class PathScores:
    """Every path's confusion matrix on every frame, and the gate's choice per frame."""

    cms: np.ndarray              # F x P x C x C counts (rows ground truth, columns prediction)
    gate: np.ndarray             # F: the gate's argmax path
    hard: np.ndarray | None      # F: frame flagged hard (None: the dataset flags none)
    costs: np.ndarray            # P: measured MAdds of one frame through each path
    names: list[str]             # class names
    dynamic: bool = True
    gate_logits: np.ndarray | None = None   # F x P, the gate's raw logits per frame (no bias)
    operating_point: dict[str, Any] | None = None   # the model's (OperatingPoint.to_dict), if any

    @property
    def frames(self) -> int:
        return int(self.cms.shape[0])

    @property
    def num_paths(self) -> int:
        return int(self.cms.shape[1])

    def pixel_acc(self) -> np.ndarray:
        """F x P pixel accuracy (NaN for a frame without labelled pixels)."""
        tp = np.trace(self.cms, axis1=2, axis2=3).astype(np.float64)
        total = self.cms.sum(axis=(2, 3)).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(total > 0, tp / total, np.nan)

    def save(self, path) -> None:
        """Keep the scores (numpy .npz) to analyse policies later without running the model."""
        extra = {} if self.hard is None else {"hard": self.hard}
        if self.gate_logits is not None:
            extra["gate_logits"] = self.gate_logits
        if self.operating_point is not None:
            extra["operating_point"] = np.asarray(json.dumps(self.operating_point))
        np.savez_compressed(path, cms=self.cms, gate=self.gate, costs=self.costs, names=np.asarray(self.names),
                            dynamic=np.asarray(self.dynamic), **extra)

    @classmethod
    def load(cls, path) -> "PathScores":
        with np.load(path, allow_pickle=False) as z:
            return cls(z["cms"], z["gate"], z["hard"] if "hard" in z else None, z["costs"],
                       [str(n) for n in z["names"]], bool(z["dynamic"]),
                       z["gate_logits"] if "gate_logits" in z else None,
                       json.loads(str(z["operating_point"])) if "operating_point" in z else None)

    def concat(self, other: "PathScores") -> "PathScores":
        """Frames of both (the same model scored on two splits, e.g. two tuning sets)."""
        if self.num_paths != other.num_paths or self.names != other.names:
            raise EdgefuseError("scores of different models or class sets cannot be pooled")
        hard = None if self.hard is None or other.hard is None else np.concatenate([self.hard, other.hard])
        logits = (None if self.gate_logits is None or other.gate_logits is None
                  else np.concatenate([self.gate_logits, other.gate_logits]))
        return PathScores(np.concatenate([self.cms, other.cms]), np.concatenate([self.gate, other.gate]), hard,
                          self.costs, self.names, self.dynamic, logits, self.operating_point)

    def subsets(self) -> dict[str, np.ndarray]:
        """Frame masks: 'all', and 'easy' / 'hard' where the dataset flags them."""
        out = {"all": np.ones(self.frames, dtype=bool)}
        if self.hard is not None:
            out.update(easy=~self.hard, hard=self.hard.copy())
        return out


@torch.no_grad()
def score_paths(model: SegModel, dataset, batch_size: int = 4, path_madds: Sequence[float] | None = None,
                progress: ProgressFn | None = None, device: torch.device | str = "cpu",
                input_size: tuple[int, int] | None = None) -> PathScores:
    """Run every path of `model` on every frame of `dataset` (see the module docstring)."""
    from edgefuse.models.costs import measure_costs

    was_training = model.training
    model.eval()
    names = class_names_for(model, dataset)
    costs = np.asarray(list(path_madds) if path_madds is not None else measure_costs(model).madds(), np.float64)
    if len(costs) != model.num_paths:
        raise ValueError(f"{len(costs)} path costs for a model with {model.num_paths} paths")
    cms: list[np.ndarray] = []
    gate: list[int] = []
    gate_logits: list[np.ndarray] = []
    hard: list[bool] = []
    try:
        for samples, idx, rgb, depth in frame_batches(dataset, batch_size, input_size, progress):
            feats = model.stem(rgb.to(device), depth.to(device))
            choice, logits = model.choose(feats)
            if logits is not None:
                gate_logits.extend(logits.float().cpu().numpy())
            per_path = [model.run_grouped(feats, torch.full_like(choice, k)) for k in range(model.num_paths)]
            for j, i in enumerate(idx):
                target = samples[i]["label"].to(device) - 1        # 0 void -> -1 ignored
                frame = np.empty((model.num_paths, len(names), len(names)), dtype=np.int64)
                for k, logits in enumerate(per_path):
                    cm = ConfusionMatrix(len(names))
                    cm.update(prediction(logits[j:j + 1], target), target)
                    frame[k] = cm.counts
                cms.append(frame)
                gate.append(int(choice[j]))
                hard.append(bool(samples[i].get("hard", False)))
    finally:
        model.train(was_training)
    if not cms:
        raise EdgefuseError("the dataset split has no frames to score")
    op = model.operating_point.to_dict() if model.operating_point is not None else None
    return PathScores(np.stack(cms), np.asarray(gate, dtype=np.int64),
                      np.asarray(hard, dtype=bool) if has_hard_flags(dataset) else None, costs, names,
                      model.is_dynamic, np.stack(gate_logits) if gate_logits else None, op)


def oracle_choice(scores: PathScores, tolerance: float) -> np.ndarray:
    """Per frame, the cheapest path whose pixel accuracy is within `tolerance` points of the
    frame's best path (ties: the lower index). A frame without labelled pixels takes the
    cheapest path."""
    acc = np.nan_to_num(scores.pixel_acc(), nan=0.0)
    ok = acc >= acc.max(axis=1, keepdims=True) - tolerance / 100.0 - 1e-12
    # Among acceptable paths the cheapest: rank paths by (cost, index) once.
    order = np.lexsort((np.arange(scores.num_paths), scores.costs))
    first = np.argmax(ok[:, order], axis=1)
    return order[first]


def policy_report(scores: PathScores, choice: np.ndarray) -> dict[str, Any]:
    """The `edgefuse eval` JSON report of sending frame f through path choice[f]."""
    choice = np.asarray(choice, dtype=np.int64)
    c, p = len(scores.names), scores.num_paths

    def tally(mask: np.ndarray) -> _Tally:
        t = _Tally(c, p)
        t.cm.counts += scores.cms[mask.nonzero()[0], choice[mask]].sum(axis=0)
        t.paths += np.bincount(choice[mask], minlength=p)
        return t

    masks = scores.subsets()
    subsets = {name: tally(m) for name, m in masks.items() if name != "all"}
    return build_report(tally(masks["all"]), subsets, scores.names, scores.costs.tolist(), scores.dynamic)


def _point(report: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {**extra, "miou": report["miou"], "mean_madds": report["mean_madds"], "path_ratio": report["path_ratio"],
            "subsets": {n: {"miou": s["miou"], "mean_madds": s["mean_madds"]} for n, s in report["subsets"].items()}}


def oracle_curve(scores: PathScores, tolerances: Sequence[float] = CURVE_TOLERANCES) -> list[dict[str, Any]]:
    """The oracle's (mIoU, mean MAdds) at each tolerance, in the order given."""
    return [_point(policy_report(scores, oracle_choice(scores, t)), tolerance=float(t)) for t in tolerances]


# Cost-bias strengths of the gate curve, in units of the gate's mean per-frame logit range.
GATE_BIASES: tuple[float, ...] = (-1.0, -0.5, -0.3, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.0)


def logit_spread(scores: PathScores) -> float:
    """The gate's mean per-frame logit range (max - min) on these frames: the unit of `bias`."""
    if scores.gate_logits is None:
        raise ValueError("these scores hold no gate logits")
    logits = scores.gate_logits.astype(np.float64)
    return float(np.mean(logits.max(axis=1) - logits.min(axis=1))) or 1.0


def strength_choice(scores: PathScores, strength: float) -> np.ndarray:
    """The gate's argmax after lowering each path's raw logit by `strength` x its cost share
    above the cheapest (models/operating_point.py; runtime/policy.py cost_bias)."""
    if scores.gate_logits is None:
        raise ValueError("these scores hold no gate logits")
    c = scores.costs
    share = (c - c.min()) / max(c.max() - c.min(), 1e-12)
    return np.argmax(scores.gate_logits.astype(np.float64) - strength * share[None, :], axis=1)


def biased_choice(scores: PathScores, bias: float) -> np.ndarray:
    """strength_choice with the strength in units of the gate's mean per-frame logit range
    (`bias`): what the runtime's --budget-ms bias does (runtime/policy.py). bias > 0 moves
    frames to cheaper paths, < 0 to costlier ones."""
    return strength_choice(scores, bias * logit_spread(scores))


def operating_bias(scores: PathScores) -> float | None:
    """The model's operating point as a `bias` of the gate curve (None: it has none)."""
    if scores.operating_point is None or scores.gate_logits is None:
        return None
    return float(scores.operating_point["strength"]) / logit_spread(scores)


def gate_curve(scores: PathScores, biases: Sequence[float] = GATE_BIASES) -> list[dict[str, Any]]:
    """The gate's own trade-off: (mIoU, mean MAdds) under each cost bias on its raw logits;
    with the model's operating point among them (marked `shipped`)."""
    if scores.gate_logits is None:
        return []
    shipped = operating_bias(scores)
    points = sorted(set(biases) | ({shipped} if shipped is not None else set()))
    return [_point(policy_report(scores, biased_choice(scores, b)), bias=float(b),
                   **({"shipped": True} if shipped is not None and b == shipped else {})) for b in points]


def oracle_miou_at(curve: Sequence[dict[str, Any]], madds: float) -> float | None:
    """The best oracle mIoU among curve points costing no more than `madds` (None if none does)."""
    ok = [p["miou"] for p in curve if p["mean_madds"] is not None and p["mean_madds"] <= madds * (1 + 1e-9)
          and p["miou"] is not None]
    return max(ok) if ok else None


def agreement(scores: PathScores, oracle: np.ndarray, tolerance: float) -> dict[str, dict[str, Any]]:
    """How the gate's choices compare with the oracle's, per subset of frames: the share where
    they agree exactly, where the gate's path is within the tolerance of the frame's best
    (good enough, if not the cheapest such), cheaper / costlier than the oracle's, and the
    mean pixel-accuracy points the gate's path is below the frame's best path."""
    acc = np.nan_to_num(scores.pixel_acc(), nan=0.0)
    best = acc.max(axis=1)
    rows = np.arange(scores.frames)
    gate_acc, oracle_acc = acc[rows, scores.gate], acc[rows, oracle]
    gate_cost, oracle_cost = scores.costs[scores.gate], scores.costs[oracle]
    out = {}
    for name, m in scores.subsets().items():
        n = int(m.sum())
        if not n:
            continue
        out[name] = {
            "frames": n,
            "exact": float(np.mean(scores.gate[m] == oracle[m])),
            "within_tolerance": float(np.mean(gate_acc[m] >= best[m] - tolerance / 100.0 - 1e-12)),
            "cheaper": float(np.mean(gate_cost[m] < oracle_cost[m])),
            "costlier": float(np.mean(gate_cost[m] > oracle_cost[m])),
            "gate_points_below_best": float(100 * np.mean(best[m] - gate_acc[m])),
            "oracle_points_below_best": float(100 * np.mean(best[m] - oracle_acc[m])),
        }
    return out


def choice_matrix(scores: PathScores, oracle: np.ndarray) -> list[list[int]]:
    """P x P frame counts: rows the oracle's path, columns the gate's."""
    p = scores.num_paths
    counts = np.bincount(oracle * p + scores.gate, minlength=p * p).reshape(p, p)
    return counts.tolist()


def oracle_report(scores: PathScores, tolerance: float = DEFAULT_TOLERANCE,
                  tolerances: Sequence[float] = CURVE_TOLERANCES) -> dict[str, Any]:
    """Everything `edgefuse eval --oracle` reports (JSON): the gate's and every forced path's
    eval reports, the oracle at `tolerance`, the oracle curve, agreement, distance."""
    if tolerance < 0:
        raise EdgefuseError(f"--tolerance {tolerance}: give points of pixel accuracy >= 0, e.g. 2")
    oracle = oracle_choice(scores, tolerance)
    gate = policy_report(scores, scores.gate)
    curve = oracle_curve(scores, sorted(set(tolerances) | {float(tolerance)}))
    at_cost = oracle_miou_at(curve, gate["mean_madds"])
    return {
        "tolerance": float(tolerance),
        "criterion": "pixel_acc",
        "frames": scores.frames,
        "costs": scores.costs.tolist(),
        "gate": gate,
        "forced": [policy_report(scores, np.full(scores.frames, k)) for k in range(scores.num_paths)],
        "oracle": policy_report(scores, oracle),
        "curve": curve,
        "gate_curve": gate_curve(scores),
        "operating_point": (None if scores.operating_point is None
                            else {**scores.operating_point, "bias": operating_bias(scores)}),
        "agreement": agreement(scores, oracle, tolerance),
        "choices": {"rows": "oracle path", "columns": "gate path", "counts": choice_matrix(scores, oracle)},
        "distance": {"gate_madds": gate["mean_madds"], "gate_miou": gate["miou"],
                     "oracle_miou_at_gate_cost": at_cost,
                     "gap": None if at_cost is None or gate["miou"] is None else at_cost - gate["miou"]},
    }


def oracle_checkpoint(spec: str, data_dir: str, split: str = "test", batch_size: int = 4,
                      progress: ProgressFn | None = None, input_size: tuple[int, int] | None = None,
                      tolerance: float = DEFAULT_TOLERANCE) -> dict[str, Any]:
    """`edgefuse eval SPEC --oracle`: load, score every path on every frame, report."""
    if tolerance < 0:
        raise EdgefuseError(f"--tolerance {tolerance}: give points of pixel accuracy >= 0, e.g. 2")
    model, dataset, costs = load_for_eval(spec, data_dir, split, input_size)
    if not model.is_dynamic:
        raise EdgefuseError(f"--oracle compares a dynamic model's paths; {spec} is static (one path). "
                            "Evaluate it without --oracle")
    scores = score_paths(model, dataset, batch_size, costs, progress=progress, input_size=input_size)
    return {"model": str(spec), "data": f"{data_dir}/{split}", "unit": path_unit(model),
            **oracle_report(scores, tolerance)}


def path_unit(model: SegModel) -> str:
    """What a 'path' is called for this model: modality-level DynMM chooses between experts."""
    from edgefuse.models.config import Family

    family = getattr(getattr(model, "config", None), "family", None)
    return "expert" if family is Family.MODALITY else "path"
