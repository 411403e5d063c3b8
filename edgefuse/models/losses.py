"""Training losses: multi-scale segmentation loss and DynMM's resource-aware loss."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgefuse.models.base import SegOutput


def segmentation_loss(out: SegOutput, target: torch.Tensor, class_weights: torch.Tensor | None = None,
                      ignore_index: int = -1) -> torch.Tensor:
    """Cross-entropy summed over the full-resolution output and every side output (ESANet).
    `target` holds class indices 0..C-1 and `ignore_index` for void. Side targets are
    nearest-downsampled labels."""
    loss = F.cross_entropy(out.logits, target, weight=class_weights, ignore_index=ignore_index)
    for side in out.side:
        t = F.interpolate(target[:, None].float(), size=side.shape[-2:], mode="nearest")[:, 0].long()
        loss = loss + F.cross_entropy(side, t, weight=class_weights, ignore_index=ignore_index)
    return loss


def resource_loss(gate_weights: torch.Tensor, path_madds: torch.Tensor) -> torch.Tensor:
    """DynMM eq. 3/4: sum_i g_i C(E_i), averaged over the batch. `gate_weights` is N x P
    (one-hot straight-through or soft), `path_madds` the P measured path costs. Costs are
    normalised by the most expensive path, so lambda is comparable across models."""
    costs = path_madds.to(gate_weights) / path_madds.max()
    return (gate_weights * costs).sum(dim=1).mean()
