"""`edgefuse bench`: latency per gating path, the stem/gate overhead, and the dynamic
speed-up measured against the static full path in the same run.

Method (trtexec's, docs/running.md "Method"): every graph is warmed up
separately, then each call is timed alone many times (`iterations`, or for `duration`
seconds), round-robin across the graphs, on a real frame's inputs; statistics are
trtexec's (mean, std, min, percentiles, max, throughput, a warning over 2.5% CV). Then the frames of a source (default: the synthetic test scenes) go
through stem/gate -> policy -> chosen path, and, interleaved on the same frames and the
same stem features, through the full (most-fusing) path: the static baseline. Capture and
post-processing are timed apart, so the end-to-end frame time is reported beside the pure
inference time.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgefuse.errors import ConfigError, EdgefuseError
from edgefuse.runtime.setup import RuntimeConfig, open_runtime
from edgefuse.runtime.stats import LatencyStats, cv_warning


@dataclass
class BenchConfig(RuntimeConfig):
    """`edgefuse bench`: the runtime set-up (`RuntimeConfig`) and how to time it."""

    camera: str = "synthetic"
    frames: int = 100
    warmup: int = 20
    iterations: int = 200
    duration: float | None = None     # seconds per graph; overrides iterations

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.frames < 1:
            raise ConfigError(f"--frames must be >= 1, got {self.frames}")
        if self.warmup < 0 or self.iterations < 1:
            raise ConfigError("--warmup must be >= 0 and --iterations >= 1")
        if self.duration is not None and not self.duration > 0:
            raise ConfigError(f"--duration must be > 0 s, got {self.duration}")


@dataclass
class BenchResult:
    data: dict[str, Any]                              # the --json document
    samples: dict[str, list[float]] = field(default_factory=dict)   # graph -> ms samples
    warnings: list[str] = field(default_factory=list)


# --- helpers -----------------------------------------------------------------------------------
def _rss_bytes() -> int | None:
    """Resident set size of this process (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def machine_info(runner: Any = None) -> dict[str, Any]:
    import onnxruntime as ort

    from edgefuse import __version__

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"platform": platform.platform(), "cpu": cpu, "cpu_count": os.cpu_count(),
            "affinity": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
            "python": platform.python_version(), "onnxruntime": ort.__version__,
            "edgefuse": __version__, "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    if runner is not None:
        info["backend"] = runner.name
        if getattr(runner, "providers", None):
            info["providers"] = list(runner.providers)
        if getattr(runner, "threads", None):
            info["threads"] = runner.threads
    return info


def time_graphs(calls: dict[str, Callable[[], Any]], warmup: int, iterations: int,
                duration: float | None) -> dict[str, list[float]]:
    """Warm each call up separately, then time them round-robin (one call of each per round)
    `iterations` rounds, or for `duration` seconds per call: a change in machine load during
    the run then affects every graph alike instead of biasing the later ones."""
    for fn in calls.values():
        for _ in range(warmup):
            fn()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    end = None if duration is None else time.perf_counter() + duration * len(calls)
    rounds = 0
    while (rounds < iterations) if end is None else (time.perf_counter() < end or rounds == 0):
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            samples[name].append((time.perf_counter() - t0) * 1e3)
        rounds += 1
    return samples


def full_path(manifest: Any) -> int:
    """The most-fusing exported path (the static baseline): most fused cells, then cost."""
    best = max(manifest.paths, key=lambda p: (sum(bool(x) for x in p.decision), p.madds))
    return best.index


def _stats(samples: list[float]) -> dict[str, float]:
    return LatencyStats.of(samples).to_dict()


# --- the benchmark -----------------------------------------------------------------------------
def run_bench(config: BenchConfig, log: Callable[[str], None] = lambda s: None) -> BenchResult:
    from edgefuse.cameras import validate_frame
    from edgefuse.runtime.frames import prepare
    from edgefuse.runtime.pipeline import open_camera
    from edgefuse.runtime.runners import STEM_GATE, path_graph
    from edgefuse.runtime.sinks import colorize

    runtime = open_runtime(config)
    bundle, runner, policy = runtime.bundle, runtime.runner, runtime.policy
    m = bundle.manifest
    size = runtime.input_size
    palette = runtime.palette
    result = BenchResult({})

    # Frames first (the camera's renderer must not share the cores with timing).
    log(f"capturing {config.frames} frames from {config.camera}")
    prepared, capture_ms = [], []
    with open_camera(config.camera, bundle, config.frames, False) as source:
        it = iter(source)
        while True:
            t0 = time.perf_counter()
            frame = next(it, None)
            if frame is None:
                break
            p = prepare(frame, validate_frame(frame, size, config.min_depth_valid), size)
            capture_ms.append((time.perf_counter() - t0) * 1e3)
            if p is not None:
                prepared.append(p)
    if not prepared:
        raise EdgefuseError(f"camera {config.camera!r} gave no usable frame to benchmark on")

    rss0 = _rss_bytes()
    with runner:
        rss1 = _rss_bytes()
        ref = prepared[0]
        # 1) every graph alone, warmed separately, timed round-robin.
        log(f"timing {STEM_GATE} and {len(m.paths)} paths")
        feats = runner.stem_gate(ref.rgb, ref.depth).features
        calls: dict[str, Callable[[], Any]] = {STEM_GATE: lambda: runner.stem_gate(ref.rgb, ref.depth)}
        for p in m.paths:
            calls[path_graph(p.index)] = lambda k=p.index: runner.run_path(k, feats)
        samples = time_graphs(calls, config.warmup, config.iterations, config.duration)
        # 2) dynamic vs static on the same frames, interleaved.
        log(f"dynamic vs static on {len(prepared)} frames")
        full = full_path(m)
        for p in prepared[: min(5, len(prepared))]:   # warm the frame loop itself
            st = runner.stem_gate(p.rgb, p.depth)
            runner.run_path(full, st.features)
        dyn_gate, dyn_path, dyn_post, stat_path, chosen, fallbacks = [], [], [], [], [], 0
        for p in prepared:
            t0 = time.perf_counter()
            st = runner.stem_gate(p.rgb, p.depth)
            logits = None if st.gate_logits is None else st.gate_logits[0]
            choice = policy.choose(logits, p.depth_valid_fraction)
            t1 = time.perf_counter()
            labels = runner.run_path(choice.path, st.features)
            t2 = time.perf_counter()
            colorize(np.asarray(labels)[0], palette)       # post-processing a sink would do
            t3 = time.perf_counter()
            runner.run_path(full, st.features)
            t4 = time.perf_counter()
            dyn_gate.append((t1 - t0) * 1e3)
            dyn_path.append((t2 - t1) * 1e3)
            dyn_post.append((t3 - t2) * 1e3)
            stat_path.append((t4 - t3) * 1e3)
            chosen.append(choice.path)
            fallbacks += choice.reason.value == "depth_fallback"
        memory = runner.memory_bytes()
    result.samples = samples

    # --- assemble ------------------------------------------------------------------------------
    stem_stats = LatencyStats.of(samples[STEM_GATE])
    paths_out = []
    for p in m.paths:
        s = LatencyStats.of(samples[path_graph(p.index)])
        paths_out.append({"index": p.index, "decision": [bool(x) for x in p.decision],
                          "madds": float(p.madds), "path_madds": float(p.path_madds),
                          "depth_encoder_madds": float(p.depth_encoder_madds),
                          "file": p.file, "latency_ms": s.to_dict(),
                          "frame_p50_ms": stem_stats.p50 + s.p50})
    noise = cv_warning({name: LatencyStats.of(smp) for name, smp in samples.items()})
    if noise:
        result.warnings.append(noise)
    n = len(chosen)
    counts = {p.index: chosen.count(p.index) for p in m.paths}
    distribution = {str(k): c / n for k, c in counts.items()}
    by_index = {p["index"]: p for p in paths_out}
    expected = stem_stats.p50 + sum(distribution[str(k)] * by_index[k]["latency_ms"]["p50"] for k in counts)
    dyn_inf = [a + b for a, b in zip(dyn_gate, dyn_path)]
    stat_inf = [a + b for a, b in zip(dyn_gate, stat_path)]
    e2e = [c + i + q for c, i, q in zip(capture_ms, dyn_inf, dyn_post)]
    full_stats = by_index[full]["latency_ms"]
    files = {"stem_gate": bundle.stem_gate.stat().st_size}
    files.update({f"path_{k}": f.stat().st_size for k, f in sorted(bundle.paths.items())})
    files.update({f"engine {g}": f.stat().st_size for g, f in sorted(bundle.engines.items())})
    if getattr(bundle, "weights_file", None) is not None:
        files["weights"] = bundle.weights_file.stat().st_size   # shared by every graph
    mem = {"files_bytes": files, "files_total_bytes": sum(files.values())}
    if rss0 is not None and rss1 is not None:
        mem["session_rss_delta_bytes"] = rss1 - rss0
    mem.update({f"backend_{k}": v for k, v in memory.items()})
    mean_dyn, mean_stat = float(np.mean(dyn_inf)), float(np.mean(stat_inf))
    # What the path mix promises on paper: frame MAdds (stem + gate + path) of the full path
    # over their mean under the mix; the measured speed-up should realise it (issue 10).
    madds_of = {p.index: float(p.madds) for p in m.paths}
    mix_madds = sum(distribution[str(k)] * madds_of[k] for k in counts)
    predicted = madds_of[full] / mix_madds if mix_madds > 0 else None
    speedup = mean_stat / mean_dyn if mean_dyn > 0 else None
    full_frame_ms = stem_stats.p50 + full_stats["p50"]
    stem_time_share = stem_stats.p50 / full_frame_ms if full_frame_ms > 0 else None
    stem_madds_share = float(m.stem_gate.madds) / madds_of[full] if madds_of[full] > 0 else None
    result.data = {
        "bundle": str(bundle.root), "model": m.model.get("name", ""), "input_size": list(size),
        "backend": config.backend,
        "settings": {"warmup": config.warmup, "iterations": config.iterations,
                     "duration_s": config.duration, "frames": config.frames, "camera": config.camera},
        "paths": paths_out,
        "stem_gate": {"latency_ms": stem_stats.to_dict(), "madds": float(m.stem_gate.madds),
                      "overhead_vs_full_path": stem_stats.p50 / full_stats["p50"] if full_stats["p50"] else None,
                      # its share of a full-path frame, in time (p50s) and in MAdds
                      "time_share": stem_time_share, "madds_share": stem_madds_share,
                      "share_ratio": (stem_time_share / stem_madds_share
                                      if stem_time_share is not None and stem_madds_share else None)},
        "dynamic": {
            "frames": n, "full_path": full,
            "path_counts": {str(k): c for k, c in counts.items()},
            "path_distribution": distribution,
            "depth_fallbacks": fallbacks,
            "expected_latency_ms": expected,
            "mean_latency_ms": mean_dyn,
            "static_latency_ms": mean_stat,
            "speedup": speedup,
            "predicted_speedup_madds": predicted,
            "speedup_realised": speedup / predicted if speedup and predicted else None,
            "latency_ms": _stats(dyn_inf),
            "static_ms": _stats(stat_inf),
        },
        "end_to_end": {"capture_ms": _stats(capture_ms), "inference_ms": _stats(dyn_inf),
                       "post_ms": _stats(dyn_post), "frame_ms": _stats(e2e)},
        "memory": mem,
        "startup": dict(runner.startup),   # activate(): sessions / engines loaded and warmed
        "machine": machine_info(runner),
        "warnings": result.warnings,
    }
    result.samples["dynamic"] = dyn_inf
    result.samples["static"] = stat_inf
    return result
