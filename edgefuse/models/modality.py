"""Modality-level DynMM (Xue & Marculescu, Sec. 3.1): a gate picks one expert network per
sample, each expert working on a subset of the modalities; only the chosen expert runs.

Deployment shape (models/base.py):
- stem: nothing but the raw frames, passed through as `rgb_frame` and `depth_frame`.
  Experts bring their own normalisation and stems, so a path graph is a whole expert and
  the RGB-only expert's graph takes no depth input at all.
- gate: the frames normalised, stacked with the depth-validity map (5 channels) and
  average-pooled to `gate_size`, then a conv, MLP or transformer gate (gates.py).
- path k: expert k (its stem and its single static path).
- `paths`: one decision vector per expert over the modalities (rgb, depth): (True, False)
  is an RGB-only expert, (False, True) depth-only, (True, True) RGB-D. Experts must use
  distinct modality subsets (paper: "each expert specializes in a subset"). NB: these are
  modality decisions, not fusion-cell decisions; `uses_depth(k)` says whether path k
  needs the depth frame.

Costs: path parts keep the expert's own part names, so its depth stages ('depth*') count
as depth-encoder work, and `path_depth_stem` reports the expert's depth stem.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from edgefuse.errors import ConfigError
from edgefuse.models.base import Features, InputNorm, SegModel, SegOutput, as_seg_output, gated_train_forward
from edgefuse.models.config import Family, ModelConfig
from edgefuse.models.gates import build_gate, pool_to
from edgefuse.models.paths import PathSet

MODALITIES = ("rgb", "depth")
GATE_CHANNELS = 5  # normalised rgb (3), normalised depth (1), depth validity (1)

# Which of (rgb, depth) each static family's network reads.
_FAMILY_MODALITIES: dict[Family, tuple[bool, bool]] = {
    Family.RGB: (True, False),
    Family.DEPTH: (False, True),
    Family.EARLY: (True, True),
    Family.ESANET: (True, True),
}


def expert_modalities(cfg: ModelConfig) -> tuple[bool, bool]:
    """(uses rgb, uses depth) of the static network `cfg` builds."""
    if cfg.family is Family.CEN:
        from edgefuse.models.cen import MODALITY_INPUTS

        sensors = {MODALITY_INPUTS[m].sensor for m in cfg.cen.modalities if m in MODALITY_INPUTS}
        return ("rgb" in sensors, "depth" in sensors)
    if cfg.family not in _FAMILY_MODALITIES:
        valid = sorted(f.value for f in _FAMILY_MODALITIES) + [Family.CEN.value]
        raise ConfigError(f"expert family {cfg.family.value!r} is not a static network; "
                          f"modality-level experts must be one of {valid}")
    return _FAMILY_MODALITIES[cfg.family]


class ExpertStem(nn.Module):
    """Expert k's own stem (normalisation and encoder stems) on the raw frames."""

    def __init__(self, expert: SegModel) -> None:
        super().__init__()
        self.expert = expert

    def forward(self, rgb: torch.Tensor | None, depth: torch.Tensor | None) -> Features:
        return self.expert.stem(rgb, depth)  # type: ignore[arg-type]


class ModalityDynMM(SegModel):
    feature_names = ("rgb_frame", "depth_frame")

    def __init__(self, experts: list[SegModel], decisions: list[tuple[bool, bool]], gate: str,
                 gate_size: tuple[int, int], input_size: tuple[int, int], norm: InputNorm,
                 gate_hidden: int = 8) -> None:
        super().__init__()
        if len(experts) < 2:
            raise ConfigError(f"modality-level DynMM needs at least 2 experts, got {len(experts)}")
        if len(set(decisions)) != len(decisions):
            raise ConfigError(f"experts must use distinct modality subsets (rgb, depth), got {decisions}; "
                              "drop one of the experts that read the same modalities")
        if any(not any(d) for d in decisions):
            raise ConfigError("every expert must read at least one modality")
        h, w = input_size
        if h % gate_size[0] or w % gate_size[1]:
            raise ConfigError(f"gate_size {tuple(gate_size)} must divide the input size {h}x{w} "
                              f"(e.g. {h // 4}x{w // 4})")
        self.experts = nn.ModuleList(experts)
        self.paths = PathSet(tuple(tuple(d) for d in decisions))
        self.norm = norm
        self.gate_size = tuple(gate_size)
        self.gate_net = build_gate(gate, GATE_CHANNELS, len(experts), self.gate_size, gate_hidden)
        # Gated training state (set by the trainer), as FusionSegNet: see train_forward.
        self.gate_mode = "gumbel_hard"
        self.tau = 1.0

    # --- stem and gate ------------------------------------------------------------------
    def stem(self, rgb: torch.Tensor, depth: torch.Tensor) -> Features:
        return {"rgb_frame": rgb, "depth_frame": depth}

    def gate_input(self, feats: Features) -> torch.Tensor:
        """Cheap gate input: normalised frames + depth validity, pooled to gate_size."""
        depth = feats["depth_frame"]
        valid = (depth > 0).to(depth.dtype)
        x = torch.cat([self.norm.rgb(feats["rgb_frame"]), self.norm.depth(depth), valid], dim=1)
        return pool_to(x, self.gate_size)

    def gate(self, feats: Features) -> torch.Tensor | None:
        return self.gate_net(self.gate_input(feats))

    def uses_depth(self, k: int) -> bool:
        return bool(self.paths[k][1])

    # --- paths: one per expert ----------------------------------------------------------
    def path_inputs(self, k: int) -> tuple[str, ...]:
        return tuple(n for n, used in zip(self.feature_names, self.paths[k]) if used)

    def path_parts(self, k: int) -> dict[str, nn.Module]:
        # The stem wrapper comes first: flop_counter names a module after the last parent
        # that lists it, so the expert's own parts ('depth1', ...) keep their part names.
        expert = self.experts[k]
        return {"expert_stem": ExpertStem(expert), **expert.path_parts(0)}  # type: ignore[operator]

    def run_path(self, k: int, feats: Features):
        return self.run_path_with(self.path_parts(k), k, feats)

    def run_path_with(self, parts, k: int, feats: Features):
        expert_feats = parts["expert_stem"](feats.get("rgb_frame"), feats.get("depth_frame"))
        return self.experts[k].run_path_with(parts, 0, expert_feats)  # type: ignore[operator]

    def path_depth_stem(self, k: int, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor | None:
        """The depth-encoder part of expert k's stem (cost accounting, models/costs.py)."""
        return self.experts[k].depth_stem(rgb, depth)  # type: ignore[operator]

    # --- training -----------------------------------------------------------------------
    def freeze_experts(self, frozen: bool = True) -> None:
        """Stage II as the official code: train the gate with the experts fixed (no gradients,
        eval mode; SegModel.freeze_network: the experts are this model's whole network)."""
        self.freeze_network(frozen)

    @property
    def experts_frozen(self) -> bool:
        return self.network_frozen

    def load_experts(self, sources: Sequence[SegModel | None],
                     labels: Sequence[str | None] | None = None) -> list[int]:
        """"Experts first" (Sec. 3.1): initialise expert k from the trained static network
        sources[k] (None keeps expert k as it is). The caller loads checkpoints or shipped
        weights (`edgefuse.checkpoint.load_model`; the trainer does for `init_experts`), so
        models never import the checkpoint layer above them; `labels[k]` names where
        source k came from in errors. Expert k's parameters and buffers are the source's
        state dict under the prefix `experts.k.`, so the names line up once the prefix is
        added; the source must read the same modalities as expert k and have the same
        architecture, classes, input size and normalisation (the depth statistics come from
        this model's config, so an expert trained with others would see differently scaled
        depth). Returns the indices loaded."""
        if len(sources) != len(self.experts):
            raise ConfigError(f"give one source per expert ({len(self.experts)}, in the order "
                              f"{[e.config.family.value for e in self.experts]}; null keeps one), got {len(sources)}")
        loaded = []
        for k, model in enumerate(sources):
            if model is None:
                continue
            if not isinstance(model, SegModel):
                raise ConfigError(f"expert {k}: give a loaded model (edgefuse.checkpoint.load_model), "
                                  f"got {type(model).__name__}")
            label = labels[k] if labels is not None else None
            _check_expert_source(k, self.experts[k], model, self.paths[k], label)
            state = {name: t.to(dtype=self.experts[k].state_dict()[name].dtype)
                     for name, t in model.state_dict().items()}
            self.experts[k].load_state_dict(state, strict=True)
            loaded.append(k)
        return loaded

    def train_forward(self, rgb: torch.Tensor, depth: torch.Tensor, path: int | None = None) -> SegOutput:
        """Training forward. Modes (self.gate_mode):
        - 'random': stage I, a uniformly random expert per sample (every expert trains);
        - 'gumbel_hard': straight-through Gumbel-softmax; each sample runs only its expert
          (grouped by expert), scaled by its one-hot weight so the gate gets the soft gradient;
        - 'gumbel_soft': every expert runs and outputs are blended by the soft weights;
        - 'supervised': every expert runs; the gate learns to predict their per-sample losses.
        `path` forces one expert for all samples (stage I, one expert at a time)."""
        feats = self.stem(rgb, depth)
        if path is not None:
            return as_seg_output(self.run_path(path, feats))
        return gated_train_forward(self, feats, self.gate_mode, self.tau)


# Config fields that must agree between an expert and the checkpoint it is loaded from
# (name, description, paths, gate and modality options do not change a static network).
_EXPERT_FIELDS = ("encoder", "block", "width", "num_classes", "class_names", "input_size", "decoder_channels",
                  "decoder_blocks", "context_bins", "rgb_mean", "rgb_std", "cen")


def _check_expert_source(k: int, expert: SegModel, source: SegModel, decision, given) -> None:
    own, src = expert.config, source.config
    where = f"expert {k} ({own.family.value}) from {given if given is not None else repr(src.name)}"
    if source.is_dynamic:
        raise ConfigError(f"{where}: the source is a dynamic model; give a static network")
    if expert_modalities(src) != tuple(decision):
        raise ConfigError(f"{where}: the source reads (rgb, depth) = {expert_modalities(src)}, the expert "
                          f"{tuple(decision)}; list the sources in the experts' order")
    if src.family is not own.family:
        raise ConfigError(f"{where}: the source is a {src.family.value!r} network")
    fields = _EXPERT_FIELDS + (("depth_mean", "depth_std") if decision[1] else ())
    a, b = own.to_dict(), src.to_dict()
    diff = [f for f in fields if not (math.isclose(a[f], b[f], rel_tol=1e-5) if isinstance(a[f], float) else a[f] == b[f])]
    if diff:
        raise ConfigError(f"{where}: the configs differ in {', '.join(f'{f} ({a[f]} here, {b[f]} there)' for f in diff)}; "
                          "override the modality model's config to match the experts' checkpoints")


def build_modality(cfg: ModelConfig) -> ModalityDynMM:
    """Experts are built from `cfg` with the family replaced by each of cfg.modality.experts
    (same encoder, decoder, classes and input size)."""
    from edgefuse.models.registry import build_model

    experts, decisions = [], []
    for name in cfg.modality.experts:
        try:
            family = Family(name)
        except ValueError:
            raise ConfigError(f"unknown expert family {name!r}; use e.g. 'rgb', 'depth', 'early', "
                              "'esanet' or 'cen'") from None
        ecfg = cfg.with_(family=family.value, name=f"{cfg.name}.{family.value}" if cfg.name else family.value)
        decisions.append(expert_modalities(ecfg))
        experts.append(build_model(ecfg))
    norm = InputNorm(cfg.rgb_mean, cfg.rgb_std, cfg.depth_mean, cfg.depth_std, cfg.depth_mode)
    return ModalityDynMM(experts, decisions, cfg.modality.gate, cfg.modality.gate_input_size(cfg.input_size),
                         cfg.input_size, norm, cfg.gate_hidden)
