"""ESANet's state-dict layout (TUI-NICR/ESANet), also that of DynMM's fusion-level model
(zihuixue/DynMM, ESANet with a gate): recognising the architecture from the names and
shapes, and renaming parameters to and from edgefuse's fusion network.

Every rename is a prefix rewrite; the table is built for the indices the architectures
use, so the mapping is a bijection between the official names and edgefuse's (the inverse
writes edgefuse models in the official layout, which the tests round-trip).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from edgefuse.errors import EdgefuseError
from edgefuse.models.resnet import LAYERS

# edgefuse parameters that the official models do not have: the input normalisation is
# part of edgefuse's graph (its buffers come from the dataset preset, not the checkpoint).
EDGEFUSE_ONLY = ("norm.rgb_scale", "norm.rgb_shift")

CONTEXT_BINS = {2: (1, 5), 4: (1, 2, 4, 8)}   # ESANet's 'ppm' and 'ppm-1-2-4-8'


def _prefix_pairs(max_bins: int = 8) -> list[tuple[str, str]]:
    """(official prefix, edgefuse prefix) for every renamed part."""
    pairs = [("encoder_rgb.", "encoder_rgb."), ("encoder_depth.", "encoder_depth.")]
    for n in range(5):
        dst = "fuse0" if n == 0 else f"fuse.{n - 1}"
        for m in ("se_rgb", "se_depth"):
            # official SE: fc = [conv, act, conv, sigmoid], pooling in forward;
            # edgefuse's fc starts with the pooling layer
            pairs += [(f"se_layer{n}.{m}.fc.0.", f"{dst}.{m}.fc.1."), (f"se_layer{n}.{m}.fc.2.", f"{dst}.{m}.fc.3.")]
    for k, res in ((1, 4), (2, 8), (3, 16)):
        pairs += [(f"skip_layer{k}.0.conv.", f"decoder.skip{res}.0."), (f"skip_layer{k}.0.bn.", f"decoder.skip{res}.1.")]
        mod, dst = f"decoder.decoder_module_{k}.", f"decoder.module{k}."
        pairs += [(mod + "conv3x3.conv.", dst + "conv.0."), (mod + "conv3x3.bn.", dst + "conv.1."),
                  (mod + "decoder_blocks.", dst + "blocks."), (mod + "upsample.conv.", dst + "up.conv."),
                  (mod + "side_output.", dst + "side.")]
    for i in range(max_bins):
        pairs += [(f"context_module.features.{i}.1.conv.", f"context.branches.{i}.0."),
                  (f"context_module.features.{i}.1.bn.", f"context.branches.{i}.1.")]
    pairs += [("context_module.final_conv.conv.", "context.final.0."),
              ("context_module.final_conv.bn.", "context.final.1."),
              ("decoder.conv_out.", "decoder.classifier."),
              ("decoder.upsample1.conv.", "decoder.up1.conv."), ("decoder.upsample2.conv.", "decoder.up2.conv."),
              # DynMM's GlobalGate: conv = [conv, BN, tanh, conv, BN, tanh], fc = 1x1 head
              ("gate_layer.conv.0.", "gate_net.features.0."), ("gate_layer.conv.1.", "gate_net.features.1."),
              ("gate_layer.conv.3.", "gate_net.features.3."), ("gate_layer.conv.4.", "gate_net.features.4."),
              ("gate_layer.fc.", "gate_net.head.")]
    return pairs


_PAIRS = _prefix_pairs()


def _rename(name: str, pairs: list[tuple[str, str]]) -> str | None:
    for src, dst in pairs:
        if name.startswith(src):
            return dst + name[len(src):]
    return None


def to_edgefuse_name(name: str) -> str | None:
    """The edgefuse name of an official parameter, None if it has none."""
    return _rename(name, _PAIRS)


def to_official_name(name: str) -> str | None:
    return _rename(name, [(b, a) for a, b in _PAIRS])


@dataclass(frozen=True)
class Found:
    """What a state dict says about its architecture."""

    encoder: str
    block: str
    num_classes: int
    decoder_channels: tuple[int, int, int]
    decoder_blocks: int
    context_bins: tuple[int, ...]
    gate_paths: int          # 0: static ESANet; else DynMM's gate over this many paths
    gate_hidden: int = 8

    def describe(self) -> str:
        blocks = {"nbt1d": "NonBottleneck1D", "basic": "BasicBlock", "bottleneck": "Bottleneck"}[self.block]
        gate = f", DynMM gate over {self.gate_paths} progressive paths" if self.gate_paths else ""
        return (f"{self.encoder} {blocks} encoders (RGB and depth), SE-add fusion after the stem and "
                f"stages 1-4, pyramid pooling bins {self.context_bins}, decoder {list(self.decoder_channels)} "
                f"x {self.decoder_blocks} NonBottleneck1D, learned x2 upsampling, {self.num_classes} classes{gate}")


def _need(state: dict[str, torch.Tensor], key: str, what: str) -> torch.Tensor:
    if key not in state:
        raise EdgefuseError(f"not an ESANet-layout checkpoint, or a truncated one: {what} ({key}) is missing")
    return state[key]


def _stage_depths(state: dict[str, torch.Tensor], encoder: str) -> tuple[int, ...]:
    depths = []
    for i in range(1, 5):
        blocks = {int(m.group(1)) for k in state if (m := re.match(rf"{encoder}\.layer{i}\.(\d+)\.", k))}
        if not blocks:
            raise EdgefuseError(f"not an ESANet-layout checkpoint, or a truncated one: {encoder} stage {i} "
                                f"({encoder}.layer{i}.*) is missing")
        depths.append(max(blocks) + 1)
    return tuple(depths)


def _block(state: dict[str, torch.Tensor], encoder: str) -> str:
    for key, block in (("conv3x1_1", "nbt1d"), ("conv3", "bottleneck"), ("conv2", "basic")):
        if f"{encoder}.layer1.0.{key}.weight" in state:
            return block
    raise EdgefuseError(f"{encoder}.layer1.0 is neither a BasicBlock, a NonBottleneck1D nor a Bottleneck")


def _encoder(state: dict[str, torch.Tensor], encoder: str) -> tuple[str, str]:
    depths, block = _stage_depths(state, encoder), _block(state, encoder)
    archs = [a for a, d in LAYERS.items() if d == depths and (a == "resnet50") == (block == "bottleneck")]
    if not archs:
        raise EdgefuseError(f"{encoder} has stages of {list(depths)} {block} blocks: not a ResNet-18/34/50")
    return archs[0], block


def recognise(state: dict[str, torch.Tensor]) -> Found:
    """The architecture a state dict in ESANet's layout describes; one-line errors for what
    edgefuse cannot reproduce exactly, or what is missing."""
    _need(state, "encoder_rgb.conv1.weight", "the RGB encoder's first convolution")
    stem = _need(state, "encoder_depth.conv1.weight", "the depth encoder's first convolution")
    if stem.shape[1] != 1 or stem.shape[0] != 64:
        raise EdgefuseError(f"encoder_depth.conv1 has shape {tuple(stem.shape)}; ESANet's depth encoder takes "
                            "1 channel into 64")
    rgb, depth = _encoder(state, "encoder_rgb"), _encoder(state, "encoder_depth")
    if rgb != depth:
        raise EdgefuseError(f"the RGB encoder is {rgb[0]}/{rgb[1]} but the depth encoder {depth[0]}/{depth[1]}: "
                            "edgefuse's fusion network uses one encoder type for both")
    if "se_layer0.se_rgb.fc.0.weight" not in state:
        raise EdgefuseError("this model fuses depth without squeeze-excitation (fuse_depth_in_rgb_encoder 'add' "
                            "or 'None'; no se_layer0.*): edgefuse reproduces ESANet's SE-add fusion only")
    for n in range(5):
        _need(state, f"se_layer{n}.se_depth.fc.2.weight", f"fusion {n}'s depth squeeze-excitation")
    if "context_module.features.0.conv.weight" in state:
        raise EdgefuseError("this model uses adaptive pyramid pooling ('appm', ESANet's Cityscapes setting): "
                            "not supported yet; models with 'ppm' (NYUv2, SUN RGB-D) are")
    branches = {int(m.group(1)) for k in state if (m := re.match(r"context_module\.features\.(\d+)\.1\.conv\.", k))}
    if not branches:
        raise EdgefuseError("no pyramid-pooling context module (context_module.features.*): ESANet's 'ppm' "
                            "context module is required (context_module 'None' is not supported)")
    if len(branches) not in CONTEXT_BINS:
        raise EdgefuseError(f"the context module has {len(branches)} branches; ESANet's ppm has 2 or 4")
    _need(state, "context_module.final_conv.conv.weight", "the context module's final convolution")
    channels, blocks = [], []
    for k in (1, 2, 3):
        w = _need(state, f"decoder.decoder_module_{k}.conv3x3.conv.weight", f"decoder module {k}")
        channels.append(int(w.shape[0]))
        js = {int(m.group(1)) for key in state
              if (m := re.match(rf"decoder\.decoder_module_{k}\.decoder_blocks\.(\d+)\.", key))}
        blocks.append(max(js) + 1 if js else 0)
    if len(set(blocks)) != 1:
        raise EdgefuseError(f"decoder modules have {blocks} blocks; edgefuse's decoder uses one count for all three")
    for k in (1, 2, 3):
        _need(state, f"decoder.decoder_module_{k}.upsample.conv.weight",
              f"decoder module {k}'s learned upsampling (models trained with --upsampling bilinear or nearest "
              "are not supported)")
    classes = _need(state, "decoder.conv_out.weight", "the classifier")
    for k in (1, 2):
        _need(state, f"decoder.upsample{k}.conv.weight", f"the classifier's learned upsampling {k}")
    gate_paths, hidden = 0, 8
    if "gate_layer.fc.weight" in state:
        gate_paths = int(state["gate_layer.fc.weight"].shape[0])
        first = _need(state, "gate_layer.conv.0.weight", "the gate's first convolution")
        hidden = int(first.shape[0])
        if gate_paths != 5:
            raise EdgefuseError(f"the gate chooses among {gate_paths} paths; DynMM's fusion-level gate has 5 "
                                "(progressive: path k fuses in stages 1..k)")
    return Found(rgb[0], rgb[1], int(classes.shape[0]), tuple(channels), blocks[0],  # type: ignore[arg-type]
                 CONTEXT_BINS[len(branches)], gate_paths, hidden)


def to_edgefuse_state(state: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `state` (official layout) to edgefuse's names, checked against `target` (the
    state dict of the edgefuse model built from `recognise`): every official tensor must have
    a place of the same shape, and every edgefuse tensor a source."""
    out: dict[str, torch.Tensor] = {}
    unknown = []
    for name, tensor in state.items():
        new = to_edgefuse_name(name)
        if new is None or new not in target:
            unknown.append(name)
            continue
        if tuple(target[new].shape) != tuple(tensor.shape):
            raise EdgefuseError(f"{name} has shape {tuple(tensor.shape)} where the recognised architecture needs "
                                f"{tuple(target[new].shape)}: the checkpoint mixes architectures")
        out[new] = tensor.detach().clone().to(target[new].dtype)
    if unknown:
        raise EdgefuseError(f"{len(unknown)} parameter(s) of the checkpoint have no place in the recognised "
                            f"architecture, e.g. {', '.join(unknown[:3])}")
    missing = [k for k in target if k not in out and k not in EDGEFUSE_ONLY]
    if missing:
        official = [to_official_name(k) or k for k in missing]
        raise EdgefuseError(f"the checkpoint is truncated or of another architecture: {len(missing)} parameter(s) "
                            f"missing, e.g. {', '.join(official[:3])}")
    return out


def to_official_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """An edgefuse fusion network's state dict in the official layout (for round trips)."""
    out = {}
    for name, tensor in state.items():
        if name in EDGEFUSE_ONLY:
            continue
        new = to_official_name(name)
        if new is None:
            raise EdgefuseError(f"edgefuse parameter {name} has no place in ESANet's layout")
        out[new] = tensor
    return out
