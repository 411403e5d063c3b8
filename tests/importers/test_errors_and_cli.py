"""`edgefuse import` / `edgefuse info CHECKPOINT` as a user meets them: what is written and
shown, and a one-line error (exit 2) for each file that cannot be imported."""

import json
import pickle

import pytest
import torch

from edgefuse.cli.main import main
from edgefuse.errors import EdgefuseError
from edgefuse.importers import import_checkpoint
from edgefuse.importers.datasets import bit_interleaved_palette, dataset_preset
from edgefuse.models.registry import get_config
from tests.importers.conftest import SMALL, official_state

R18 = "esanet-r18-nyuv2"


@pytest.fixture(scope="module")
def r18_state():
    return official_state(R18)


def _import(source, path, capsys, *extra):
    code = main(["import", source, str(path), "--out", str(path.with_suffix(".safetensors")),
                 "--input-size", f"{SMALL[0]}x{SMALL[1]}", *extra])
    return code, capsys.readouterr()


def test_import_then_info_shows_provenance_and_preprocessing(r18_state, write_official, capsys, tmp_path):
    path = write_official(r18_state)
    code, out = _import("esanet", path, capsys, "--depth-mode", "refined", "--commit", "f72ea8a")
    assert code == 0, out.err
    assert "resnet18 BasicBlock encoders" in out.out and "nyuv2 (40 classes" in out.out
    assert "2841.94941272766" in out.out and "normalised like any value" in out.out
    written = path.with_suffix(".safetensors")
    assert main(["info", str(written), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["model"] == "esanet-r18-nyuv2" and info["num_classes"] == 40
    assert info["classes"][:2] == ["wall", "floor"]
    assert info["preprocessing"]["depth_mode"] == "refined"
    assert info["preprocessing"]["depth_mean"] == 2841.94941272766
    imp = info["imported"]
    assert imp["repository"] == "https://github.com/TUI-NICR/ESANet" and imp["commit"] == "f72ea8a"
    assert imp["file"] == path.name and len(imp["file_sha256"]) == 64 and imp["dataset"] == "nyuv2"
    assert main(["info", str(written)]) == 0
    text = capsys.readouterr().out
    assert "imported from https://github.com/TUI-NICR/ESANet (commit f72ea8a)" in text and "mode refined" in text
    # an existing --out is kept unless --force
    assert _import("esanet", path, capsys)[0] == 2


def test_export_carries_palette_classes_and_depth_mode(r18_state, write_official, capsys, tmp_path):
    """What export writes for the runtime and the ROS node: the dataset's palette and class
    list, and the depth convention (the normalisation itself is inside stem_gate.onnx)."""
    # the NYUv2 layout cut to 37 classes: every per-class tensor is a SUN RGB-D model's
    per_class = ("decoder.conv_out.", "decoder.upsample1.", "decoder.upsample2.", "side_output.")
    state = {k: v[:37] if any(p in k for p in per_class) else v for k, v in r18_state.items()}
    path = write_official(state, "sun.pth")
    assert _import("esanet", path, capsys, "--depth-mode", "refined")[0] == 0   # 37 classes: SUN RGB-D
    bundle = tmp_path / "b"
    assert main(["export", str(path.with_suffix(".safetensors")), "--out", str(bundle), "--verify-frames", "1"]) == 0
    capsys.readouterr()
    m = json.loads((bundle / "manifest.json").read_text())
    sun = dataset_preset("sunrgbd")
    assert [tuple(c) for c in m["palette"]] == list(sun.palette) and tuple(m["classes"]) == sun.classes
    assert m["normalization"]["depth_mode"] == "refined"
    assert m["normalization"]["depth_mean"] == 19025.14930492213 / 8
    assert m["model"]["context_bn"] is True
    assert main(["inspect", str(bundle)]) == 0
    assert "refined (every depth value normalised" in capsys.readouterr().out.replace("\n", " ")
    # the whole user path: `edgefuse run` on PNG frames with depth holes writes the imported
    # model's argmax + 1 (the refined convention applied inside the exported graph)
    import numpy as np
    from PIL import Image

    from edgefuse.checkpoint import load_model

    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (*SMALL, 3), dtype=np.uint8)
    depth = rng.integers(500, 5000, SMALL).astype(np.uint16)
    depth[:, :50] = 0
    for sub, img in (("rgb", rgb), ("depth", depth)):
        (tmp_path / "cam" / sub).mkdir(parents=True)
        Image.fromarray(img).save(tmp_path / "cam" / sub / "0000.png")
    assert main(["run", "--bundle", str(bundle), "--camera", f"folder:{tmp_path / 'cam'}",
                 "--save-masks", str(tmp_path / "masks")]) == 0
    mask = np.asarray(Image.open(tmp_path / "masks" / "000000_labels.png"))
    model = load_model(str(path.with_suffix(".safetensors"))).model
    with torch.no_grad():
        logits = model(torch.from_numpy(rgb).permute(2, 0, 1)[None].float(),
                       torch.from_numpy(depth.astype(np.float32))[None, None])
    assert (mask == logits[0].argmax(0).numpy() + 1).mean() > 0.999


def test_nyuv2_palette_is_the_bit_interleaved_colour_map():
    pal = dataset_preset("nyuv2").palette
    assert pal[:4] == ((0, 0, 0), (128, 0, 0), (0, 128, 0), (128, 128, 0)) == bit_interleaved_palette(4)
    assert len(set(pal)) == 41


def test_existing_configs_serialise_as_before():
    """New options are left out of to_dict at their defaults (shipped cards, old manifests)."""
    d = get_config("dynmm-r50").to_dict()
    assert not {"context_bn", "depth_mode", "gate_style", "palette"} & set(d)
    changed = get_config("dynmm-r50", context_bn=True, depth_mode="refined", gate_style="dynmm").to_dict()
    assert (changed["context_bn"], changed["depth_mode"], changed["gate_style"]) == (True, "refined", "dynmm")
    assert get_config("dynmm-r50").with_(**{"gate_style": "dynmm"}).gate_style == "dynmm"


def _one_line_error(capsys, argv, *says):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 3   # one message, wrapped at most
    for s in says:
        assert s in err.replace("\n", " "), err
    return err


def test_truncated_file_is_one_line(r18_state, write_official, capsys, tmp_path):
    path = write_official(r18_state)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _one_line_error(capsys, ["import", "esanet", str(cut), "--out", str(tmp_path / "o.safetensors")],
                    "truncated")


class Payload:   # a class a malicious pickle would make the loader import
    def __reduce__(self):
        return (print, ("ran code",))


def test_pickle_needing_code_is_refused(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "hook": Payload()}, path, pickle_protocol=pickle.HIGHEST_PROTOCOL)
    err = _one_line_error(capsys, ["import", "esanet", str(path), "--out", str(tmp_path / "o.safetensors")],
                          "never unpickles")
    assert "ran code" not in capsys.readouterr().out + err


def test_missing_parameter_is_named(r18_state, write_official, capsys, tmp_path):
    state = {k: v for k, v in r18_state.items() if not k.startswith("decoder.decoder_module_2.decoder_blocks.0.bn2")}
    path = write_official(state)
    _one_line_error(capsys, ["import", "esanet", str(path), "--out", str(tmp_path / "o.safetensors")],
                    "decoder.decoder_module_2.decoder_blocks.0.bn2")


@pytest.mark.parametrize("drop, says", [
    ("se_layer", "without squeeze-excitation"),
    ("decoder.upsample1.", "learned upsampling"),
    ("encoder_depth.layer3", "encoder_depth stage 3"),
    ("context_module", "context module"),
])
def test_architectures_edgefuse_cannot_reproduce_are_named(r18_state, write_official, capsys, tmp_path, drop, says):
    path = write_official({k: v for k, v in r18_state.items() if not k.startswith(drop)})
    _one_line_error(capsys, ["import", "esanet", str(path), "--out", str(tmp_path / "o.safetensors")], says)


def test_wrong_source_or_dataset(r18_state, write_official, capsys, tmp_path):
    path = write_official(r18_state)
    out = str(tmp_path / "o.safetensors")
    _one_line_error(capsys, ["import", "dynmm", str(path), "--out", out], "edgefuse import esanet")
    _one_line_error(capsys, ["import", "esanet", str(path), "--out", out, "--dataset", "sunrgbd"], "40 classes")
    _one_line_error(capsys, ["import", "cen", str(path), "--out", out], "RefineNet")
    _one_line_error(capsys, ["import", "esanet", str(path), "--out", out, "--dataset", "cityscapes"], "appm")
    _one_line_error(capsys, ["import", "esanet", str(path), "--out", str(tmp_path / "o.pt")], ".safetensors")
    _one_line_error(capsys, ["import", "esanet", str(tmp_path / "nope.pth"), "--out", out], "not found")
    _one_line_error(capsys, ["info", str(path)], "edgefuse import")


def test_bare_state_dict_and_module_prefix_are_read(r18_state, tmp_path):
    """Checkpoints saved as a bare state dict, or from DataParallel ('module.' names)."""
    path = tmp_path / "bare.pth"
    torch.save({f"module.{k}": v for k, v in r18_state.items()}, path)
    imported = import_checkpoint("esanet", path, input_size=SMALL)
    assert torch.equal(imported.model.state_dict()["decoder.classifier.weight"], r18_state["decoder.conv_out.weight"])


def test_numpy_scalars_in_the_checkpoint_are_data(r18_state, tmp_path):
    """save_ckpt_every_epoch also stores best_miou, a numpy float: loaded as data, not refused."""
    import numpy as np

    path = tmp_path / "latest.pth"
    torch.save({"epoch": 10, "state_dict": r18_state, "best_miou": np.float64(0.503), "best_miou_epoch": 9}, path)
    from edgefuse.importers.reader import read_state_dict

    assert read_state_dict(path).keys() == r18_state.keys()


def test_appm_context_is_refused_with_its_name(r18_state, tmp_path):
    state = {k.replace("context_module.features.0.1.", "context_module.features.0."): v for k, v in r18_state.items()}
    path = tmp_path / "appm.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(EdgefuseError, match="appm"):
        import_checkpoint("esanet", path)
