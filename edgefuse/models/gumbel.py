"""Gumbel-softmax gating (DynMM eq. 5) and temperature schedules."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


def gumbel_softmax(logits: torch.Tensor, tau: float, hard: bool, noise: bool = True,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Soft sample g~ = softmax((logits + Gumbel noise) / tau); with `hard`, the forward value
    is one-hot argmax and the gradient is that of g~ (straight-through, Jang et al.)."""
    if noise:
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
        g = -torch.log((-torch.log(u.clamp_min(1e-10))).clamp_min(1e-10))
        logits = logits + g
    soft = F.softmax(logits / tau, dim=-1)
    if not hard:
        return soft
    index = soft.argmax(dim=-1, keepdim=True)
    one_hot = torch.zeros_like(soft).scatter_(-1, index, 1.0)
    return one_hot - soft.detach() + soft


@dataclass(frozen=True)
class TemperatureSchedule:
    """Exponential annealing from `start` to `end` over `steps` (official DynMM: 1 -> 1e-3
    over training); constant when start == end."""

    start: float = 1.0
    end: float = 1.0
    steps: int = 1

    def __call__(self, step: int) -> float:
        if self.start == self.end or self.steps <= 0:
            return self.start
        t = min(max(step, 0), self.steps) / self.steps
        return math.exp(math.log(self.start) + t * (math.log(self.end) - math.log(self.start)))
