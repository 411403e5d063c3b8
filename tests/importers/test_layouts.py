"""The name mapping, checked against the state-dict names and shapes recorded from the
official ESANet and DynMM code (benchmarks/vs_official_import.py --write-facts): every
official tensor lands in a tensor of the same shape of the edgefuse model the importer
builds, and every edgefuse tensor is filled."""

import pytest
import torch

from edgefuse.importers import esanet_layout as layout
from edgefuse.importers import import_checkpoint
from tests.importers.conftest import LAYOUTS, SMALL, VARIANTS, official_state

EXPECTED = {   # what each recorded variant is (the official arguments it was built with)
    "esanet-r34-nbt1d-nyuv2": ("resnet34", "nbt1d", 40, 0),
    "esanet-r34-nbt1d-sunrgbd": ("resnet34", "nbt1d", 37, 0),
    "esanet-r50-nyuv2": ("resnet50", "bottleneck", 40, 0),
    "esanet-r18-nyuv2": ("resnet18", "basic", 40, 0),
    "dynmm-r50-nyuv2": ("resnet50", "bottleneck", 40, 5),
}


def test_every_recorded_variant_is_known():
    assert sorted(EXPECTED) == VARIANTS


@pytest.mark.parametrize("variant", VARIANTS)
def test_recognise_reads_the_architecture_from_names_and_shapes(variant):
    found = layout.recognise(official_state(variant))
    assert (found.encoder, found.block, found.num_classes, found.gate_paths) == EXPECTED[variant]
    # the official training script's defaults: decoder [512, 256, 128] x 3 blocks, ppm (1, 5)
    assert found.decoder_channels == (512, 256, 128) and found.decoder_blocks == 3
    assert found.context_bins == (1, 5)


@pytest.mark.parametrize("variant", VARIANTS)
def test_names_map_one_to_one(variant):
    names = [n for n, _ in LAYOUTS["variants"][variant]]
    mapped = [layout.to_edgefuse_name(n) for n in names]
    assert None not in mapped and len(set(mapped)) == len(names)
    assert [layout.to_official_name(m) for m in mapped] == names


@pytest.mark.parametrize("variant", VARIANTS)
def test_import_fills_every_tensor_of_the_model(variant, write_official):
    state = official_state(variant, seed=1)
    source = "dynmm" if variant.startswith("dynmm") else "esanet"
    imported = import_checkpoint(source, write_official(state), input_size=SMALL)
    ours = imported.model.state_dict()
    for name, tensor in state.items():
        assert torch.equal(ours[layout.to_edgefuse_name(name)], tensor), name
    # the only tensors not from the checkpoint are the input normalisation's
    assert set(ours) - {layout.to_edgefuse_name(n) for n in state} == set(layout.EDGEFUSE_ONLY)
    cfg = imported.config
    assert cfg.context_bn and cfg.depth_mode == "raw" and cfg.num_classes == EXPECTED[variant][2]
    assert len(cfg.palette) == cfg.num_classes + 1 and len(cfg.class_names) == cfg.num_classes
