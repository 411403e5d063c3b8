"""Choosing the path of a frame: pure functions of the gate logits, the path costs and the
runtime policy (docs/architecture.md "The per-frame step", issue 5 "Choosing the path").

Three rules, applied in this order:
  1. sensor health: depth missing or mostly invalid -> the path that relies least on depth
     (the RGB-only expert of a modality-level model, path 0 of a progressive one);
  2. latency budget: a cost-proportional bias subtracted from the gate logits, its strength
     adjusted in closed loop (a PI controller on the latency error) so that the running
     mean latency holds the budget;
  3. plain argmax of the (biased) gate logits.
The gate's choice is then mapped through the manifest's `gate_to_path` to the exported
path that serves it. Nothing here touches a clock or an engine: the pipeline feeds the
measured latency back with `observe()`, the tests feed a simulated one.

A budget below what the cheapest path delivers cannot be held: the controller saturates
and nearly every frame takes the cheapest path, still over budget. `BudgetCheck` tells
that apart from a budget being held, from the cheapest path's measured latency, and says
so once (issue 10).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from edgefuse.errors import ConfigError


class Reason(str, Enum):
    """Why a frame took its path (written to the JSONL record as `reason`)."""

    ARGMAX = "argmax"
    BUDGET = "budget"          # the budget bias changed the gate's argmax
    DEPTH = "depth_fallback"   # sensor-health rule
    STATIC = "static"          # a single-path bundle: nothing to choose


@dataclass(frozen=True)
class PathCostInfo:
    """What the policy needs to know about one exported path."""

    index: int
    madds: float                 # stem + gate + path, one frame
    depth_encoder_madds: float
    depth_stages: int            # depth encoder stages the path computes


@dataclass(frozen=True)
class Choice:
    path: int          # index of the exported path to run
    gate_choice: int   # the gate's choice (index into the path set); -1 when no gate ran
    reason: Reason


@dataclass
class PolicyConfig:
    """Runtime policy. `budget_ms` None disables the budget; `min_depth_valid` is the
    fraction of valid depth pixels below which depth counts as unhealthy."""

    budget_ms: float | None = None
    min_depth_valid: float = 0.5  # as edgefuse.cameras.health.MIN_DEPTH_VALID
    kp: float = 0.5              # logit spreads per unit of relative latency error
    ki: float = 0.2              # ... per frame of accumulated relative error (tuned on the
                                 # closed-loop simulation in tests/runtime/test_policy.py)
    max_bias: float = 10.0       # anti-windup: at most this many logit spreads of bias

    def __post_init__(self) -> None:
        if self.budget_ms is not None and not self.budget_ms > 0:
            raise ConfigError(f"--budget-ms must be > 0 ms, got {self.budget_ms}")
        if not 0.0 <= self.min_depth_valid <= 1.0:
            raise ConfigError(f"min_depth_valid must be in [0, 1], got {self.min_depth_valid}")


# --- pure rules -----------------------------------------------------------------------------
def argmax_choice(logits: Sequence[float] | np.ndarray) -> int:
    """The gate's plain choice: index of the largest logit (first on ties, as torch.argmax)."""
    arr = np.asarray(logits, dtype=np.float64).reshape(-1)
    if arr.size == 0:
        raise ValueError("empty gate logits")
    return int(np.argmax(arr))


def cost_bias(choice_costs: Sequence[float], strength: float) -> np.ndarray:
    """Bias added to the gate logits, proportional to each choice's cost above the cheapest:
    -strength * (cost - min) / (max - min). The most expensive choice is pushed down by
    `strength` logits, the cheapest not at all. (A bias proportional to the cost itself
    would rank paths the same - argmax ignores a common shift - but waste most of its
    strength on the cost every path shares: the stem, the decoder.)"""
    costs = np.asarray(choice_costs, dtype=np.float64)
    if costs.size == 0:
        return costs
    span = float(costs.max() - costs.min())
    if span <= 0:
        return np.zeros_like(costs)
    return -float(strength) * (costs - costs.min()) / span


def depth_valid_fraction(depth: np.ndarray | None) -> float:
    """Fraction of pixels with a finite, positive depth (0 = no measurement). None -> 0."""
    if depth is None or depth.size == 0:
        return 0.0
    d = np.asarray(depth)
    if np.issubdtype(d.dtype, np.floating):
        valid = np.isfinite(d) & (d > 0)
    else:
        valid = d > 0
    return float(np.count_nonzero(valid)) / float(d.size)


def least_depth_path(paths: Sequence[PathCostInfo]) -> int:
    """The exported path that relies least on depth: fewest depth stages, then least depth
    encoder work, then cheapest (for a progressive set: path 0; for a modality-level model:
    the RGB-only expert)."""
    if not paths:
        raise ValueError("no paths")
    best = min(paths, key=lambda p: (p.depth_stages, p.depth_encoder_madds, p.madds, p.index))
    return best.index


def map_choice(gate_choice: int, gate_to_path: Sequence[int]) -> int:
    """The exported path serving a gate choice (bundles may export a subset of paths)."""
    if not 0 <= gate_choice < len(gate_to_path):
        raise ValueError(f"gate choice {gate_choice} outside 0..{len(gate_to_path) - 1}")
    return int(gate_to_path[gate_choice])


# --- closed-loop budget ---------------------------------------------------------------------
@dataclass
class BudgetController:
    """PI controller: strength = kp * e + ki * sum(e), e = (latency - budget) / budget,
    clamped to [0, max_bias] (a frame under budget never pushes toward costlier paths; the
    gate's own choice is the ceiling). The integral makes the long-run mean latency equal
    the budget whenever the budget lies between the cheapest and the gate's own mix."""

    budget_ms: float
    kp: float = 0.5
    ki: float = 0.2
    max_bias: float = 10.0
    integral: float = 0.0
    strength: float = 0.0
    frames: int = 0
    mean_ms: float = 0.0

    def observe(self, latency_ms: float) -> float:
        """Feed one frame's measured latency; returns the new bias strength."""
        self.frames += 1
        self.mean_ms += (float(latency_ms) - self.mean_ms) / self.frames
        err = (float(latency_ms) - self.budget_ms) / self.budget_ms
        integral = self.integral + err
        raw = self.kp * err + self.ki * integral
        # Anti-windup: integrate only while the output is not saturated in the error's direction.
        if (raw < 0 and err < 0) or (raw > self.max_bias and err > 0):
            raw = self.kp * err + self.ki * self.integral
        else:
            self.integral = integral
        self.strength = float(min(max(raw, 0.0), self.max_bias))
        return self.strength


@dataclass(frozen=True)
class BudgetNotice:
    """A latency budget found infeasible: the cheapest path alone is over it. Data, not
    text: each front end words it with its own name for the budget (`message(flag)`:
    `--budget-ms` on the command line, the `budget_ms` parameter in the ROS node)."""

    budget_ms: float
    cheapest_path: int
    median_ms: float      # the cheapest path's stem/gate + path latency, median of `frames`
    frames: int

    @property
    def over_ms(self) -> float:
        return self.median_ms - self.budget_ms

    def message(self, flag: str = "--budget-ms") -> str:
        return (f"{flag} {self.budget_ms:g} cannot be met: the cheapest path (path {self.cheapest_path}) "
                f"alone takes {self.median_ms:.2f} ms for stem/gate + path (median of its last {self.frames} "
                f"frames), {self.over_ms:.2f} ms over; frames take it whenever the budget pushes. "
                f"Raise {flag} to at least {self.median_ms:.2f}, or use a faster backend or a smaller input size")

    def __str__(self) -> str:
        return self.message()


@dataclass
class BudgetCheck:
    """Whether a latency budget can be met at all: the median latency of the cheapest path
    over its last `window` frames, once it has run `min_frames` times, against the budget.
    `observe` returns a `BudgetNotice` the first time the budget is found infeasible."""

    budget_ms: float
    cheapest_path: int
    min_frames: int = 20
    window: int = 50
    frames: int = 0                       # frames observed, all paths
    cheapest_frames: int = 0
    warned: bool = False
    _recent: deque = field(default_factory=deque, repr=False)
    _all: list = field(default_factory=list, repr=False)

    def observe(self, latency_ms: float, path: int) -> BudgetNotice | None:
        self.frames += 1
        if path != self.cheapest_path:
            return None
        self.cheapest_frames += 1
        self._all.append(float(latency_ms))
        self._recent.append(float(latency_ms))
        if len(self._recent) > self.window:
            self._recent.popleft()
        if self.warned or self.cheapest_frames < self.min_frames:
            return None
        recent = float(np.median(self._recent))
        if recent <= self.budget_ms:
            return None
        self.warned = True
        return BudgetNotice(self.budget_ms, self.cheapest_path, recent, len(self._recent))

    @property
    def cheapest_ms(self) -> float | None:
        """Median latency of the cheapest path over the run (None before it ran)."""
        return float(np.median(self._all)) if self._all else None

    @property
    def feasible(self) -> bool | None:
        """False: the cheapest path alone is over budget; True: it is within; None: it has
        not run `min_frames` times yet (nothing measured to judge by)."""
        if self.cheapest_frames < self.min_frames:
            return None
        return bool(self.cheapest_ms <= self.budget_ms)


@dataclass
class PathPolicy:
    """The per-frame decision, stateful only through the budget controller."""

    paths: tuple[PathCostInfo, ...]
    gate_to_path: tuple[int, ...]
    config: PolicyConfig = field(default_factory=PolicyConfig)
    controller: BudgetController | None = None
    budget_check: BudgetCheck | None = None

    def __post_init__(self) -> None:
        known = {p.index for p in self.paths}
        bad = sorted(set(self.gate_to_path) - known)
        if bad:
            raise ConfigError(f"gate_to_path names paths {bad} that are not exported ({sorted(known)})")
        if self.config.budget_ms is not None and self.controller is None:
            c = self.config
            self.controller = BudgetController(c.budget_ms, c.kp, c.ki, c.max_bias)
        by_index = {p.index: p for p in self.paths}
        self._choice_costs = np.array([by_index[k].madds for k in self.gate_to_path], dtype=np.float64)
        self._depth_free = least_depth_path(self.paths)
        if self.controller is not None and self.budget_check is None:
            # The path the budget's bias pushes toward: the cheapest gate choice's.
            cheapest = self.gate_to_path[int(np.argmin(self._choice_costs))]
            self.budget_check = BudgetCheck(self.controller.budget_ms, cheapest)
        self._spread: float | None = None   # running spread of the gate logits (see choose)

    @property
    def depth_free_path(self) -> int:
        return self._depth_free

    def choose(self, gate_logits: np.ndarray | None, depth_valid: float) -> Choice:
        """Path for one frame from its gate logits (None: static bundle) and depth health."""
        if depth_valid < self.config.min_depth_valid:
            return Choice(self._depth_free, -1 if gate_logits is None else argmax_choice(gate_logits),
                          Reason.DEPTH)
        if gate_logits is None:
            return Choice(self.paths[0].index if len(self.gate_to_path) == 0 else self.gate_to_path[0],
                          -1, Reason.STATIC)
        logits = np.asarray(gate_logits, dtype=np.float64).reshape(-1)
        plain = argmax_choice(logits)
        if self.controller is None:
            return Choice(map_choice(plain, self.gate_to_path), plain, Reason.ARGMAX)
        # The controller's strength is in units of the gate's typical logit spread (a running
        # mean of max - min), so the same gains work for a gate with logits of 1 or of 20.
        spread = float(logits.max() - logits.min())
        self._spread = spread if self._spread is None else 0.95 * self._spread + 0.05 * spread
        if self.controller.strength == 0.0:
            return Choice(map_choice(plain, self.gate_to_path), plain, Reason.ARGMAX)
        biased = logits + cost_bias(self._choice_costs, self.controller.strength * max(self._spread, 1e-6))
        choice = argmax_choice(biased)
        return Choice(map_choice(choice, self.gate_to_path), choice,
                      Reason.BUDGET if choice != plain else Reason.ARGMAX)

    def observe(self, latency_ms: float, path: int | None = None) -> BudgetNotice | None:
        """Feed back a frame's measured latency and the path it ran (drives the budget
        controller). Returns a notice, once, when the budget turns out infeasible."""
        if self.controller is None:
            return None
        self.controller.observe(latency_ms)
        if path is None or self.budget_check is None:
            return None
        return self.budget_check.observe(latency_ms, path)

    def budget_report(self) -> dict | None:
        """The budget's outcome for the run summary (None without a budget)."""
        if self.controller is None or self.budget_check is None:
            return None
        c, b = self.controller, self.budget_check
        return {"budget_ms": c.budget_ms, "mean_ms": c.mean_ms if c.frames else None, "frames": c.frames,
                "feasible": b.feasible, "cheapest_path": b.cheapest_path, "cheapest_ms": b.cheapest_ms,
                "cheapest_frames": b.cheapest_frames}
