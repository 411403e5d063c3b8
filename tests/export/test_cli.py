"""`edgefuse export` / `edgefuse inspect`: user errors exit 2 with one clear line, no traceback."""

import subprocess
import sys

import pytest

from edgefuse.cli.main import main


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("argv, message", [
    (["export", "no-such-model", "--out", "{tmp}/b"], "neither a checkpoint"),
    (["export", "dynmm-tiny", "--out", "{tmp}/b", "--input-size", "64x96"], "bin"),
    (["export", "dynmm-tiny", "--out", "{tmp}/b", "--input-size", "64by96"], "HxW"),
    (["export", "dynmm-tiny", "--out", "{tmp}/b", "--precision", "int4"], "--precision"),
    (["export", "dynmm-tiny", "--out", "{tmp}/b", "--paths", "0,9", "--input-size", "64x128"], "paths"),
    (["export", "{tmp}/missing.safetensors", "--out", "{tmp}/b"], "checkpoint not found"),
    (["export", "{tmp}/garbage.safetensors", "--out", "{tmp}/b"], "cannot read checkpoint"),
    (["export", "dynmm-tiny", "--out", "{tmp}/existing"], "--force"),
    (["inspect", "{tmp}/nothing"], "not found"),
    (["inspect", "{tmp}/existing"], "not an edgefuse bundle"),
])
def test_user_errors_exit_2(tmp_path, capsys, argv, message):
    (tmp_path / "garbage.safetensors").write_bytes(b"\x00not a safetensors file")
    (tmp_path / "existing").mkdir()
    (tmp_path / "existing" / "something").write_text("x")
    code, out, err = run([a.format(tmp=tmp_path) for a in argv], capsys)
    assert code == 2
    assert message in err and "Traceback" not in err + out
    assert not (tmp_path / "b").exists()


def test_missing_tensorrt_names_the_extra(tmp_path, capsys, monkeypatch):
    import torch._dynamo  # noqa: F401 - it probes for tensorrt on import; do that before hiding it
    monkeypatch.setitem(sys.modules, "tensorrt", None)   # import tensorrt -> ImportError
    code, out, err = run(["export", "dynmm-tiny", "--out", str(tmp_path / "b"), "--backend", "tensorrt"], capsys)
    assert code == 2 and "edgefuse[tensorrt]" in err and "Traceback" not in err


def test_export_then_inspect_then_tamper(dynmm_checkpoint, tmp_path, capsys):
    out = tmp_path / "bundle"
    code, text, err = run(["export", str(dynmm_checkpoint), "--out", str(out), "--paths", "4",
                           "--verify-frames", "1", "--verify-data", "procedural"], capsys)
    assert code == 0, err
    assert "path_4" in text and f"edgefuse run --bundle {out} --camera synthetic" in text
    assert "100.00%" in text   # path labels agree with PyTorch
    code, text, err = run(["inspect", str(out)], capsys)
    assert code == 0 and "all 4 files match" in text and "weights.bin" in text   # stem, path_4, weights, verify
    f = out / "path_4.onnx"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    code, text, err = run(["inspect", str(out)], capsys)
    assert code == 2 and "path_4.onnx" in err and "Traceback" not in err


def test_no_traceback_in_a_real_process(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "edgefuse.cli.main", "export", "nope", "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "nope" in proc.stderr and "Traceback" not in proc.stderr


def test_incompatible_checkpoint_is_a_clear_error(dynmm_checkpoint, tmp_path, capsys):
    import json

    from safetensors import safe_open
    from safetensors.torch import save_file

    with safe_open(str(dynmm_checkpoint), framework="pt") as f:
        meta = f.metadata()
        state = {k: f.get_tensor(k) for k in f.keys()}
    config = json.loads(meta["edgefuse_config"])
    config["decoder_channels"] = [32, 32, 32]          # the tensors say (64, 32, 32)
    bad = tmp_path / "mismatch.safetensors"
    save_file(state, str(bad), metadata={**meta, "edgefuse_config": json.dumps(config)})
    code, out, err = run(["export", str(bad), "--out", str(tmp_path / "b")], capsys)
    assert code == 2 and "mismatch.safetensors" in err and "incompatible" in err
    assert "Traceback" not in err and not (tmp_path / "b").exists()


def test_failed_verification_exits_2(dynmm_checkpoint, tmp_path, capsys, monkeypatch):
    import edgefuse.export.verify as verify

    monkeypatch.setattr(verify, "FEATURE_ATOL", -1.0)      # no feature can be close enough
    code, out, err = run(["export", str(dynmm_checkpoint), "--out", str(tmp_path / "b"), "--paths", "4",
                          "--verify-frames", "1", "--verify-data", "procedural"], capsys)
    assert code == 2 and "verification failed" in err and "rgb_feat" in err and "b.failed" in err
    assert not (tmp_path / "b").exists() and "Traceback" not in err


def test_export_summary_and_inspect_keep_names(dynmm_bundle, output_mode, capsys):
    """Piped or in an 80-column terminal, no graph, file or hash is cut (issue 9)."""
    from edgefuse.cli.export import _summary

    _summary(dynmm_bundle)
    assert main(["inspect", str(dynmm_bundle.bundle)]) == 0
    text = capsys.readouterr().out
    m = dynmm_bundle.manifest
    names = [g.name for g in dynmm_bundle.graphs] + [p.file for p in m.paths] + ["stem_gate.onnx"]
    if output_mode.name == "pipe":   # a 64-hex hash cannot fit beside its label in 80 columns
        names += [m.weights_sha256, str(dynmm_bundle.bundle)]
    output_mode.assert_whole(text, names)


def test_refused_pickle_is_one_line_on_stderr(tmp_path):
    """A pickle checkpoint is refused with our one-line error; torch's warning about the
    pickle (and its source line) does not leak above it. A real process: pytest would
    capture the warning itself."""
    import os
    import pickle
    from pathlib import Path

    ckpt = tmp_path / "model.pt"
    with open(ckpt, "wb") as f:
        pickle.dump({"config": {}, "state_dict": {}, "code": print}, f, protocol=4)
    exe = Path(sys.executable).parent / "edgefuse"
    proc = subprocess.run([str(exe) if exe.is_file() else "edgefuse", "export", str(ckpt), "--out", str(tmp_path / "b")],
                          capture_output=True, text=True, timeout=300, env={**os.environ, "COLUMNS": "80"})
    assert proc.returncode == 2
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "weights-only" in lines[0], proc.stderr
