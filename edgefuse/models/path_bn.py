"""Per-path BatchNorm for weight-sharing DynMM (issue 17, docs/dynamic-vs-static.md).

The paths of a fusion-level DynMM share every convolution, but after the first fusion cell a
path may skip, the RGB stream carries different activations on each path (with or without
depth added). One shared BatchNorm then holds running statistics that are a mix over the
paths trained together, right for none of them. Slimmable networks keep a private BN per
width for this reason; here each `PathBatchNorm` keeps one BatchNorm (statistics *and* affine
scale/shift) per path and a path runs with its own set:

- statistics: each path normalises with the mean/variance of its own activations;
- affine parameters too: they are a few hundred numbers per layer, a path's own scale/shift
  lets it correct what its missing depth changes, and export folds them into that path's
  convolutions like the statistics, so a private affine costs nothing at run time either.

Which set is used is chosen by the caller for the duration of one path's forward
(`use_path`), so a path module (what export traces) holds set k's tensors in its graph only.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator

import torch
from torch import nn


class PathBatchNorm(nn.Module):
    """A BatchNorm2d per path (`sets.k`); forward uses the set `active` points to."""

    def __init__(self, num_paths: int, like: nn.BatchNorm2d) -> None:
        super().__init__()
        self.sets = nn.ModuleList()
        for _ in range(num_paths):
            bn = nn.BatchNorm2d(like.num_features, eps=like.eps, momentum=like.momentum, affine=like.affine,
                                track_running_stats=like.track_running_stats)
            bn.load_state_dict(like.state_dict())
            self.sets.append(bn)
        self.active = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sets[self.active](x)


def make_per_path(module: nn.Module, num_paths: int) -> int:
    """Replace every BatchNorm2d under `module` by a PathBatchNorm of `num_paths` copies (in
    place). Returns how many were replaced."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(module, name, PathBatchNorm(num_paths, child))
            count += 1
        elif not isinstance(child, PathBatchNorm):
            count += make_per_path(child, num_paths)
    return count


@contextlib.contextmanager
def use_path(modules: Iterable[nn.Module], k: int) -> Iterator[None]:
    """Every PathBatchNorm under `modules` uses set k inside the block (then the previous set)."""
    layers = [m for top in modules for m in top.modules() if isinstance(m, PathBatchNorm)]
    before = [m.active for m in layers]
    for m in layers:
        m.active = k
    try:
        yield
    finally:
        for m, b in zip(layers, before):
            m.active = b


_SET = re.compile(r"^(.*)\.sets\.(\d+)\.([^.]+)$")


def expand_shared_bn(source: dict[str, torch.Tensor], own: Iterable[str]) -> dict[str, torch.Tensor]:
    """A state dict with shared BatchNorms (`x.bn.weight`) mapped onto a per-path model's names
    (`x.bn.sets.k.weight`, every k): a static ESANet initialises every path's set, so each path
    starts as the ESANet (and the full path equals it exactly). Keys the model has as they are
    stay as they are."""
    own = set(own)
    per_path: dict[str, list[str]] = {}
    for key in own:
        m = _SET.match(key)
        if m:
            per_path.setdefault(f"{m.group(1)}.{m.group(3)}", []).append(key)
    out: dict[str, torch.Tensor] = {}
    for key, value in source.items():
        if key not in own and key in per_path:
            for target in per_path[key]:
                out[target] = value.clone()
        else:
            out[key] = value
    return out


def per_path_sets(model: nn.Module) -> list[PathBatchNorm]:
    return [m for m in model.modules() if isinstance(m, PathBatchNorm)]


@torch.no_grad()
def recalibrate_paths(model, loader, paths: Iterable[int]) -> None:
    """Precise BN per path (once-for-all, BigNAS): re-estimate path k's BatchNorm statistics
    as the plain average over every batch of `loader` run through path k, no gradients. Only
    the per-path sets of the given paths change; shared BatchNorms (the stem, the depth
    encoder, the layers before the first fusion cell a path may skip: their inputs are the
    same on every path) and every weight stay as they are."""
    layers = per_path_sets(model)
    if not layers:
        raise ValueError("the model has no per-path BatchNorm (model option per_path_bn)")
    was_training = model.training
    model.eval()
    try:
        for k in paths:
            bns = [m.sets[k] for m in layers]
            saved = [bn.momentum for bn in bns]
            for bn in bns:
                bn.reset_running_stats()
                bn.momentum = None         # cumulative average over every batch
                bn.train()
            for batch in loader:
                model.run_path(k, model.stem(batch["rgb"], batch["depth"]))
            for bn, mom in zip(bns, saved):
                bn.momentum = mom
                bn.eval()
    finally:
        model.train(was_training)
