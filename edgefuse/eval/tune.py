"""Choosing a dynamic model's operating point for a stated target (`edgefuse tune`).

The model's gate is scored once on the tuning data with every path on every frame
(edgefuse.eval.oracle.score_paths); then every cost-bias strength on a fine grid is a
re-scoring of stored confusion matrices (no network runs), and the target picks one:

- `match:SPEC[+P]`: at least SPEC's mIoU on the same frames (+ P points of margin) at the
  fewest mean MAdds (SPEC: a checkpoint or shipped weights, e.g. the static model the
  dynamic one replaces: `match:esanet-tiny-synth`);
- `miou:X`: mIoU >= X % at the fewest mean MAdds;
- `full:D`: within D mIoU points of the model's own full (costliest) path at the fewest MAdds;
- `madds:F`: the best mIoU at mean MAdds <= F x the full path's;
- `madds:F@P`: the same bound held on P % of splits like the tuning data's: a dynamic model's
  cost depends on its frames (a split with more hard frames fuses more), so the mean over
  `SPLIT_FRAMES`-frame resamples of the tuning frames (bootstrap) must stay <= F x the full
  path's in P % of them. On the shipped models, chosen on 400 frames, a fresh 200-frame split
  with 53% hard frames took 0.6-0.9 points of ESANet's MAdds more than the tuning mean.

A target no strength reaches takes the strength of the best mIoU and says so (`met` false).
The result is a models/operating_point.OperatingPoint, written into a copy of the checkpoint.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from edgefuse.errors import EdgefuseError
from edgefuse.eval.oracle import PathScores, logit_spread, policy_report, strength_choice
from edgefuse.models.operating_point import OperatingPoint

# Strengths tried, in units of the gate's mean logit range on the tuning frames: from
# "every frame one path costlier" to "nearly always the cheapest".
GRID = tuple(round(x, 3) for x in np.arange(-1.0, 3.0 + 1e-9, 0.01))

TARGET_HELP = ("match:SPEC[+POINTS] (>= SPEC's mIoU on the same frames, fewest MAdds), miou:X, "
               "full:D (within D points of the model's full path, fewest MAdds), madds:F[@P] (best mIoU at "
               "<= F x the full path's MAdds; @P: on P% of resampled splits, e.g. madds:0.78@95)")
# madds:F@P: resampled splits of this many frames (a test split of `edgefuse data synth`
# defaults; about 7 s of a 30 Hz camera), this many resamples, a fixed seed (the same choice
# on every run).
SPLIT_FRAMES = 200
RESAMPLES = 1000


@dataclass(frozen=True)
class Target:
    kind: str              # match | miou | full | madds
    value: float           # margin points (match), mIoU % (miou), points (full), share (madds)
    spec: str = ""         # match: the reference model
    confidence: float | None = None   # madds@P: the share of resampled splits within the bound

    @classmethod
    def parse(cls, text: str) -> Target:
        kind, _, arg = text.partition(":")
        try:
            if kind == "match" and arg:
                m = re.fullmatch(r"(.+?)(?:\+([0-9.]+))?", arg)
                assert m is not None
                return cls("match", float(m.group(2) or 0.0), m.group(1))
            if kind == "madds" and "@" in arg:
                share, _, pct = arg.partition("@")
                value, conf = float(share), float(pct) / 100
                if not 0 < value <= 1 or not 0 < conf < 1:
                    raise ValueError
                return cls(kind, value, confidence=conf)
            if kind in ("miou", "full", "madds") and arg:
                value = float(arg)
                if kind == "madds" and not 0 < value <= 1:
                    raise ValueError
                if value < 0:
                    raise ValueError
                return cls(kind, value)
        except ValueError:
            pass
        raise EdgefuseError(f"--target {text!r} is not a target; give one of {TARGET_HELP}")

    def __str__(self) -> str:
        if self.kind == "match":
            return f"match:{self.spec}" + (f"+{self.value:g}" if self.value else "")
        if self.confidence is not None:
            return f"{self.kind}:{self.value:g}@{100 * self.confidence:g}"
        return f"{self.kind}:{self.value:g}"


def strength_curve(scores: PathScores, grid: Sequence[float] = GRID,
                   confidence: float | None = None) -> list[dict[str, Any]]:
    """(strength, bias, mIoU, mean MAdds) of the gate at each bias of `grid` (spread units);
    with `confidence`, also `madds_bound`: that quantile of the mean MAdds over RESAMPLES
    resampled splits of SPLIT_FRAMES frames (the same resamples at every bias)."""
    spread = logit_spread(scores)
    picks = None
    if confidence is not None:
        picks = np.random.default_rng(0).integers(0, scores.frames, (RESAMPLES, SPLIT_FRAMES))
    out = []
    for b in grid:
        choice = strength_choice(scores, b * spread)
        rep = policy_report(scores, choice)
        point = {"bias": float(b), "strength": float(b * spread), "miou": rep["miou"],
                 "mean_madds": rep["mean_madds"], "path_ratio": rep["path_ratio"]}
        if picks is not None:
            point["madds_bound"] = float(np.quantile(scores.costs[choice][picks].mean(axis=1), confidence))
        out.append(point)
    return out


def choose(curve: list[dict[str, Any]], target: Target, full: dict[str, Any],
           reference_miou: float | None = None) -> tuple[dict[str, Any], bool, float | None]:
    """The curve point `target` picks, whether it met the target, and the mIoU bar it had to
    clear (None for 'madds'). `full`: the full path's report on the same frames."""
    pts = [p for p in curve if p["miou"] is not None]
    if not pts:
        raise EdgefuseError("the tuning data has no labelled pixels to score")
    best = max(pts, key=lambda p: (p["miou"], -p["mean_madds"]))
    if target.kind == "madds":
        key = "mean_madds" if target.confidence is None else "madds_bound"
        if any(key not in p for p in pts):
            raise ValueError(f"target {target}: score the curve with strength_curve(..., confidence=...)")
        ok = [p for p in pts if p[key] <= target.value * full["mean_madds"] * (1 + 1e-9)]
        if not ok:
            return min(pts, key=lambda p: (p["mean_madds"], -p["miou"])), False, None
        return max(ok, key=lambda p: (p["miou"], -p["mean_madds"])), True, None
    bar = {"match": lambda: (reference_miou or 0.0) + target.value / 100,
           "miou": lambda: target.value / 100,
           "full": lambda: full["miou"] - target.value / 100}[target.kind]()
    ok = [p for p in pts if p["miou"] >= bar - 1e-12]
    if not ok:
        return best, False, bar
    return min(ok, key=lambda p: (p["mean_madds"], -p["miou"])), True, bar


def pooled_scores(model, datasets: Sequence, batch_size: int = 4) -> PathScores:
    """score_paths over several splits, pooled (one frame set)."""
    from edgefuse.eval.oracle import score_paths

    scores = None
    for ds in datasets:
        s = score_paths(model, ds, batch_size)
        scores = s if scores is None else scores.concat(s)
    assert scores is not None
    return scores


def tune(model, datasets: Sequence, target: Target, data_label: str, batch_size: int = 4,
         reference=None) -> tuple[OperatingPoint, dict[str, Any]]:
    """Choose `model`'s operating point on `datasets` for `target`. `reference`: the loaded
    model of a 'match' target. Returns the point and a report (curve, choice, reference)."""
    if not model.is_dynamic:
        raise EdgefuseError("tune chooses a dynamic model's cost bias; this model is static (one path)")
    scores = pooled_scores(model, datasets, batch_size)
    if scores.gate_logits is None:
        raise EdgefuseError("the model's gate produced no logits to bias")
    full = policy_report(scores, np.full(scores.frames, int(np.argmax(scores.costs))))
    ref = None
    if target.kind == "match":
        if reference is None:
            raise EdgefuseError(f"--target {target}: the reference model is needed")
        rs = pooled_scores(reference, datasets, batch_size)
        ref = policy_report(rs, np.zeros(rs.frames, dtype=np.int64))
    curve = strength_curve(scores, confidence=target.confidence)
    point, met, bar = choose(curve, target, full, ref["miou"] if ref else None)
    info = {"target": str(target), "met": met, "miou_bar": bar, "frames": scores.frames,
            "miou": point["miou"], "mean_madds": point["mean_madds"], "path_ratio": point["path_ratio"],
            "full_path": {"miou": full["miou"], "mean_madds": full["mean_madds"]},
            "reference": None if ref is None else {"spec": target.spec, "miou": ref["miou"],
                                                   "mean_madds": ref["mean_madds"]}}
    if "madds_bound" in point:
        info["madds_bound"] = {"madds": point["madds_bound"], "confidence": target.confidence,
                               "split_frames": SPLIT_FRAMES, "resamples": RESAMPLES}
    op = OperatingPoint.from_strength(point["strength"], scores.costs.tolist(), target=str(target),
                                      data=data_label, scores=info)
    return op, {**info, "strength": point["strength"], "bias": point["bias"], "curve": curve}


def write_checkpoint(source: str | Path, out: str | Path, op: OperatingPoint, command: str = "") -> Path:
    """A copy of checkpoint `source` (file or shipped weights name) with `op` in its metadata.
    The tensors are copied as stored (same dtype, same weights hash)."""
    from edgefuse.checkpoint import _read_safetensors, load_model, save_checkpoint, shipped_weights

    out = Path(out)
    if out.suffix != ".safetensors":
        raise EdgefuseError(f"--out {out}: give a .safetensors file name")
    if out.is_dir():
        raise EdgefuseError(f"--out {out} is a folder; give a .safetensors file name")
    path = Path(str(source))
    if not path.is_file():
        path = shipped_weights().get(str(source), path)
    if path.suffix != ".safetensors":   # a .pt checkpoint: rewritten as safetensors
        loaded = load_model(source)
        loaded.model.set_operating_point(op)
        return save_checkpoint(out, loaded.model, {**loaded.meta, "operating_point": op.to_dict(),
                                                   "tuned": {"from": str(source), "command": command}})
    from safetensors.torch import save_file

    state, config, meta = _read_safetensors(path)
    meta = {**meta, "operating_point": op.to_dict(), "tuned": {"from": str(source), "command": command}}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    save_file({k: v.contiguous() for k, v in state.items()}, str(tmp),
              metadata={"edgefuse_config": json.dumps(config), "edgefuse_meta": json.dumps(meta)})
    tmp.replace(out)
    return out
