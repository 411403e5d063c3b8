"""RGB-D fusion segmentation network: ESANet's two-encoder design with fusion cells whose
use is decided per path. Static ESANet is the one-path set {(1,1,1,1)}; fusion-level DynMM
is a multi-path set with a conv gate on the stem features (DynMM Sec. 3.2, Fig. 3).

A path computes only what it uses: depth stages after its last fused cell and the SE
blocks of cells it does not fuse are never called (masking by zero would be a defect).
"""

from __future__ import annotations

import torch
from torch import nn

from edgefuse.errors import ConfigError
from edgefuse.models.base import Features, InputNorm, SegModel, SegOutput, as_seg_output, gated_train_forward
from edgefuse.models.context import PyramidPooling
from edgefuse.models.decoder import Decoder
from edgefuse.models.fusion import SEAdd
from edgefuse.models.gates import ConvGate
from edgefuse.models.path_bn import make_per_path, use_path
from edgefuse.models.paths import PathSet
from edgefuse.models.resnet import EncoderSpec, ResNetEncoder


class FusionSegNet(SegModel):
    feature_names = ("rgb_feat", "depth_feat")

    def __init__(self, encoder: EncoderSpec, num_classes: int, paths: PathSet,
                 decoder_channels: tuple[int, int, int], decoder_blocks: int,
                 context_bins: tuple[int, ...], norm: InputNorm, gate_hidden: int = 8,
                 context_bn: bool = False, gate_style: str = "edgefuse", per_path_bn: bool = False) -> None:
        super().__init__()
        if paths.cells != 4:
            raise ValueError(f"ResNet fusion networks have 4 fusion cells; path set has {paths.cells}")
        self.paths = paths
        self.norm = norm
        self.encoder_rgb = ResNetEncoder(encoder, 3)
        self.encoder_depth = ResNetEncoder(encoder, 1)
        stem_c, stages = self.encoder_rgb.stem_channels, self.encoder_rgb.stage_channels
        self.fuse0 = SEAdd(stem_c)
        self.fuse = nn.ModuleList(SEAdd(c) for c in stages)
        self.context = PyramidPooling(stages[3], decoder_channels[0], context_bins, context_bn)
        self.decoder = Decoder(decoder_channels[0], (stages[2], stages[1], stages[0]),
                               decoder_channels, decoder_blocks, num_classes)
        self.gate_net = (ConvGate(2 * stem_c, len(paths), gate_hidden, gate_style)
                         if len(paths) > 1 else None)
        self.per_path_bn = bool(per_path_bn)
        if per_path_bn:
            self._make_per_path_bn()
        # Gated training state (set by the trainer): see `train_forward`.
        self.gate_mode = "gumbel_hard"
        self.tau = 1.0

    def _make_per_path_bn(self) -> None:
        """A BatchNorm set per path in every layer whose input differs between paths: the RGB
        stages after the first fusion cell where the paths' decisions differ, the context
        module and the decoder. The stems, the depth encoder (never fed RGB) and the RGB
        stages before that cell see the same input on every path and stay shared."""
        first = next((i for i in range(self.paths.cells) if len({d[i] for d in self.paths}) > 1), None)
        if first is None:
            raise ConfigError("per_path_bn needs paths that differ (e.g. paths: progressive); this path set "
                              "has one decision per cell on every path: drop per_path_bn")
        for i in range(first + 2, 5):      # cell `first` (0-based) fuses after RGB stage first + 1
            make_per_path(getattr(self.encoder_rgb, f"layer{i}"), len(self.paths))
        make_per_path(self.context, len(self.paths))
        make_per_path(self.decoder, len(self.paths))

    # --- stem and gate ------------------------------------------------------------------
    def stem(self, rgb: torch.Tensor, depth: torch.Tensor) -> Features:
        r = self.encoder_rgb.stem(self.norm.rgb(rgb))
        d = self.encoder_depth.stem(self.norm.depth(depth))
        # The stem fusion always runs (ESANet, DynMM), before max-pooling.
        return {"rgb_feat": self.fuse0.pooled(r, d, ResNetEncoder.pool), "depth_feat": ResNetEncoder.pool(d)}

    def gate(self, feats: Features) -> torch.Tensor | None:
        if self.gate_net is None:
            return None
        # = gate_net(cat([rgb_feat, depth_feat], dim=1)), without the concatenation
        return self.gate_net.forward_parts(feats["rgb_feat"], feats["depth_feat"])

    def depth_stem(self, rgb: torch.Tensor, depth: torch.Tensor) -> torch.Tensor | None:
        """The depth encoder's share of the stem (for the depth-encoder cost column)."""
        return self.encoder_depth.stem(self.norm.depth(depth))

    # --- paths --------------------------------------------------------------------------
    def path_inputs(self, k: int) -> tuple[str, ...]:
        return self.feature_names if PathSet.depth_stages(self.paths[k]) else ("rgb_feat",)

    def path_parts(self, k: int) -> dict[str, nn.Module]:
        decision = self.paths[k]
        parts: dict[str, nn.Module] = {}
        for i in range(1, 5):
            parts[f"rgb{i}"] = getattr(self.encoder_rgb, f"layer{i}")
        for i in range(1, PathSet.depth_stages(decision) + 1):
            parts[f"depth{i}"] = getattr(self.encoder_depth, f"layer{i}")
        for i, fused in enumerate(decision):
            if fused:
                parts[f"fuse{i + 1}"] = self.fuse[i]
        parts["context"] = self.context
        parts["decoder"] = self.decoder
        return parts

    def run_path(self, k: int, feats: Features):
        return self.run_path_with(self.path_parts(k), k, feats)

    def run_path_with(self, parts: nn.ModuleDict | dict, k: int, feats: Features):
        if not self.per_path_bn:
            return self._run_path_with(parts, k, feats)
        with use_path(parts.values(), k):   # per-path BatchNorm: path k's set
            return self._run_path_with(parts, k, feats)

    def _run_path_with(self, parts: nn.ModuleDict | dict, k: int, feats: Features):
        decision = self.paths[k]
        r, d = feats["rgb_feat"], feats.get("depth_feat")
        skips = []
        for i in range(1, 5):
            r = parts[f"rgb{i}"](r)
            if f"depth{i}" in parts:
                d = parts[f"depth{i}"](d)
            if decision[i - 1]:
                r = parts[f"fuse{i}"](r, d)
            skips.append(r)
        return parts["decoder"](parts["context"](r), skips[2], skips[1], skips[0])

    # --- gated training -------------------------------------------------------------------
    def train_forward(self, rgb: torch.Tensor, depth: torch.Tensor, path: int | None = None) -> SegOutput:
        """Training forward. Modes (self.gate_mode):
        - 'random': stage I, a uniformly random path per sample (DynMM Sec. 3.4);
        - 'gumbel_hard': straight-through Gumbel-softmax, each sample runs only its path and
          its output is scaled by the one-hot weight (1 forward, soft gradient backward);
        - 'gumbel_soft': every path runs and outputs are blended by the soft weights;
        - 'supervised': every path runs and trains on its own loss; the gate learns to
          predict the per-sample path losses (models/base.py gated_train_forward).
        `path` forces one path for all samples (static training of one path)."""
        feats = self.stem(rgb, depth)
        if not self.is_dynamic or path is not None:
            return as_seg_output(self.run_path(path or 0, feats))
        return gated_train_forward(self, feats, self.gate_mode, self.tau)
