"""`edgefuse run` end to end (ORT), the JSONL contract, sources, and fault injection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefuse.cli.main import main
from edgefuse.runtime.pipeline import Pipeline, RunConfig

from runtime_fakes import SIZE, make_frame

CONTRACT = {"frame", "timestamp", "path", "depth_valid_fraction", "dropped", "latency_ms"}
STAGES = {"capture", "wait", "gate", "path", "post", "total"}


def _records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def _check_record(r, exported):
    assert CONTRACT <= set(r)
    assert set(r["latency_ms"]) == STAGES
    assert r["path"] in exported
    assert 0.0 <= r["depth_valid_fraction"] <= 1.0
    assert isinstance(r["dropped"], int) and r["dropped"] >= 0
    lat = r["latency_ms"]
    assert all(v >= 0 for v in lat.values())
    parts = lat["capture"] + lat["wait"] + lat["gate"] + lat["path"] + lat["post"]
    assert lat["total"] == pytest.approx(parts, abs=0.01)


def test_run_synthetic_end_to_end_cli(bundle_dir, tmp_path, capsys):
    log, masks = tmp_path / "run.jsonl", tmp_path / "masks"
    rc = main(["run", "--bundle", str(bundle_dir), "--camera", "synthetic:3", "--frames", "4",
               "--log", str(log), "--save-masks", str(masks), "--threads", "1"])
    assert rc == 0
    records = _records(log)
    assert [r["frame"] for r in records] == [0, 1, 2, 3]
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    exported = {p["index"] for p in manifest["paths"]}
    for r in records:
        _check_record(r, exported)
    out = capsys.readouterr().out
    assert "4 frames" in out and "p50" in out
    from PIL import Image

    lab = np.asarray(Image.open(masks / "000002_labels.png"))
    col = np.asarray(Image.open(masks / "000002_color.png"))
    assert lab.shape == SIZE and col.shape == (*SIZE, 3)
    assert lab.min() >= 1 and lab.max() <= len(manifest["classes"])   # dataset ids 1..C
    palette = np.asarray(manifest["palette"], np.uint8)
    np.testing.assert_array_equal(col, palette[lab])


def test_run_folder_source(bundle_dir, tiny_dataset, tmp_path):
    root = tiny_dataset(frames=3, size=SIZE)
    log = tmp_path / "run.jsonl"
    rc = main(["run", "--bundle", str(bundle_dir), "--camera", f"folder:{root}", "--log", str(log)])
    assert rc == 0
    records = _records(log)
    assert len(records) == 3                    # played back frame by frame, nothing dropped
    assert all(r["dropped"] == 0 and "resized" not in r["events"] for r in records)


def test_run_json_summary_counts_paths(bundle_dir, capsys):
    rc = main(["run", "--bundle", str(bundle_dir), "--camera", "synthetic", "--frames", "3", "--json"])
    assert rc == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["frames"] == 3
    assert sum(p["count"] for p in summary["paths"]) == 3
    assert sum(p["share"] for p in summary["paths"]) == pytest.approx(1.0)


def _pipeline(bundle_dir, tmp_path, source, **kw):
    cfg = RunConfig(bundle=str(bundle_dir), log=str(tmp_path / "log.jsonl"), retry_backoff_s=0.0, **kw)
    return Pipeline(cfg, source=source)


def test_bad_frames_are_handled_by_policy_and_logged(bundle_dir, tmp_path, list_source, caplog):
    frames = [
        make_frame(0),
        make_frame(1, size=(48, 96)),                 # wrong size -> resized
        make_frame(2, depth="nan"),                   # NaN depth -> invalid pixels
        make_frame(3, depth="zero"),                  # all-zero depth -> depth fallback
        make_frame(4, depth="missing"),               # no depth -> depth fallback
        make_frame(5, error="corrupt PNG"),           # decode error -> skipped
        make_frame(6, depth="sparse"),                # 10% valid -> depth fallback
        make_frame(7),
    ]
    p = _pipeline(bundle_dir, tmp_path, list_source(frames))
    summary = p.run()
    records = {r["frame"]: r for r in _records(tmp_path / "log.jsonl")}
    assert sorted(records) == [0, 1, 2, 3, 4, 6, 7]
    assert summary.frames == 7 and summary.skipped == 1
    assert "skipped" in caplog.text and "decode_error" in caplog.text
    assert "wrong_size" in records[1]["events"] and "resized" in records[1]["events"]
    assert "depth_nan" in records[2]["events"]
    assert records[2]["depth_valid_fraction"] == pytest.approx(0.5, abs=0.01)
    rgb_path = p.policy.depth_free_path
    for k in (3, 4, 6):
        assert records[k]["reason"] == "depth_fallback" and records[k]["path"] == rgb_path
    assert records[3]["depth_valid_fraction"] == 0.0
    assert summary.depth_fallbacks == 3
    for k in (0, 7):
        assert records[k]["reason"] != "depth_fallback"


def test_source_that_raises_then_recovers(bundle_dir, tmp_path, list_source):
    items = [make_frame(0), OSError("USB reset"), OSError("USB reset"), make_frame(1), make_frame(2)]
    summary = _pipeline(bundle_dir, tmp_path, list_source(items)).run()
    assert summary.frames == 3 and summary.source_errors == 2
    assert [r["frame"] for r in _records(tmp_path / "log.jsonl")] == [0, 1, 2]


def test_source_that_never_recovers_fails_with_a_clear_error(bundle_dir, tmp_path, list_source):
    from edgefuse.errors import EdgefuseError

    items = [make_frame(0)] + [OSError("gone")] * 3
    p = _pipeline(bundle_dir, tmp_path, list_source(items), max_source_errors=3)
    with pytest.raises(EdgefuseError, match="failed 3 times in a row"):
        p.run()
    # the frame before the failure is on disk: sinks were closed on the way out
    assert len(_records(tmp_path / "log.jsonl")) == 1


def test_ctrl_c_stops_cleanly_and_flushes(bundle_dir, tmp_path, list_source):
    src = list_source([make_frame(0), make_frame(1), KeyboardInterrupt(), make_frame(2)])
    summary = _pipeline(bundle_dir, tmp_path, src).run()
    assert summary.interrupted and summary.frames == 2
    assert len(_records(tmp_path / "log.jsonl")) == 2
    assert src.closed


def test_budget_flag_records_the_bias(bundle_dir, tmp_path):
    log = tmp_path / "b.jsonl"
    rc = main(["run", "--bundle", str(bundle_dir), "--frames", "3", "--budget-ms", "0.001", "--log", str(log)])
    assert rc == 0
    records = _records(log)
    # the bias a frame was chosen with: none before any latency was seen, then an
    # impossible budget drives it up (to its clamp)
    bias = [r["budget_bias"] for r in records]
    assert bias[0] == 0.0 and bias[1] > 0 and bias[2] >= bias[1]


def test_tampered_bundle_is_refused_naming_the_file(bundle_copy, capsys):
    target = bundle_copy / "path_1.onnx"
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    rc = main(["run", "--bundle", str(bundle_copy), "--frames", "1"])
    assert rc == 2
    err = capsys.readouterr().err
    assert "path_1.onnx" in err and "sha256" in err


def test_unknown_backend_is_a_user_error(bundle_dir, capsys):
    rc = main(["run", "--bundle", str(bundle_dir), "--frames", "1", "--backend", "nope"])
    assert rc == 2
    assert "ort" in capsys.readouterr().err


def test_infeasible_budget_is_said_once_and_in_the_summary(bundle_dir, tmp_path, list_source, caplog):
    """No path runs in 0.001 ms: the run goes on, says so once, and the summary says so."""
    import logging

    from rich.console import Console

    from edgefuse.runtime.summary import render_summary

    frames = [make_frame(i) for i in range(30)]
    with caplog.at_level(logging.WARNING, logger="edgefuse.runtime.pipeline"):
        summary = _pipeline(bundle_dir, tmp_path, list_source(frames), budget_ms=0.001).run()
    notes = [r.getMessage() for r in caplog.records if "cannot be met" in r.getMessage()]
    assert summary.frames == 30 and len(notes) == 1
    assert "--budget-ms 0.001 cannot be met" in notes[0] and "the cheapest path (path 0)" in notes[0]
    b = summary.budget
    assert b["feasible"] is False and b["cheapest_path"] == 0 and b["cheapest_ms"] > 0.001
    assert summary.to_dict()["budget"] == b
    console = Console(record=True, width=200)
    render_summary(summary, console)
    assert "budget 0.001 ms NOT feasible: the cheapest path (path 0) takes" in console.export_text()
