"""The training objective of one step, by model family (dispatch on the output type)."""

from __future__ import annotations

import torch

from edgefuse.models.base import SegModel, SegOutput
from edgefuse.models.losses import (distillation_loss, gate_regression_loss, per_sample_error, per_sample_loss, resource_loss,
                                    segmentation_loss)
from edgefuse.train.config import GateTarget, StageConfig


def task_loss(model: SegModel, out: SegOutput, target: torch.Tensor, class_weights: torch.Tensor | None,
              stage: StageConfig) -> torch.Tensor:
    """Multi-scale cross-entropy; CEN outputs (per-modality predictions) use CEN's objective
    (every member's loss + the detached ensemble's + l1 on the designated gammas); where every
    path ran on every sample ('supervised'), the mean of the paths' own losses."""
    if getattr(out, "per_modality", ()):
        from edgefuse.models.cen import cen_loss

        return cen_loss(out, target, model, stage.cen_l1, class_weights)  # type: ignore[arg-type]
    if out.path_outputs:
        return sum(segmentation_loss(o, target, class_weights) for o in out.path_outputs) / len(out.path_outputs)
    if out.sub_outputs:
        return sandwich_loss(out, target, class_weights, stage)
    return segmentation_loss(out, target, class_weights)


def sandwich_loss(out: SegOutput, target: torch.Tensor, class_weights: torch.Tensor | None,
                  stage: StageConfig) -> torch.Tensor:
    """'sandwich' mode: the full path's loss on the labels plus each sub-path's, summed (the
    sandwich rule sums the gradients): with `distill`, a sub-path's loss is the distillation
    loss towards the full path's soft prediction, otherwise its own loss on the labels."""
    loss = segmentation_loss(out, target, class_weights)
    for sub in out.sub_outputs:
        loss = loss + (distillation_loss(sub.logits, out.logits, target) if stage.distill
                       else segmentation_loss(sub, target, class_weights))
    return loss


def resource_term(out: SegOutput, path_madds: torch.Tensor | None, stage: StageConfig) -> torch.Tensor | None:
    """DynMM eq. 4 over the measured path costs (normalised by the most expensive path). With a
    budget, only the batch's mean cost above `budget` x max cost is penalised."""
    if out.gate_weights is None or path_madds is None or stage.resource_lambda == 0:
        return None
    r = resource_loss(out.gate_weights, path_madds)
    if stage.budget is not None:
        r = torch.relu(r - stage.budget)
    return stage.resource_lambda * r


def path_losses(out: SegOutput, target: torch.Tensor, class_weights: torch.Tensor | None,
                stage: StageConfig) -> torch.Tensor | None:
    """N x P per-sample scores of every path's main output (the one deployed) that the gate
    learns from, where every path ran on every sample ('supervised' mode; None otherwise):
    the class-weighted cross-entropy (gate_target 'loss') or the pixel error ('error'). No
    gradient."""
    if not out.path_outputs:
        return None
    score = {GateTarget.LOSS: lambda o: per_sample_loss(o.logits, target, class_weights),
             GateTarget.ERROR: lambda o: per_sample_error(o.logits, target)}[stage.gate_target]
    with torch.no_grad():
        return torch.stack([score(o) for o in out.path_outputs], dim=1)


def gate_term(gate_logits: torch.Tensor | None, losses: torch.Tensor | None, path_madds: torch.Tensor | None,
              stage: StageConfig) -> torch.Tensor | None:
    """'supervised' mode: the gate regresses each path's per-sample loss plus resource_lambda x
    its normalised cost (models/losses.py gate_regression_loss)."""
    if gate_logits is None or losses is None or path_madds is None:
        return None
    return gate_regression_loss(gate_logits, losses, path_madds, stage.resource_lambda, stage.gate_temperature)
