"""Latency statistics, trtexec-style (docs/running.md "Method"): mean, std,
min, percentiles, max, throughput, and a warning when the coefficient of variation is over
2.5% (trtexec's threshold: above it the numbers are not stable enough to compare)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

CV_WARN = 0.025


@dataclass(frozen=True)
class LatencyStats:
    count: int
    mean: float
    std: float
    min: float
    p50: float
    p90: float
    p95: float
    p99: float
    max: float
    throughput: float   # 1 / mean, per second (one frame at a time)

    @property
    def cv(self) -> float:
        return self.std / self.mean if self.mean > 0 else 0.0

    @property
    def unstable(self) -> bool:
        return self.count > 1 and self.cv > CV_WARN

    def to_dict(self) -> dict[str, float]:
        d = asdict(self)
        d["cv"] = self.cv
        return d

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> LatencyStats:
        a = np.asarray(samples_ms, dtype=np.float64)
        if a.size == 0:
            return cls(0, *([float("nan")] * 8), 0.0)
        p50, p90, p95, p99 = np.percentile(a, [50, 90, 95, 99])
        mean = float(a.mean())
        return cls(int(a.size), mean, float(a.std()), float(a.min()), float(p50), float(p90),
                   float(p95), float(p99), float(a.max()), 1000.0 / mean if mean > 0 else 0.0)


def cv_warning(stats: Mapping[str, LatencyStats]) -> str | None:
    """One trtexec-like warning line naming every graph whose latency varies too much, else
    None (one line for the run, not one per graph: issue 9)."""
    noisy = [f"{name} {s.cv:.1%}" for name, s in stats.items() if s.unstable]
    if not noisy:
        return None
    return (f"coefficient of variation over {CV_WARN:.1%} for {', '.join(noisy)}: the machine is "
            "busy or throttling, numbers may not be stable (close other work, pin threads, or run "
            "longer with --duration)")
