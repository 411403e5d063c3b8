"""`edgefuse bench`: the JSON contract, the report files, and the statistics."""

from __future__ import annotations

import json

import numpy as np
import pytest

from edgefuse.cli.main import main
from edgefuse.runtime.stats import CV_WARN, LatencyStats, cv_warning

LAT_KEYS = {"mean", "std", "p50", "p90", "p99"}


@pytest.fixture(scope="module")
def bench_out(bundle_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench")
    rc = main(["bench", "--bundle", str(bundle_dir), "--frames", "4", "--warmup", "1",
               "--iterations", "3", "--json", str(out / "bench.json"), "--report", str(out / "report")])
    assert rc == 0
    return out


def test_bench_json_contract(bench_out, bundle_dir):
    data = json.loads((bench_out / "bench.json").read_text())
    manifest = json.loads((bundle_dir / "manifest.json").read_text())
    assert [p["index"] for p in data["paths"]] == [p["index"] for p in manifest["paths"]]
    for p, m in zip(data["paths"], manifest["paths"]):
        assert p["madds"] == m["madds"]
        assert LAT_KEYS <= set(p["latency_ms"])
        assert p["latency_ms"]["count"] == 3
        s = p["latency_ms"]
        assert s["min"] <= s["p50"] <= s["p90"] <= s["p99"] <= s["max"]
    assert LAT_KEYS <= set(data["stem_gate"]["latency_ms"])
    d = data["dynamic"]
    for key in ("path_distribution", "mean_latency_ms", "static_latency_ms", "speedup"):
        assert key in d
    assert sum(d["path_distribution"].values()) == pytest.approx(1.0)
    assert d["frames"] == 4
    assert d["speedup"] == pytest.approx(d["static_latency_ms"] / d["mean_latency_ms"])
    full = max(manifest["paths"], key=lambda p: (sum(p["decision"]), p["madds"]))["index"]
    assert d["full_path"] == full
    assert {"cpu", "onnxruntime", "date"} <= set(data["machine"])
    files = data["memory"]["files_bytes"]
    assert files["stem_gate"] == (bundle_dir / "stem_gate.onnx").stat().st_size
    e2e = data["end_to_end"]
    assert e2e["frame_ms"]["mean"] >= e2e["inference_ms"]["mean"]


def test_bench_report_files(bench_out):
    report = bench_out / "report"
    for name in ("report.md", "report.html", "latency_vs_madds.png", "latency_hist.png", "path_mix.png"):
        assert (report / name).is_file() and (report / name).stat().st_size > 0, name
    assert (report / "latency_vs_madds.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (report / "report.md").read_text()
    assert "path_0" in md and "stem/gate overhead" in md and "speed-up" in md


def test_latency_stats_match_numpy():
    rng = np.random.default_rng(0)
    x = rng.gamma(4.0, 2.0, 500)
    s = LatencyStats.of(x)
    assert s.count == 500
    assert s.mean == pytest.approx(x.mean()) and s.std == pytest.approx(x.std())
    assert s.p50 == pytest.approx(np.median(x)) and s.p99 == pytest.approx(np.percentile(x, 99))
    assert s.min == x.min() and s.max == x.max()
    assert s.throughput == pytest.approx(1000.0 / x.mean())


def test_cv_warning_threshold():
    steady = LatencyStats.of([10.0, 10.1, 9.9, 10.0])
    noisy = LatencyStats.of([10.0, 14.0, 6.0, 10.0])
    assert steady.cv < CV_WARN and cv_warning({"g": steady}) is None
    assert noisy.cv > CV_WARN and "coefficient of variation" in cv_warning({"g": noisy})
    # one line for the run, naming every noisy graph and no steady one
    line = cv_warning({"path_0": noisy, "path_1": steady, "path_2": noisy})
    assert "path_0 " in line and "path_2 " in line and "path_1" not in line and "\n" not in line
