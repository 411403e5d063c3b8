"""CEN segmentation network: channel exchanging between M modality streams that share
every convolution and keep private BatchNorms (Wang et al. 2020; layers in cen_layers.py).

Deployment shape (models/base.py): the stem computes each modality's stem features
(`<modality>_feat`); the single static path runs the exchanging encoder, decodes every
modality with the shared context module and decoder, and returns the softmax(alpha)
ensemble of the per-modality predictions. CEN has no gate: `paths` is the one-path set
`PathSet.full(4)` (modalities interact in all four stages).

Inputs of different channel counts are broadened to their least common multiple by
repeating channels (paper footnote 3), so depth (1 ch) is replicated to 3 channels and
conv1 is shared as well: every modality then does exactly the same convolution work,
and the streams stay symmetric for the shared filters. A private first conv per modality
would be cheaper for depth (1/3 of a 7x7 conv) but would break the paper's full sharing.

Training: `train_forward` returns a `CENOutput` - the ensemble as `logits`/`side` (so the
generic segmentation loss trains everything, weighted by softmax(alpha)) and the
per-modality outputs in `per_modality`; `cen_loss` is the official objective (each
modality's loss + the ensemble on detached members + lambda * l1 on the designated gammas).

Export: `freeze_exchange()` turns the gamma-derived exchange masks into constant buffers
(layers that exchange nothing lose their select op). Even unfrozen, the exchange is a
`torch.where` on a mask computed from parameters, so no graph holds NonZero/ScatterND.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.models.base import Features, InputNorm, SegModel, SegOutput
from edgefuse.models.cen_layers import CEN_BLOCKS, CENEncoder, ExchangingBN, Streams, Tap
from edgefuse.models.config import ModelConfig
from edgefuse.models.context import PyramidPooling
from edgefuse.models.decoder import Decoder
from edgefuse.models.losses import segmentation_loss
from edgefuse.models.paths import PathSet
from edgefuse.models.resnet import LAYERS, EncoderSpec


@dataclass(frozen=True)
class ModalityInput:
    """How a modality is derived from the raw camera inputs, and which sensor it needs."""

    sensor: str  # "rgb" or "depth": which camera stream (and cost column) it belongs to
    channels: int
    make: Callable[[InputNorm, torch.Tensor, torch.Tensor], torch.Tensor]


def _gray(norm: InputNorm, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    x = norm.rgb(rgb)
    return 0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3]


def _disparity(norm: InputNorm, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    # Inverse depth relative to the dataset's mean depth: 0 at the mean, 1 at half of it;
    # invalid pixels (0 mm) stay 0, as normalised depth does.
    valid = (depth > 0).to(depth.dtype)
    return (norm.depth_mean / depth.clamp_min(1.0) - 1.0) * valid


MODALITY_INPUTS: dict[str, ModalityInput] = {
    "rgb": ModalityInput("rgb", 3, lambda n, r, d: n.rgb(r)),
    "depth": ModalityInput("depth", 1, lambda n, r, d: n.depth(d)),
    "gray": ModalityInput("rgb", 1, _gray),
    "disparity": ModalityInput("depth", 1, _disparity),
}


@dataclass
class CENOutput(SegOutput):
    """SegOutput of the ensemble plus each modality's own prediction (same order as
    `modalities`) and the ensemble weights softmax(alpha)."""

    per_modality: tuple[SegOutput, ...] = ()
    modalities: tuple[str, ...] = ()
    ensemble_weights: torch.Tensor | None = None


class Ensemble(nn.Module):
    """Per-modality predictions combined with softmax(alpha) weights (CEN eq. 4)."""

    def __init__(self, modalities: int) -> None:
        super().__init__()
        self.alpha = nn.Parameter(torch.zeros(modalities))

    def weights(self) -> torch.Tensor:
        return torch.softmax(self.alpha, dim=0)

    def forward(self, outs: list[tuple[torch.Tensor, ...]]) -> tuple[torch.Tensor, ...]:
        w = self.weights()
        return tuple(sum(w[m] * outs[m][j] for m in range(len(outs))) for j in range(len(outs[0])))


class CENSegNet(SegModel):
    def __init__(self, encoder: EncoderSpec, num_classes: int, modalities: tuple[str, ...],
                 threshold: float, decoder_channels: tuple[int, int, int], decoder_blocks: int,
                 context_bins: tuple[int, ...], norm: InputNorm) -> None:
        super().__init__()
        _check(encoder, modalities, threshold)
        self.modalities = tuple(modalities)
        self.inputs = tuple(MODALITY_INPUTS[m] for m in self.modalities)
        self.feature_names = tuple(f"{m}_feat" for m in self.modalities)
        self.paths = PathSet.full(4)
        self.norm = norm
        self.in_channels = math.lcm(*(i.channels for i in self.inputs))
        self.encoder = CENEncoder(LAYERS[encoder.arch], encoder.block, encoder.base, self.in_channels,
                                  len(self.modalities), threshold)
        # One tap per modality, named by its sensor: costs count 'depth*' parts as depth work.
        self.tap_names = tuple(f"{i.sensor}_stream_{m}" for m, i in zip(self.modalities, self.inputs))
        self.taps = nn.ModuleDict({n: Tap() for n in self.tap_names})
        stages = encoder.stage_channels
        self.context = PyramidPooling(stages[3], decoder_channels[0], context_bins)
        self.decoder = Decoder(decoder_channels[0], (stages[2], stages[1], stages[0]),
                               decoder_channels, decoder_blocks, num_classes)
        self.ensemble = Ensemble(len(self.modalities))
        self.threshold = float(threshold)
        self.encoder_spec = encoder

    # --- modality inputs and stem ------------------------------------------------------
    def modality_inputs(self, rgb: torch.Tensor | None, depth: torch.Tensor | None) -> Streams:
        """Normalised modality tensors from the raw camera inputs."""
        return [i.make(self.norm, rgb, depth) for i in self.inputs]  # type: ignore[arg-type]

    def _broaden(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if self.in_channels % c:
            raise EdgefuseError(f"a modality input has {c} channels; expected a divisor of {self.in_channels}")
        return x if c == self.in_channels else x.repeat(1, self.in_channels // c, 1, 1)

    def stem_modalities(self, xs: Streams) -> Features:
        """Stem features from already-normalised modality tensors (one per modality, in
        `modalities` order, with that modality's channel count)."""
        if len(xs) != len(self.modalities):
            raise EdgefuseError(f"CEN over {self.modalities} needs {len(self.modalities)} inputs, got {len(xs)}")
        feats = self.encoder.stem([self._broaden(x) for x in xs])
        return dict(zip(self.feature_names, feats))

    def stem(self, rgb: torch.Tensor, depth: torch.Tensor) -> Features:
        return self.stem_modalities(self.modality_inputs(rgb, depth))

    def depth_stem(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor | None:
        """The depth-sensor modalities' share of the stem (conv1 + BN), for cost accounting."""
        outs = [self.encoder.bn1.bns[m](self.encoder.conv1(self._broaden(i.make(self.norm, rgb, depth))))
                for m, i in enumerate(self.inputs) if i.sensor == "depth"]
        return torch.cat(outs, dim=1) if outs else None

    # --- the static path ----------------------------------------------------------------
    def path_parts(self, k: int) -> dict[str, nn.Module]:
        parts: dict[str, nn.Module] = {f"layer{i}": getattr(self.encoder, f"layer{i}") for i in range(1, 5)}
        parts.update(self.taps)
        parts["context"] = self.context
        parts["decoder"] = self.decoder
        parts["ensemble"] = self.ensemble
        return parts

    def run_path(self, k: int, feats: Features):
        return self.run_path_with(self.path_parts(k), k, feats)

    def run_path_with(self, parts, k: int, feats: Features):
        ens, _ = self.decode_all(parts, feats)
        return ens if self.training else ens[0]

    def decode_all(self, parts, feats: Features) -> tuple[tuple[torch.Tensor, ...], list[tuple[torch.Tensor, ...]]]:
        """Encoder with exchange, then every modality decoded by the shared decoder.
        Returns (ensemble outputs, per-modality outputs); each is (logits, *side)."""
        m = len(self.modalities)
        xs = [feats[n] for n in self.feature_names]
        taps = [parts[n] for n in self.tap_names]
        skips = []
        for i in range(1, 5):
            xs = parts[f"layer{i}"](xs, taps)
            skips.append(xs)
        # The modalities are decoded as one batch: same weights, and the decoder's BN sees
        # the same mixture of modalities in training as in eval (its running statistics
        # would otherwise average modalities it normalised separately while training).
        cat = lambda ts: torch.cat(ts, dim=0)  # noqa: E731
        out = parts["decoder"](parts["context"](cat(xs)), cat(skips[2]), cat(skips[1]), cat(skips[0]))
        outs = out if isinstance(out, tuple) else (out,)
        per_modality = [tuple(o.chunk(m, dim=0)[j] for o in outs) for j in range(m)]
        return parts["ensemble"](per_modality), per_modality

    def forward_modalities(self, xs: Streams) -> torch.Tensor | CENOutput:
        """Run on already-normalised modality tensors (any M-modality data, e.g. HHA):
        eval -> ensemble logits, train -> CENOutput."""
        feats = self.stem_modalities(xs)
        if self.training:
            return self._output(feats)
        return self.run_path(0, feats)

    def train_forward(self, rgb: torch.Tensor, depth: torch.Tensor, path: int | None = None) -> CENOutput:
        if path not in (None, 0):
            raise EdgefuseError(f"CEN is a static one-path model; got path={path}")
        return self._output(self.stem(rgb, depth))

    def _output(self, feats: Features) -> CENOutput:
        if self.is_frozen:
            raise EdgefuseError("CEN exchange masks are frozen (export mode); call "
                                "model.unfreeze_exchange() before training")
        ens, per_modality = self.decode_all(self.path_parts(0), feats)
        return CENOutput(ens[0], tuple(ens[1:]),
                         per_modality=tuple(SegOutput(o[0], tuple(o[1:])) for o in per_modality),
                         modalities=self.modalities, ensemble_weights=self.ensemble.weights())

    def load_pretrained(self, path: str) -> list[str]:
        """Load torchvision-named ImageNet ResNet weights from a local file into the shared
        encoder: convolutions once, every BN copied into each modality's private BN (the
        official CEN initialisation). conv1 is summed over the RGB channels when every
        modality is single-channel. Returns the encoder keys left uninitialised."""
        from edgefuse.models.resnet import ResNetEncoder, load_pretrained

        plain = ResNetEncoder(self.encoder_spec, 3 if self.in_channels == 3 else 1)
        missing = set(load_pretrained(plain, path))  # reads, validates, sums conv1 for 1 channel
        if self.in_channels not in (1, 3):
            raise EdgefuseError(f"ImageNet conv1 has 3 input channels; this CEN's shared conv1 has "
                                f"{self.in_channels} (modalities {self.modalities})")
        own = self.encoder.state_dict()
        state: dict[str, torch.Tensor] = {}
        for key, value in plain.state_dict().items():
            if key in missing:
                continue
            if key in own:
                state[key] = value
                continue
            module, _, leaf = key.rpartition(".")
            for m in range(len(self.modalities)):
                state[f"{module}.bns.{m}.{leaf}"] = value
        result = self.encoder.load_state_dict(state, strict=False)
        return sorted(result.missing_keys)

    # --- exchange control ---------------------------------------------------------------
    def exchanging_bns(self) -> dict[str, ExchangingBN]:
        return self.encoder.exchanging_bns()

    def exchange_masks(self) -> dict[str, torch.Tensor]:
        """Per exchanging BN (by name): M x C bool, the channels each modality takes over."""
        return {n: bn.masks() for n, bn in self.exchanging_bns().items()}

    def cen_l1_penalty(self) -> torch.Tensor:
        """Sum of |gamma| over exactly the designated 1/M part of every exchanging BN, per
        modality (the l1 term of eq. 4; multiply by lambda, paper 5e-3, official code 2e-4)."""
        return sum(bn.l1_penalty() for bn in self.exchanging_bns().values())  # type: ignore[return-value]

    def freeze_exchange(self) -> None:
        """Fix the exchange masks from the current gammas as constant buffers (export/eval)."""
        for bn in self.exchanging_bns().values():
            bn.freeze()

    def unfreeze_exchange(self) -> None:
        for bn in self.exchanging_bns().values():
            bn.unfreeze()

    @property
    def is_frozen(self) -> bool:
        return any(bn.frozen is not None for bn in self.exchanging_bns().values())


def cen_loss(out: CENOutput, target: torch.Tensor, model: CENSegNet, l1_weight: float,
             class_weights: torch.Tensor | None = None, ignore_index: int = -1) -> torch.Tensor:
    """The official CEN objective: every modality's own segmentation loss, plus the loss of
    the ensemble over *detached* members (it trains alpha only), plus l1_weight times the
    l1 penalty on the designated gammas."""
    loss = sum(segmentation_loss(o, target, class_weights, ignore_index) for o in out.per_modality)
    w = model.ensemble.weights()
    detached = [tuple(t.detach() for t in (o.logits, *o.side)) for o in out.per_modality]
    ens = tuple(sum(w[m] * d[j] for m, d in enumerate(detached)) for j in range(len(detached[0])))
    loss = loss + segmentation_loss(SegOutput(ens[0], tuple(ens[1:])), target, class_weights, ignore_index)
    return loss + l1_weight * model.cen_l1_penalty()


def _check(encoder: EncoderSpec, modalities: tuple[str, ...], threshold: float) -> None:
    if encoder.block not in CEN_BLOCKS:
        raise ConfigError(f"CEN supports blocks {sorted(CEN_BLOCKS)} (resnet18/34 'basic', resnet50 "
                          f"'bottleneck'), got {encoder.block!r}")
    unknown = [m for m in modalities if m not in MODALITY_INPUTS]
    if unknown:
        raise ConfigError(f"unknown CEN modalities {unknown}; valid: {sorted(MODALITY_INPUTS)}")
    if len(modalities) < 2:
        raise ConfigError(f"CEN needs at least 2 modalities, got {list(modalities)}")
    if len(set(modalities)) != len(modalities):
        raise ConfigError(f"CEN modalities must be distinct, got {list(modalities)}")
    if not threshold > 0:
        raise ConfigError(f"CEN threshold must be > 0, got {threshold}")


def build_cen(cfg: ModelConfig) -> CENSegNet:
    return CENSegNet(EncoderSpec(cfg.encoder, cfg.block, cfg.width), cfg.num_classes,
                     tuple(cfg.cen.modalities), cfg.cen.threshold, cfg.decoder_channels,
                     cfg.decoder_blocks, cfg.context_bins,
                     InputNorm(cfg.rgb_mean, cfg.rgb_std, cfg.depth_mean, cfg.depth_std, cfg.depth_mode))
