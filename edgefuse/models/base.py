"""The interface every segmentation model in edgefuse implements.

A model is split the way it is deployed (docs/architecture.md "The path"):

    stem(rgb, depth) -> named features      (what stem_gate.onnx computes)
    gate(features)   -> logits over paths   (None for a static model)
    run_path(k, features) -> logits        (what path_<k>.onnx computes)

Inputs are *raw*: rgb float32 N x 3 x H x W in 0..255 (RGB order), depth float32
N x 1 x H x W in millimetres with 0 = no measurement. Normalisation is part of the model,
so the exported graph holds it and the runtime does no arithmetic on pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from edgefuse.models.operating_point import OperatingPoint
from edgefuse.models.paths import PathSet
from edgefuse.errors import ConfigError, EdgefuseError

Features = dict[str, torch.Tensor]


@dataclass
class SegOutput:
    """Training-mode output. `gate_weights` is N x P (one-hot straight-through or soft);
    `path_index` is the path each sample took (None where every path ran, soft mode).
    `path_outputs` holds every path's own output where every path ran on every sample
    ('supervised' mode; `logits` is then the gate's argmax path per sample)."""

    logits: torch.Tensor
    side: tuple[torch.Tensor, ...] = ()
    gate_logits: torch.Tensor | None = None
    gate_weights: torch.Tensor | None = None
    path_index: torch.Tensor | None = None
    path_outputs: tuple["SegOutput", ...] = ()
    # 'sandwich' mode: `logits` / `side` are the full path's; these the sub-paths' outputs
    # (the cheapest, then the random ones) on the same samples, trained against the full path.
    sub_outputs: tuple["SegOutput", ...] = ()


def as_seg_output(out) -> SegOutput:
    """A path's training output (logits, *side outputs) as a SegOutput."""
    logits, *side = out if isinstance(out, tuple) else (out,)
    return SegOutput(logits, tuple(side))


def run_paths_grouped(model: "SegModel", feats: Features, index: torch.Tensor, weights: torch.Tensor,
                      logits: torch.Tensor) -> SegOutput:
    """Training forward of a gated model: each sample through its own path only (grouped by
    path, never masked), scaled by its gate weight so gradients reach the gate (straight-
    through: the weight is 1 in value). Shared by fusion-level and modality-level DynMM."""
    n = index.shape[0]
    main: torch.Tensor | None = None
    side: list[torch.Tensor] = []
    for k in index.unique().tolist():
        sel = (index == k).nonzero(as_tuple=True)[0]
        out = as_seg_output(model.run_path(k, {name: t[sel] for name, t in feats.items()}))
        w = weights[sel, k].view(-1, 1, 1, 1)
        if main is None:
            main = out.logits.new_zeros((n, *out.logits.shape[1:]))
            side = [s.new_zeros((n, *s.shape[1:])) for s in out.side]
        main = main.index_put((sel,), out.logits * w)
        side = [acc.index_put((sel,), s * w) for acc, s in zip(side, out.side)]
    assert main is not None
    return SegOutput(main, tuple(side), logits, weights, index)



def run_paths_blended(model: "SegModel", feats: Features, weights: torch.Tensor, logits: torch.Tensor) -> SegOutput:
    """Soft training forward (DynMM's soft Gumbel): every path runs on every sample and the
    outputs are blended by the gate's soft weights."""
    outs = [as_seg_output(model.run_path(k, feats)) for k in range(model.num_paths)]
    w = weights.view(weights.shape[0], -1, 1, 1, 1).unbind(1)
    mix = sum(o.logits * wk for o, wk in zip(outs, w))
    side = tuple(sum(o.side[j] * wk for o, wk in zip(outs, w)) for j in range(len(outs[0].side)))
    return SegOutput(mix, side, logits, weights, None)  # type: ignore[arg-type]


def run_paths_all(model: "SegModel", feats: Features, logits: torch.Tensor) -> SegOutput:
    """Every path on every sample, each output kept apart (`path_outputs`): each path's loss
    trains that path, and the per-sample path losses supervise the gate (train/losses.py
    gate_term). `logits` is the gate's argmax path per sample (what inference would run)."""
    outs = tuple(as_seg_output(model.run_path(k, feats)) for k in range(model.num_paths))
    index = logits.detach().argmax(1)
    stacked = torch.stack([o.logits.detach() for o in outs], dim=1)     # N x P x C x H x W
    chosen = stacked[torch.arange(index.shape[0], device=index.device), index]
    return SegOutput(chosen, (), logits, None, index, outs)


def sandwich_paths(model: "SegModel", extra: int) -> tuple[int, int, list[int]]:
    """(full, cheapest, `extra` random others) for one sandwich step: the full path fuses
    most (then computes most depth), the cheapest least; the others are drawn without
    replacement from the rest with torch's RNG (so `resume` repeats them)."""
    from edgefuse.models.paths import PathSet

    def size(k: int) -> tuple[int, int, int]:
        d = model.paths[k]
        return sum(d), PathSet.depth_stages(d), k

    ks = range(model.num_paths)
    full, cheapest = max(ks, key=size), min(ks, key=size)
    rest = [k for k in ks if k not in (full, cheapest)]
    pick = torch.randperm(len(rest))[:extra].tolist() if rest else []
    return full, cheapest, [rest[i] for i in sorted(pick)]


def run_paths_sandwich(model: "SegModel", feats: Features, logits: torch.Tensor, extra: int) -> SegOutput:
    """The sandwich rule (slimmable networks, BigNAS): the full path, the cheapest and `extra`
    random paths, each on the whole batch, sharing one stem; the losses (train/losses.py) are
    summed, so each shared weight gets the sum of the paths' gradients."""
    full, cheapest, others = sandwich_paths(model, extra)
    out = as_seg_output(model.run_path(full, feats))
    subs = tuple(as_seg_output(model.run_path(k, feats)) for k in [cheapest, *others] if k != full)
    index = torch.full((logits.shape[0],), full, dtype=torch.long, device=logits.device)
    return SegOutput(out.logits, out.side, logits, None, index, (), subs)


def gated_train_forward(model: "SegModel", feats: Features, mode: str, tau: float) -> SegOutput:
    """DynMM's training forward by gate mode (Sec. 3.4), shared by fusion- and modality-level:
    - 'random': stage I, a uniformly random path per sample (every path trains);
    - 'sandwich': stage I by the sandwich rule, the full, the cheapest and random paths on
      every sample (`model.sandwich_random` of them), trained against the full path;
    - 'gumbel_hard': straight-through Gumbel-softmax, each sample through its path only;
    - 'gumbel_soft': every path runs, outputs blended by the soft weights;
    - 'supervised': every path runs on every sample and each trains on its own loss; the gate
      learns to predict the paths' per-sample losses (issue 13). It sees the stem features
      detached, so its regression never reshapes the stem the paths share;
    - 'routed': each sample through the gate's argmax path, as deployed; the gate is not
      trained, the network learns the frames the gate sends each path (DynMM's joint stage
      with the decision taken as at run time)."""
    from edgefuse.models.gumbel import gumbel_softmax

    if mode == "supervised":
        logits = model.gate({n: t.detach() for n, t in feats.items()})
        assert logits is not None
        return run_paths_all(model, feats, logits)
    if mode == "routed":
        gate_net = model.gate_net  # type: ignore[attr-defined]
        was_training = gate_net.training
        gate_net.eval()            # route as deployed: the gate's BatchNorm on its running statistics
        try:
            with torch.no_grad():
                logits = model.gate(feats)
        finally:
            gate_net.train(was_training)
        assert logits is not None
        index = logits.argmax(1)
        return run_paths_grouped(model, feats, index, F.one_hot(index, model.num_paths).to(logits.dtype), logits)
    logits = model.gate(feats)
    assert logits is not None
    if mode == "sandwich":
        return run_paths_sandwich(model, feats, logits, int(getattr(model, "sandwich_random", 1)))
    if mode == "random":
        index = torch.randint(0, model.num_paths, (logits.shape[0],), device=logits.device)
        return run_paths_grouped(model, feats, index, F.one_hot(index, model.num_paths).to(logits.dtype), logits)
    if mode == "gumbel_hard":
        weights = gumbel_softmax(logits, tau, hard=True)
        return run_paths_grouped(model, feats, weights.argmax(1), weights, logits)
    if mode == "gumbel_soft":
        return run_paths_blended(model, feats, gumbel_softmax(logits, tau, hard=False), logits)
    raise ConfigError(f"unknown gate_mode {mode!r}: use 'random', 'sandwich', 'gumbel_hard', 'gumbel_soft', "
                      "'supervised' or 'routed'")

class InputNorm(nn.Module):
    """RGB: /255 then mean/std (ImageNet). Depth: (d - mean) / std where valid, 0 where the
    sensor gave no measurement (ESANet with raw depth keeps invalid pixels at 0)."""

    def __init__(self, rgb_mean: tuple[float, float, float], rgb_std: tuple[float, float, float],
                 depth_mean: float, depth_std: float, depth_mode: str = "raw") -> None:
        super().__init__()
        self.register_buffer("rgb_scale", 1.0 / (255.0 * torch.tensor(rgb_std)).view(1, 3, 1, 1))
        self.register_buffer("rgb_shift", (torch.tensor(rgb_mean) / torch.tensor(rgb_std)).view(1, 3, 1, 1))
        self.depth_mean = float(depth_mean)
        self.depth_std = float(depth_std)
        # "refined" (ESANet's eval.py on hole-filled depth): zero is normalised like any value
        self.keep_invalid_zero = depth_mode == "raw"

    def rgb(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.rgb_scale - self.rgb_shift

    def depth(self, d: torch.Tensor) -> torch.Tensor:
        if not self.keep_invalid_zero:
            return (d - self.depth_mean) / self.depth_std
        valid = (d > 0).to(d.dtype)
        return (d - self.depth_mean) / self.depth_std * valid


class SegModel(nn.Module):
    """Base class: subclasses define `stem`, `gate`, `run_path`, `path_parts` and
    `path_inputs`; the rest (dynamic inference grouped by path, path modules) is shared."""

    paths: PathSet
    feature_names: tuple[str, ...]

    # --- to implement -----------------------------------------------------------------
    def stem(self, rgb: torch.Tensor, depth: torch.Tensor) -> Features:
        raise NotImplementedError

    def gate(self, feats: Features) -> torch.Tensor | None:
        return None

    def run_path(self, k: int, feats: Features):
        raise NotImplementedError

    def depth_stem(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor | None:
        """Run only the depth encoder's part of the stem, for cost accounting; None when
        the model has no separate depth encoder."""
        return None

    def path_depth_stem(self, k: int, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor | None:
        """Depth-encoder work inside path k's own graph that no part named 'depth*' shows
        (a modality-level expert's depth stem), for cost accounting; None by default."""
        return None

    def load_pretrained(self, path: str) -> list[str]:
        """Load torchvision-named ImageNet ResNet weights from a local file into every ResNet
        encoder of the model (RGB as is; depth: conv1 summed over the RGB channels; early
        fusion: a 4th channel with their mean). Returns the encoder keys left uninitialised,
        prefixed with the encoder's name. CEN overrides this (shared convs, private BNs)."""
        from edgefuse.models.resnet import ResNetEncoder
        from edgefuse.models.resnet import load_pretrained as load_encoder

        encoders = [(name, m) for name, m in self.named_modules() if isinstance(m, ResNetEncoder)]
        if not encoders:
            raise EdgefuseError(f"{type(self).__name__} has no ResNet encoder to load ImageNet weights into")
        return [f"{name}.{key}" for name, enc in encoders for key in load_encoder(enc, path)]

    def path_parts(self, k: int) -> dict[str, nn.Module]:
        """The submodules path k executes, by name; names starting with 'depth' are depth
        encoder work (cost accounting)."""
        raise NotImplementedError

    def run_path_with(self, parts, k: int, feats: Features):
        """Run path k using only `parts` (see PathModule)."""
        raise NotImplementedError

    def path_inputs(self, k: int) -> tuple[str, ...]:
        """Names of the stem features path k consumes (its graph's inputs)."""
        return self.feature_names

    # --- shared -----------------------------------------------------------------------
    _network_frozen: bool = False
    # The cost bias the deployed argmax uses (models/operating_point.py); None: plain argmax.
    # A plain attribute, not a buffer: the state dict (and every checkpoint's hash) stays
    # the same; checkpoints carry it in their metadata.
    operating_point: OperatingPoint | None = None

    def set_operating_point(self, op: OperatingPoint | None) -> None:
        if op is not None and len(op.gate_bias) != self.num_paths:
            raise EdgefuseError(f"operating point has {len(op.gate_bias)} gate biases; the model has "
                                f"{self.num_paths} paths")
        self.operating_point = op

    def routing_logits(self, logits: torch.Tensor) -> torch.Tensor:
        """The gate logits the deployed argmax sees: the raw logits + the operating point's bias."""
        if self.operating_point is None:
            return logits
        return logits + torch.tensor(self.operating_point.gate_bias, dtype=logits.dtype, device=logits.device)

    def freeze_network(self, frozen: bool = True) -> None:
        """Train the gate only: every parameter outside `gate_net` stops taking gradients and
        every module outside it stays in eval mode (BatchNorm uses, and never updates, its
        running statistics), so a gate stage leaves the network bit-identical."""
        self._network_frozen = bool(frozen)
        for name, p in self.named_parameters():
            if not name.startswith("gate_net."):
                p.requires_grad_(not frozen)
        self.train(self.training)

    @property
    def network_frozen(self) -> bool:
        return self._network_frozen

    def train(self, mode: bool = True) -> "SegModel":
        # The override, not the trainer, keeps a frozen network in eval mode: model.train() is
        # called from many places (the trainer's start, per-stage evaluation restoring train
        # mode, costs.measure_costs restoring the previous mode, user loops); each would
        # otherwise have to remember to re-freeze.
        super().train(mode)
        if self._network_frozen:
            for name, child in self.named_children():
                if name != "gate_net":
                    child.eval()
        return self

    @property
    def num_paths(self) -> int:
        return len(self.paths)

    @property
    def is_dynamic(self) -> bool:
        return len(self.paths) > 1

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor, path: int | None = None):
        """Eval: logits N x C x H x W, each sample through its gate's path (or `path`).
        Train: a SegOutput (see DynamicMixin.train_forward for gated training)."""
        if self.training:
            return self.train_forward(rgb, depth, path)
        return self.infer(rgb, depth, path)[0]

    def train_forward(self, rgb: torch.Tensor, depth: torch.Tensor, path: int | None = None) -> SegOutput:
        feats = self.stem(rgb, depth)
        out = self.run_path(0 if path is None else path, feats)
        logits, *side = out if isinstance(out, tuple) else (out,)
        return SegOutput(logits, tuple(side))

    @torch.no_grad()
    def choose(self, feats: Features) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Hard gate decision per sample (argmax of the logits plus the operating point's
        cost bias), and the gate's raw logits."""
        n = next(iter(feats.values())).shape[0]
        logits = self.gate(feats) if self.is_dynamic else None
        if logits is None:
            return torch.zeros(n, dtype=torch.long, device=next(iter(feats.values())).device), None
        return self.routing_logits(logits).argmax(dim=1), logits

    def infer(self, rgb: torch.Tensor, depth: torch.Tensor, path: int | None = None
              ) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the path index of each sample. Samples are grouped by path and each
        group runs only its path: nothing is computed for paths no sample took."""
        feats = self.stem(rgb, depth)
        if path is not None:
            index = torch.full((rgb.shape[0],), int(path), dtype=torch.long, device=rgb.device)
        else:
            index, _ = self.choose(feats)
        return self.run_grouped(feats, index), index

    def run_grouped(self, feats: Features, index: torch.Tensor) -> torch.Tensor:
        ks = index.unique().tolist()
        if len(ks) == 1:  # the common case at batch size 1: no gather/scatter at all
            out = self.run_path(ks[0], feats)
            return out[0] if isinstance(out, tuple) else out
        result: torch.Tensor | None = None
        for k in ks:
            sel = (index == k).nonzero(as_tuple=True)[0]
            out = self.run_path(k, {n: t[sel] for n, t in feats.items()})
            out = out[0] if isinstance(out, tuple) else out
            if result is None:
                result = out.new_empty((index.shape[0], *out.shape[1:]))
            result[sel] = out
        assert result is not None
        return result

    def path_module(self, k: int) -> PathModule:
        pm = PathModule(self, k)
        if self._network_frozen:   # PathModule follows the model's mode: a frozen network stays in eval
            pm.eval()
        return pm

    def stem_gate_module(self) -> StemGateModule:
        return StemGateModule(self)


class PathModule(nn.Module):
    """Path k as a plain static module over its input features (what export traces).

    It holds only the submodules that path executes (`path_parts`), so its state dict
    and its traced graph contain nothing the path skips."""

    def __init__(self, model: SegModel, k: int) -> None:
        super().__init__()
        if not 0 <= k < model.num_paths:
            raise IndexError(f"path {k} not in 0..{model.num_paths - 1}")
        self.k = k
        self.input_names = model.path_inputs(k)
        self.parts = nn.ModuleDict(model.path_parts(k))  # type: ignore[attr-defined]
        self._run = model.run_path_with  # type: ignore[attr-defined]
        # nn.Module starts in train mode; a view of an eval model must be in eval mode too, or
        # `.training` lies about the shared submodules (BatchNorm, side outputs).
        self.train(model.training)

    def forward(self, *feats: torch.Tensor) -> torch.Tensor:
        out = self._run(self.parts, self.k, dict(zip(self.input_names, feats)))
        return out[0] if isinstance(out, tuple) else out


class StemGateModule(nn.Module):
    """Normalisation, stems and gate: raw (rgb, depth) -> (*features, gate_logits)."""

    def __init__(self, model: SegModel) -> None:
        super().__init__()
        self.model = model
        self.output_names = model.feature_names + (("gate_logits",) if model.is_dynamic else ())
        self.train(model.training)  # follow the model's mode (see PathModule)

    def forward(self, rgb: torch.Tensor, depth: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feats = self.model.stem(rgb, depth)
        outs = tuple(feats[n] for n in self.model.feature_names)
        if self.model.is_dynamic:
            # With the operating point's bias: the runtime's argmax then routes as `choose` does.
            outs = outs + (self.model.routing_logits(self.model.gate(feats)),)
        return outs
