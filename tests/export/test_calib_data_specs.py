"""`edgefuse export --precision int8 --calib-data SPEC`: a camera source spec (here a
folder: spec of frames at another size than the bundle's) calibrates the int8 graphs, the
manifest names the source without directories, and a spec that cannot be opened is a
clean CLI error."""

from __future__ import annotations

import json

import numpy as np

from edgefuse.cli.main import main
from edgefuse.export.bundle import load_bundle

SIZE = (64, 128)


def test_int8_export_calibrates_on_a_folder_spec(dynmm_checkpoint, tiny_dataset, tmp_path, capsys):
    from PIL import Image

    root = tiny_dataset(frames=4, size=(48, 64))          # another size: resized like the runtime does
    out = tmp_path / "b8"
    rc = main(["export", str(dynmm_checkpoint), "--out", str(out), "--precision", "int8", "--paths", "0,4",
               "--calib-data", f"folder:{root}:train", "--calib-frames", "3",
               "--verify-data", "procedural", "--verify-frames", "1"])
    assert rc == 0, capsys.readouterr().err
    m = load_bundle(out).manifest
    assert m.precision == "int8"
    assert m.calibration["frames"] == 3
    assert m.calibration["source"] == f"folder:{root.name}:train"   # no directories in the bundle
    assert str(root.parent) not in (out / "manifest.json").read_text()
    assert json.loads((out / "verify.json").read_text())["passed"]
    assert np.asarray(Image.open(root / "train" / "rgb" / "0000.png")).shape[:2] == (48, 64)


def test_unopenable_calib_spec_is_a_clean_error(dynmm_checkpoint, tmp_path, capsys):
    missing = tmp_path / "nope.db3"
    rc = main(["export", str(dynmm_checkpoint), "--out", str(tmp_path / "b8"), "--precision", "int8",
               "--paths", "4", "--calib-data", f"bag:{missing}", "--calib-frames", "2",
               "--verify-data", "procedural", "--verify-frames", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "could not be opened" in err and "nope.db3" in err and "Traceback" not in err
    assert not (tmp_path / "b8").exists()
