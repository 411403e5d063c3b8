"""Optimisers and learning-rate schedules (ESANet recipe: SGD nesterov + OneCycle)."""

from __future__ import annotations

from typing import Callable

import torch

from edgefuse.train.config import OptimConfig, OptimizerKind, ScheduleKind


def _sgd(groups: list[dict], cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.SGD(groups, lr=groups[0]["lr"], momentum=cfg.momentum,
                           nesterov=cfg.nesterov and cfg.momentum > 0, weight_decay=cfg.weight_decay)


def _adamw(groups: list[dict], cfg: OptimConfig) -> torch.optim.Optimizer:
    return torch.optim.AdamW(groups, lr=groups[0]["lr"], weight_decay=cfg.weight_decay)


OPTIMIZERS: dict[OptimizerKind, Callable[[list[dict], OptimConfig], torch.optim.Optimizer]] = {
    OptimizerKind.SGD: _sgd,
    OptimizerKind.ADAMW: _adamw,
}

GATE_PREFIX = "gate_net."   # fusion- and modality-level DynMM name their gate `gate_net`


def build_optimizer(model: torch.nn.Module, cfg: OptimConfig, lr: float,
                    gate_lr: float | None = None) -> torch.optim.Optimizer:
    """The configured optimiser over the parameters that require gradients; with `gate_lr`,
    the gate (`gate_net.*`) gets its own rate (a few hundred stage-II steps at the network's
    fine-tuning rate barely move a freshly initialised gate)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if gate_lr is None:
        groups = [{"params": [p for _, p in named], "lr": lr}]
    else:
        groups = [{"params": [p for n, p in named if not n.startswith(GATE_PREFIX)], "lr": lr},
                  {"params": [p for n, p in named if n.startswith(GATE_PREFIX)], "lr": gate_lr}]
        groups = [g for g in groups if g["params"]]
    return OPTIMIZERS[cfg.kind](groups, cfg)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig,
                    total_steps: int) -> torch.optim.lr_scheduler.LRScheduler:
    """OneCycle over the stage's steps (stepped once per batch; each parameter group peaks at
    its own rate), or a constant rate."""
    if cfg.schedule is ScheduleKind.ONECYCLE and total_steps >= 4:
        # OneCycle divides by its warm-up length in steps: keep at least 2 warm-up steps.
        pct = min(max(cfg.pct_start, 2.0 / total_steps), 0.5)
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=[g["lr"] for g in optimizer.param_groups], total_steps=total_steps,
            pct_start=pct, div_factor=cfg.div_factor, final_div_factor=cfg.final_div_factor,
            cycle_momentum=cfg.kind is OptimizerKind.SGD and cfg.momentum > 0)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
