"""`edgefuse data synth` writes a dataset the loader reads."""


import open3d  # noqa: F401 - a dev extra (make test installs it): missing, this fails

from edgefuse.cli.main import main  # noqa: E402
from edgefuse.data.dataset import SegmentationDataset  # noqa: E402


def test_data_synth_cli(tmp_path):
    out = tmp_path / "synth"
    rc = main(["data", "synth", "--out", str(out), "--frames", "4", "--seed", "1", "--size", "32x48",
               "--test-fraction", "0.25", "--workers", "1"])
    assert rc == 0
    train, test = SegmentationDataset(out, "train"), SegmentationDataset(out, "test")
    assert (len(train), len(test)) == (3, 1)
    assert tuple(train[0]["rgb"].shape) == (3, 32, 48)
    # a second run needs --overwrite, and leaves no stale frame from the first behind
    args = ["data", "synth", "--out", str(out), "--frames", "2", "--size", "32x48", "--workers", "1"]
    assert main(args) == 2
    assert main(args + ["--overwrite"]) == 0
    assert sorted(p.name for p in (out / "train" / "rgb").iterdir()) == ["000000.png", "000001.png"]
    assert main(["data", "preview", str(out), "--split", "train", "--out", str(tmp_path / "p.png")]) == 0
    from edgefuse.data.layout import read_image

    assert read_image(tmp_path / "p.png").shape == (2 * 32, 3 * 48, 3)


def test_data_synth_cli_errors(tmp_path):
    assert main(["data", "synth", "--out", str(tmp_path / "x"), "--frames", "0"]) == 2
    assert main(["data", "synth", "--out", str(tmp_path / "y"), "--size", "32by48"]) == 2
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file.txt").write_text("someone's data")
    assert main(["data", "synth", "--out", str(tmp_path / "busy"), "--frames", "1"]) == 2
