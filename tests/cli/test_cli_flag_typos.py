"""A typo in a flag's value ends with one line saying what is valid, exit 2 (issue 9).
(run / bench need a bundle: tests/runtime/test_run_flag_typos.py; more export cases:
tests/export/test_cli.py.)"""

from __future__ import annotations

import pytest

from edgefuse.cli.main import main


@pytest.mark.parametrize("argv, says", [
    (["info", "dynmm-tiny", "--input-size", "12"], ["--input-size '12'", "HxW", "480x640"]),
    (["info", "--input-size", "480x640"], ["needs a model", "edgefuse info NAME"]),
    (["data", "synth", "--out", "{tmp}/s", "--size", "12"], ["--size '12'", "HxW"]),
    (["export", "dynmm-tiny", "--out", "{tmp}/b", "--precision", "fp64"], ["fp32", "fp16", "int8"]),
    (["export", "dynmm-tiny", "--out", "{tmp}/b", "--backend", "bogus"], ["onnx", "tensorrt"]),
    (["import", "esanet", "{tmp}/r34.pth", "--out", "{tmp}/o.safetensors", "--input-size", "12"],
     ["--input-size '12'", "HxW"]),
    (["import", "esanet", "{tmp}/r34.pth", "--out", "{tmp}/o.onnx"], ["--out", ".safetensors"]),
    (["info", "{tmp}/nope.safetensors"], ["checkpoint not found"]),
], ids=["info --input-size 12", "info --input-size without NAME", "data synth --size 12",
        "export --precision fp64", "export --backend bogus", "import --input-size 12", "import --out o.onnx",
        "info CHECKPOINT missing"])
def test_flag_typo_is_one_line(tmp_path, capsys, argv, says):
    assert main([a.format(tmp=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    for text in says:
        assert text in err, err
    assert not (tmp_path / "b").exists() and not (tmp_path / "s").exists()
