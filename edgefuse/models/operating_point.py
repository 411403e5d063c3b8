"""A dynamic model's operating point: the cost bias added to its gate logits before the argmax.

The bias is the runtime budget's (edgefuse/runtime/policy.py `cost_bias`): each path's logit
is lowered by `strength` x its cost share above the cheapest path, (c - c_min) / (c_max -
c_min), so strength > 0 moves frames to cheaper paths and < 0 to costlier ones. A supervised
gate regresses error + lambda x cost share, so a strength is the same as moving lambda after
training (benchmarks/lambda_sweep.py --shift-to): one mechanism, three uses.

The strength is chosen for a stated target on a tuning split (`edgefuse tune`, docs/
dynamic-vs-static.md), stored in the checkpoint's metadata (`operating_point`), applied by
`SegModel.choose` (eval, `model.infer`) and baked into the exported stem/gate graph's
`gate_logits` (the runtime's argmax sees it with no change; the manifest records it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Sequence

from edgefuse.errors import EdgefuseError


def cost_share(costs: Sequence[float]) -> list[float]:
    """Each path's cost above the cheapest, as a share of the span (0 = cheapest, 1 = costliest)."""
    lo, hi = min(costs), max(costs)
    span = hi - lo
    return [0.0 if span <= 0 else (c - lo) / span for c in costs]


@dataclass(frozen=True)
class OperatingPoint:
    """`gate_bias` (one logit offset per path, = -strength x cost share) is what is applied;
    the rest says where it came from (target, data, what it scored there)."""

    strength: float                      # logits the costliest path is lowered by
    gate_bias: tuple[float, ...]         # per path, added to the gate logits
    target: str = ""                     # e.g. "match:esanet-tiny-synth" (edgefuse tune --target)
    data: str = ""                       # the tuning data it was chosen on
    scores: dict[str, Any] = field(default_factory=dict)   # mIoU / mean MAdds there (reported)

    @classmethod
    def from_strength(cls, strength: float, costs: Sequence[float], **info: Any) -> OperatingPoint:
        return cls(float(strength), tuple(-float(strength) * s for s in cost_share(costs)), **info)

    def to_dict(self) -> dict[str, Any]:
        return {"strength": self.strength, "gate_bias": list(self.gate_bias), "target": self.target,
                "data": self.data, "scores": dict(self.scores)}

    @classmethod
    def from_dict(cls, d: Any, num_paths: int, where: str = "checkpoint") -> OperatingPoint:
        """Parse and check a stored operating point (JSON from a checkpoint or manifest)."""
        try:
            bias = tuple(float(b) for b in d["gate_bias"])
            op = cls(float(d.get("strength", 0.0)), bias, str(d.get("target", "")), str(d.get("data", "")),
                     dict(d.get("scores", {})))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise EdgefuseError(f"{where}: operating_point is malformed ({exc}); expected "
                                "{'strength': float, 'gate_bias': [one float per path], ...}: "
                                "re-run `edgefuse tune`") from None
        if len(op.gate_bias) != num_paths or not all(math.isfinite(b) for b in op.gate_bias):
            raise EdgefuseError(f"{where}: operating_point has {len(op.gate_bias)} gate biases for a model with "
                                f"{num_paths} paths (or a non-finite one); re-run `edgefuse tune`")
        return op
