"""`train(cfg)`: the training loop shared by every model family and stage.

Per stage: set the dynamic model's gate mode, a fresh optimiser and OneCycle schedule, then
epochs of (forward -> task loss [+ resource loss] -> step). After every epoch the weights
(`last.safetensors`) and the training state (`train_state.pt`) are written, so `resume`
continues exactly where the run stopped: same data order (DistributedSampler seeded per
epoch), same augmentations (dataset seeded per epoch and index), same Gumbel noise and
random paths (torch RNG restored).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from edgefuse.checkpoint import load_model, save_checkpoint
from edgefuse.errors import EdgefuseError
from edgefuse.models.base import SegModel
from edgefuse.models.gumbel import TemperatureSchedule
from edgefuse.models.path_bn import expand_shared_bn
from edgefuse.train import distributed as D
from edgefuse.train.class_weights import median_frequency_weights
from edgefuse.train.config import AugmentConfig, ClassWeighting, GateMode, ModelSpec, StageConfig, TrainConfig
from edgefuse.train.losses import gate_term, path_losses, resource_term, task_loss
from edgefuse.train.schedules import build_optimizer, build_scheduler
from edgefuse.train.state import LAST_WEIGHTS, Position, load_state, save_state

log = logging.getLogger(__name__)

FINAL_WEIGHTS = "model.safetensors"


@dataclass
class TrainResult:
    checkpoint: Path                     # final weights (model.safetensors)
    history: list[dict[str, Any]] = field(default_factory=list)
    eval: dict[str, Any] | None = None   # eval report after the last stage (eval_split)
    completed: bool = True               # False when stopped early (stop_after_epochs)


# --- building blocks ------------------------------------------------------------------------
def build_train_model(spec: ModelSpec, dataset) -> SegModel:
    """The model to train. A registry name gets the dataset's classes, depth statistics and
    frame size unless `overrides` set them; a checkpoint keeps its own config (overrides apply)."""
    if spec.checkpoint is not None:
        loaded = load_model(spec.checkpoint)
        model = loaded.model
        # An operating point was tuned for this gate on this network; training changes both
        # (re-choose it with `edgefuse tune`), and routing during training stays the plain argmax.
        model.set_operating_point(None)
        if spec.overrides:
            from edgefuse.models.registry import build_model

            model = build_model(loaded.config.with_(**spec.overrides))
            # (overrides: {per_path_bn: true} gives each path a copy of the shared BatchNorms)
            model.load_state_dict(expand_shared_bn(loaded.model.state_dict(), model.state_dict()), strict=True)
    else:
        from edgefuse.models.registry import build_model

        h, w = dataset[0]["label"].shape
        mean, std = dataset.depth_stats
        defaults = {"num_classes": dataset.num_classes, "class_names": tuple(dataset.classes),
                    "depth_mean": mean, "depth_std": std, "input_size": (int(h), int(w))}
        source = load_model(spec.init_from) if spec.init_from is not None else None
        if source is not None:   # its weights were trained on inputs normalised with its statistics
            defaults.update(depth_mean=source.config.depth_mean, depth_std=source.config.depth_std)
        model = build_model(spec.name, **{**defaults, **spec.overrides})
        if spec.pretrained is not None:
            missing = model.load_pretrained(spec.pretrained)
            if missing:
                log.warning("pretrained %s left %d encoder tensors uninitialised (e.g. %s)",
                            spec.pretrained, len(missing), missing[0])
        if source is not None:
            _init_from(model, source, spec.init_from)
        if spec.init_experts is not None:
            if not hasattr(model, "load_experts"):
                raise EdgefuseError(f"init_experts applies to modality-level DynMM only, not {spec.name!r}")
            labels = [str(src) if src is not None else None for src in spec.init_experts]
            experts = [load_model(src).model if src is not None else None for src in spec.init_experts]
            model.load_experts(experts, labels)  # type: ignore[operator]
    if model.config.num_classes != dataset.num_classes:
        raise EdgefuseError(f"the model predicts {model.config.num_classes} classes, the dataset has "
                            f"{dataset.num_classes}; override num_classes or use a matching dataset")
    return model


def train_transform(augment: AugmentConfig | None, model: SegModel):
    """The training split's transform: `augment` at the model's input size (None: none)."""
    if augment is None:
        return None
    from edgefuse.data.transforms import TrainTransform

    return TrainTransform(augment.transform_config(tuple(model.config.input_size)))


def _init_from(model: SegModel, loaded, spec: str) -> None:
    """Copy every parameter and buffer of checkpoint `spec` into the model (same names and
    shapes); the model's own extra parameters (e.g. a gate) keep their initialisation. A
    tensor of `spec` the model lacks, or has in another shape, is an error: the checkpoint
    is of another architecture."""
    own = model.state_dict()
    # A model with per-path BatchNorm takes each shared BN of the checkpoint into every path's set.
    source = expand_shared_bn(loaded.model.state_dict(), own)
    misfit = [k for k, v in source.items() if k not in own or own[k].shape != v.shape]
    if misfit:
        k = misfit[0]
        why = "has no such tensor" if k not in own else f"has it as {list(own[k].shape)}"
        raise EdgefuseError(
            f"init_from {spec!r} ({loaded.config.name or loaded.config.family.value}) does not fit "
            f"{model.config.name or model.config.family.value}: {len(misfit)} of its {len(source)} tensors differ "
            f"(e.g. {k} {list(source[k].shape)}: the model {why}); give a checkpoint of the same encoder, "
            "width and decoder (e.g. the static ESANet a fusion-level DynMM extends)")
    model.load_state_dict(source, strict=False)
    rest = sorted({k.split(".")[0] for k in own if k not in source})
    log.info("init_from %s: %d tensors copied; left at their initialisation: %s", spec, len(source), rest or "none")


def class_weights_for(dataset, kind: ClassWeighting) -> torch.Tensor | None:
    if kind is ClassWeighting.NONE:
        return None
    return torch.from_numpy(median_frequency_weights(dataset.class_pixel_counts()))


class TrainStep(torch.nn.Module):
    """Forward *and* loss of one step, as one module: DDP finds the parameters a step left
    unused by walking back from the outputs, so the output must be the loss itself (the gate
    logits of a stage-I step, which feed no loss, would otherwise count as used).

    `loss_cache` (a dict, 'supervised' mode with the network frozen and frames not augmented):
    the paths' per-sample losses are then constants, so they are kept by frame name after the
    first epoch and later steps run only the stem and the gate."""

    def __init__(self, model: SegModel, stage: StageConfig, class_weights: torch.Tensor | None,
                 path_madds: torch.Tensor | None, loss_cache: dict[str, torch.Tensor] | None = None) -> None:
        super().__init__()
        self.model = model
        self.stage = stage
        self.class_weights = class_weights
        self.path_madds = path_madds
        self.loss_cache = loss_cache

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor, target: torch.Tensor, path: int | None,
                keys: list[str] | None = None):
        cache = self.loss_cache if keys is not None else None
        if cache is not None and all(k in cache for k in keys):  # type: ignore[union-attr]
            return self._cached_gate_step(rgb, depth, torch.stack([cache[k] for k in keys]).to(rgb.device))
        out = self.model(rgb, depth, path)
        loss_task = task_loss(self.model, out, target, self.class_weights, self.stage)
        loss_res = resource_term(out, self.path_madds, self.stage)
        losses = path_losses(out, target, self.class_weights, self.stage)
        if cache is not None and losses is not None:
            cache.update({k: v.cpu() for k, v in zip(keys, losses)})  # type: ignore[arg-type]
        loss_gate = gate_term(out.gate_logits, losses, self.path_madds, self.stage)
        loss = loss_task
        for extra in (loss_res, loss_gate):
            if extra is not None:
                loss = loss + extra
        if out.path_index is not None:
            index = out.path_index.detach()
        else:  # every sample through one path (static, forced) or soft blend (counted as argmax)
            index = (out.gate_weights.detach().argmax(1) if out.gate_weights is not None
                     else torch.full((rgb.shape[0],), path or 0, dtype=torch.long, device=rgb.device))
        zero = loss.new_zeros(())
        return (loss, loss_task.detach(), (loss_res.detach() if loss_res is not None else zero),
                (loss_gate.detach() if loss_gate is not None else zero), index)

    def _cached_gate_step(self, rgb: torch.Tensor, depth: torch.Tensor, losses: torch.Tensor):
        """Stem (frozen) and gate only; the task loss reported is the mean cached path loss."""
        with torch.no_grad():
            feats = self.model.stem(rgb, depth)
        logits = self.model.gate(feats)
        loss = gate_term(logits, losses, self.path_madds, self.stage)
        assert loss is not None
        zero = loss.new_zeros(())
        return loss, losses.mean().detach(), zero, loss.detach(), logits.detach().argmax(1)


def _configure_stage(model: SegModel, stage: StageConfig) -> int | None:
    """Set the model's training mode for `stage`; return the forced path (or None)."""
    if stage.precise_bn_frames and not getattr(model, "per_path_bn", False):
        raise EdgefuseError(f"stage {stage.name!r}: precise_bn_frames re-estimates the BatchNorm set of each "
                            "path; this model has none: add `overrides: {per_path_bn: true}` to the model "
                            "(fusion-level DynMM) or drop precise_bn_frames")
    if stage.freeze_experts and not hasattr(model, "freeze_experts"):
        raise EdgefuseError(f"stage {stage.name!r}: freeze_experts applies to modality-level DynMM only "
                            "(freeze_network freezes any DynMM's network)")
    if stage.freeze_network and not model.is_dynamic:
        raise EdgefuseError(f"stage {stage.name!r}: freeze_network trains a DynMM's gate alone; "
                            f"{model.config.name or model.config.family.value} has no gate")
    if model.is_dynamic:
        model.freeze_network(stage.freeze_network or stage.freeze_experts)
    if stage.gate_mode is GateMode.FIXED:
        if not 0 <= stage.path < model.num_paths:
            raise EdgefuseError(f"stage {stage.name!r}: path {stage.path} not in 0..{model.num_paths - 1}")
        return stage.path if model.is_dynamic else None
    if not model.is_dynamic:
        raise EdgefuseError(f"stage {stage.name!r}: gate_mode {stage.gate_mode.value!r} needs a dynamic model "
                            f"(DynMM); {model.config.name or model.config.family.value} has one path. "
                            "Use gate_mode: fixed")
    model.gate_mode = stage.gate_mode.value  # type: ignore[attr-defined]
    model.sandwich_random = stage.sandwich_random  # type: ignore[attr-defined]
    return None


def _progress(enabled: bool):
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("loss {task.fields[loss]}"), TimeElapsedColumn(), TextColumn("ETA"),
                    TimeRemainingColumn(), disable=not enabled)


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


# --- the loop -------------------------------------------------------------------------------
def train(cfg: TrainConfig, resume: bool = False, command: str | None = None,
          stop_after_epochs: int | None = None) -> TrainResult:
    """Run every stage of `cfg`. `resume` continues the interrupted run in cfg.out_dir;
    `stop_after_epochs` stops after that many epochs of this call (tests, time slicing)."""
    from edgefuse.data.dataset import SegmentationDataset

    ctx = D.init_distributed()
    try:
        return _train(cfg, ctx, resume, command, stop_after_epochs, SegmentationDataset)
    finally:
        D.cleanup(ctx)


def _train(cfg: TrainConfig, ctx: D.DistContext, resume: bool, command: str | None,
           stop_after_epochs: int | None, dataset_cls) -> TrainResult:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    out_dir = Path(cfg.out_dir)
    _seed_everything(cfg.seed)

    base = dataset_cls(cfg.data.root, cfg.data.train_split, seed=cfg.seed)
    dataset = base if cfg.data.max_frames is None else torch.utils.data.Subset(
        base, range(min(cfg.data.max_frames, len(base))))
    if len(dataset) < cfg.batch_size * ctx.world_size:
        raise EdgefuseError(f"{len(dataset)} training frames cannot fill one batch of {cfg.batch_size} "
                            f"on {ctx.world_size} process(es); lower batch_size")
    model = build_train_model(cfg.model, base).to(ctx.device)
    # Created once data and model are known good: a config error leaves no empty run folder.
    out_dir.mkdir(parents=True, exist_ok=True)
    model.train()
    # Attached once the model is built: its input size (taken from the stored frames when not
    # overridden) is the augmented frames' size. Seeded per (seed, epoch, index): see set_epoch.
    base.transform = train_transform(cfg.data.augment, model)
    class_weights = class_weights_for(base, cfg.class_weights)
    if class_weights is not None:
        class_weights = class_weights.to(ctx.device)
    path_madds = None
    if model.is_dynamic:
        from edgefuse.models.costs import measure_costs

        path_madds = torch.tensor(measure_costs(model).madds(), device=ctx.device)

    history: list[dict[str, Any]] = []
    pos = Position()
    state: dict[str, Any] | None = None
    if resume:
        state = load_state(out_dir)
        resumed = load_model(out_dir / LAST_WEIGHTS).model
        model.load_state_dict(resumed.state_dict(), strict=True)
        pos = Position(int(state["stage"]), int(state["epoch"]), int(state["step"]))
        history = list(state.get("history", []))
    else:
        if ctx.is_main:  # a fresh run starts a fresh log
            (out_dir / "history.jsonl").unlink(missing_ok=True)
        # Different random paths / Gumbel noise per rank; the same weights (set above).
        torch.manual_seed(cfg.seed * 1000 + ctx.rank + 1)

    sampler = torch.utils.data.DistributedSampler(dataset, num_replicas=ctx.world_size, rank=ctx.rank,
                                                  shuffle=True, seed=cfg.seed, drop_last=True)
    loader = torch.utils.data.DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler,
                                         num_workers=cfg.data.workers, drop_last=True)
    steps_per_epoch = len(loader)
    epochs_run = 0
    completed = True
    stage_evals: dict[str, Any] = {}

    with _progress(cfg.progress and ctx.is_main) as bar:
        for si, stage in enumerate(cfg.stages):
            if si < pos.stage:
                continue
            forced_path = _configure_stage(model, stage)
            lr = stage.lr or cfg.optim.lr
            optimizer = build_optimizer(model, cfg.optim, lr, stage.gate_lr)
            scheduler = build_scheduler(optimizer, cfg.optim, stage.epochs * steps_per_epoch)
            start_epoch, step = 0, 0
            if state is not None and si == pos.stage:
                optimizer.load_state_dict(state["optimizer"])
                scheduler.load_state_dict(state["scheduler"])
                rng = state["rng"]
                torch.set_rng_state(rng[ctx.rank] if ctx.rank < len(rng) else rng[0])
                start_epoch, step = pos.epoch, pos.step
            # The paths' losses are constants when only the gate trains on frames as stored.
            constant = (stage.gate_mode is GateMode.SUPERVISED and model.is_dynamic and model.network_frozen
                        and cfg.data.augment is None)
            net = D.wrap_model(TrainStep(model, stage, class_weights, path_madds, {} if constant else None),
                               ctx, model.is_dynamic)
            tau = TemperatureSchedule(stage.tau_start, stage.tau_end, max(stage.epochs * steps_per_epoch - 1, 1))
            task = bar.add_task(f"{stage.name}", total=stage.epochs * steps_per_epoch,
                                completed=start_epoch * steps_per_epoch, loss="-")
            for epoch in range(start_epoch, stage.epochs):
                if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
                    completed = False
                    break
                global_epoch = sum(s.epochs for s in cfg.stages[:si]) + epoch
                sampler.set_epoch(global_epoch)
                base.set_epoch(global_epoch)
                t0 = time.perf_counter()
                sums = {"loss": 0.0, "task": 0.0, "resource": 0.0, "gate": 0.0}
                path_counts = torch.zeros(model.num_paths, dtype=torch.long)
                for batch in loader:
                    rgb = batch["rgb"].to(ctx.device)
                    depth = batch["depth"].to(ctx.device)
                    target = batch["label"].to(ctx.device) - 1   # void 0 -> ignore_index -1
                    model.tau = tau(step)  # type: ignore[attr-defined]
                    loss, loss_task, loss_res, loss_gate, path_index = net(rgb, depth, target, forced_path,
                                                                           batch.get("stem"))
                    if not torch.isfinite(loss):
                        raise EdgefuseError(f"loss became {loss.item()} at stage {stage.name!r} epoch "
                                            f"{epoch + 1} step {step}; lower the learning rate")
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    optimizer.step()
                    scheduler.step()
                    step += 1
                    sums["loss"] += float(loss.detach())
                    sums["task"] += float(loss_task)
                    sums["resource"] += float(loss_res)
                    sums["gate"] += float(loss_gate)
                    path_counts += torch.bincount(path_index.cpu(), minlength=model.num_paths)
                    bar.update(task, advance=1, loss=f"{float(loss.detach()):.3f}")
                epochs_run += 1
                n = max(steps_per_epoch, 1)
                record = {"stage": stage.name, "epoch": epoch + 1, "loss": sums["loss"] / n,
                          "task_loss": sums["task"] / n, "resource_loss": sums["resource"] / n,
                          "gate_loss": sums["gate"] / n,
                          "lr": float(optimizer.param_groups[0]["lr"]), "tau": float(getattr(model, "tau", 1.0)),
                          "path_counts": path_counts.tolist(), "seconds": round(time.perf_counter() - t0, 2)}
                history.append(record)
                D.sync_buffers(model, ctx)
                rngs = D.all_gather_object(torch.get_rng_state(), ctx)
                if ctx.is_main:
                    save_checkpoint(out_dir / LAST_WEIGHTS, model, {"stage": stage.name, "epoch": epoch + 1})
                    save_state(out_dir, Position(si, epoch + 1, step), optimizer, scheduler, rngs,
                               cfg.to_dict(), history)
                    with (out_dir / "history.jsonl").open("a") as f:
                        f.write(json.dumps(record) + "\n")
                D.barrier(ctx)
            bar.remove_task(task)
            if not completed:
                break
            if stage.precise_bn_frames:
                _precise_bn(model, cfg, dataset_cls, stage.precise_bn_frames, ctx)
            if ctx.is_main:
                save_checkpoint(out_dir / f"stage-{stage.name}.safetensors", model,
                                {"stage": stage.name, "train_config": cfg.to_dict(), "command": command})
                if cfg.data.eval_split:
                    stage_evals[stage.name] = _evaluate(model, cfg, dataset_cls, path_madds, ctx)
                    (out_dir / f"eval-{stage.name}.json").write_text(json.dumps(stage_evals[stage.name], indent=2))
            # The next stage starts from this one's weights with a fresh optimiser.
            state = None
            pos = Position(si + 1, 0, 0)
            D.barrier(ctx)

    final = out_dir / FINAL_WEIGHTS
    last_eval = stage_evals[cfg.stages[-1].name] if cfg.stages[-1].name in stage_evals else None
    if completed and ctx.is_main:
        save_checkpoint(final, model, {"train_config": cfg.to_dict(), "command": command, "eval": last_eval,
                                       "history": history})
    model.eval()
    return TrainResult(final, history, last_eval, completed)


def _precise_bn(model: SegModel, cfg: TrainConfig, dataset_cls, frames: int, ctx: D.DistContext) -> None:
    """Every path's BatchNorm set re-estimated on the first `frames` training frames as stored
    (docs/dynamic-vs-static.md "Per-path BatchNorm"): each rank runs the same frames, so the
    statistics agree without a reduction."""
    from edgefuse.models.path_bn import recalibrate_paths

    data = dataset_cls(cfg.data.root, cfg.data.train_split, seed=cfg.seed)   # no transform: as stored
    data = torch.utils.data.Subset(data, range(min(frames, len(data))))
    loader = torch.utils.data.DataLoader(data, batch_size=cfg.batch_size, shuffle=False)

    class OnDevice:   # re-iterable: one pass over the frames per path
        def __iter__(self):
            for b in loader:
                yield {k: (v.to(ctx.device) if torch.is_tensor(v) else v) for k, v in b.items()}

    with torch.no_grad():
        recalibrate_paths(model, OnDevice(), range(model.num_paths))


def _evaluate(model: SegModel, cfg: TrainConfig, dataset_cls, path_madds, ctx: D.DistContext) -> dict[str, Any]:
    from edgefuse.eval.evaluate import evaluate

    data = dataset_cls(cfg.data.root, cfg.data.eval_split)   # never augmented
    costs = path_madds.tolist() if path_madds is not None else None
    # At the model's input size, labels scored at their own (mixed-size datasets such as SUN
    # RGB-D; a no-op when the frames already have the model's size).
    report = evaluate(model, data, batch_size=cfg.batch_size, path_madds=costs, device=ctx.device,
                      input_size=tuple(model.config.input_size))
    model.train()
    return report


def log_summary(result: TrainResult) -> str:
    """One line for the terminal."""
    if result.eval is None:
        return f"weights: {result.checkpoint}"
    e = result.eval
    miou = e["miou"] if e["miou"] is not None else math.nan
    return f"weights: {result.checkpoint}  test mIoU {100 * miou:.2f}  frames {e['frames']}"
