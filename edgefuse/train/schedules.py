"""Optimisers and learning-rate schedules (ESANet recipe: SGD nesterov + OneCycle)."""

from __future__ import annotations

from typing import Callable, Iterable

import torch

from edgefuse.train.config import OptimConfig, OptimizerKind, ScheduleKind


def _sgd(params: list, cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
                           weight_decay=cfg.weight_decay)


def _adamw(params: list, cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    return torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)


OPTIMIZERS: dict[OptimizerKind, Callable[[list, OptimConfig, float], torch.optim.Optimizer]] = {
    OptimizerKind.SGD: _sgd,
    OptimizerKind.ADAMW: _adamw,
}


def build_optimizer(params: Iterable[torch.nn.Parameter], cfg: OptimConfig, lr: float) -> torch.optim.Optimizer:
    """The configured optimiser over the parameters that require gradients."""
    return OPTIMIZERS[cfg.kind]([p for p in params if p.requires_grad], cfg, lr)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, lr: float,
                    total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """OneCycle over the stage's steps (stepped once per batch), or a constant rate."""
    if cfg.schedule is ScheduleKind.ONECYCLE and total_steps > 1:
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=lr, total_steps=total_steps, pct_start=cfg.pct_start,
            div_factor=cfg.div_factor, final_div_factor=cfg.final_div_factor,
            cycle_momentum=cfg.kind is OptimizerKind.SGD and cfg.momentum > 0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
