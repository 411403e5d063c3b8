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


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor, target: torch.Tensor,
                      ignore_index: int = -1) -> torch.Tensor:
    """In-place distillation (slimmable networks, BigNAS): the per-pixel KL divergence from
    the teacher's soft prediction (detached: the teacher learns from the labels only) to the
    student's, averaged over labelled pixels."""
    valid = (target != ignore_index).to(student.dtype)
    kl = F.kl_div(F.log_softmax(student, dim=1), F.log_softmax(teacher.detach(), dim=1), reduction="none",
                  log_target=True).sum(dim=1)
    return (kl * valid).sum() / valid.sum().clamp_min(1.0)


def resource_loss(gate_weights: torch.Tensor, path_madds: torch.Tensor) -> torch.Tensor:
    """DynMM eq. 3/4: sum_i g_i C(E_i), averaged over the batch. `gate_weights` is N x P
    (one-hot straight-through or soft), `path_madds` the P measured path costs. Costs are
    normalised by the most expensive path, so lambda is comparable across models."""
    costs = path_madds.to(gate_weights) / path_madds.max()
    return (gate_weights * costs).sum(dim=1).mean()


def per_sample_loss(logits: torch.Tensor, target: torch.Tensor, class_weights: torch.Tensor | None = None,
                    ignore_index: int = -1) -> torch.Tensor:
    """N per-sample cross-entropies, each normalised like F.cross_entropy's mean (by the sum
    of the class weights of the sample's labelled pixels); 0 for a sample without labels."""
    pix = F.cross_entropy(logits, target, weight=class_weights, ignore_index=ignore_index, reduction="none")
    valid = target != ignore_index
    w = valid.to(pix.dtype)
    if class_weights is not None:
        w = w * class_weights.to(pix.dtype)[target.clamp_min(0)]
    return pix.flatten(1).sum(1) / w.flatten(1).sum(1).clamp_min(1e-6)


def per_sample_error(logits: torch.Tensor, target: torch.Tensor, ignore_index: int = -1) -> torch.Tensor:
    """N per-sample pixel errors (1 - pixel accuracy over the labelled pixels; 0 without labels)."""
    valid = target != ignore_index
    wrong = (logits.argmax(dim=1) != target) & valid
    return wrong.flatten(1).sum(1).to(logits.dtype) / valid.flatten(1).sum(1).clamp_min(1).to(logits.dtype)


def gate_regression_loss(gate_logits: torch.Tensor, path_losses: torch.Tensor, path_madds: torch.Tensor,
                         lam: float, temperature: float | None = None) -> torch.Tensor:
    """The supervised gate's objective (issue 13), from each path's per-sample loss plus lam
    times its cost share C_k / max C (lam: DynMM's resource weight, applied per sample):
    - temperature None: the logits regress -(loss_k + lam C_k / max C), both sides centred
      over the paths (a softmax/argmax ignores a per-sample shift, and centring removes how
      hard the frame is for every path alike, which the gate need not predict);
    - temperature T: cross-entropy to the soft target softmax(-(loss_k + lam C_k / max C) / T),
      which weighs the paths that matter (the cheap good ones) over predicting every loss.
    Either way the argmax tends to the path with the least expected loss + lam x cost, and the
    logits are in (loss / T) units, so lam can be moved after training by shifting them.
    `path_losses` is N x P and carries no gradient."""
    costs = path_madds.to(gate_logits) / path_madds.max()
    score = -(path_losses.detach() + lam * costs)
    if temperature is not None:
        target = F.softmax(score / temperature, dim=1)
        return -(target * F.log_softmax(gate_logits, dim=1)).sum(dim=1).mean()
    target = score - score.mean(dim=1, keepdim=True)
    pred = gate_logits - gate_logits.mean(dim=1, keepdim=True)
    return F.mse_loss(pred, target)
