"""Depth registration at 640x480 on one core: vectorised numpy vs Open3D's tensor geometry.

Both methods register the same depth frames (the synthetic renderer's noisy D435-like depth
of several rooms, so holes and edges are realistic) from a depth camera into a colour camera
2.5 cm to the side with other intrinsics and a small rotation. Runs alternate
(numpy, open3d, numpy, ...) so that load from other work hits both alike; the result is
the median (and min) per method, with the load average before and after. One core: the
process is pinned to CPU 0 and Open3D / OpenMP / BLAS get one thread.

    python benchmarks/registration.py [--frames 4] [--repeats 30] [--out benchmarks/results]

Writes registration.json and registration.md (command, machine, date, load).
"""

from __future__ import annotations

import argparse
import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import harness_parser, machine_info, write_result  # noqa: E402

from edgefuse.cameras.base import Intrinsics  # noqa: E402
from edgefuse.cameras.registration import METHODS, DepthRegistrar, Extrinsics  # noqa: E402

SIZE = (480, 640)
DEPTH_K = Intrinsics(580.0, 580.0, 319.5, 239.5, 640, 480)
COLOR_K = Intrinsics(615.0, 615.0, 320.0, 240.0, 640, 480)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=30, help="timed calls per method per frame")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})
    import cv2
    import open3d as o3d

    o3d.utility.set_verbosity_level(o3d.utility.VerbosityLevel.Error)
    cv2.setNumThreads(1)
    from edgefuse.data.synth import SceneRenderer

    renderer = SceneRenderer(0, SIZE, threads=1)
    depths = [renderer.render(i).depth for i in range(args.frames)]
    rot = cv2.Rodrigues(np.array([0.01, -0.02, 0.005]))[0]
    ext = Extrinsics.from_rt(rot, [0.025, 0.001, -0.002])
    regs = {m: DepthRegistrar(DEPTH_K, COLOR_K, ext, method=m) for m in METHODS}
    agree = []
    for d in depths:                      # warm-up, and the two must give the same image
        a, b = regs["numpy"](d), regs["open3d"](d)
        both = (a > 0) & (b > 0)
        agree.append(float(np.mean(np.abs(a[both].astype(int) - b[both]) <= 1)))
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(args.repeats):
        for d in depths:
            for m in METHODS:             # alternate: A, B, A, B, ...
                t0 = time.perf_counter()
                regs[m](d)
                times[m].append((time.perf_counter() - t0) * 1e3)
    load_after = os.getloadavg()
    stats = {m: {"median_ms": round(float(np.median(v)), 3), "min_ms": round(float(np.min(v)), 3),
                 "p90_ms": round(float(np.percentile(v, 90)), 3), "calls": len(v)} for m, v in times.items()}
    faster = min(stats, key=lambda m: stats[m]["median_ms"])
    result = {"what": "register_depth 640x480 -> 640x480, one core", "methods": stats, "faster": faster,
              "valid_depth_fraction": round(float(np.mean([np.count_nonzero(d) / d.size for d in depths])), 3),
              "agreement_within_1mm": round(float(np.mean(agree)), 5), "load_before": load_before,
              "load_after": load_after, "open3d": o3d.__version__, "numpy": np.__version__,
              "machine": machine_info()}
    m = result["machine"]
    lines = ["# Depth registration, 640x480, one core", "",
             f"`{m['command']}`, {m['date']}, {m.get('cpu_model', m['processor'])} ({m['cpu_count']} cores, "
             f"shared), load average {load_before[0]:.2f} before / {load_after[0]:.2f} after; "
             f"numpy {np.__version__}, Open3D {o3d.__version__}.", "",
             "| method | median ms | min ms | p90 ms | calls |", "| --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {k} | {v['median_ms']} | {v['min_ms']} | {v['p90_ms']} | {v['calls']} |" for k, v in stats.items()]
    lines += ["", f"Faster: **{faster}**. 30 Hz needs < 33.3 ms per frame. The two agree within 1 mm on "
                  f"{result['agreement_within_1mm']:.2%} of the pixels both fill; "
                  f"{result['valid_depth_fraction']:.0%} of the depth pixels are valid (synthetic D435 depth)."]
    write_result(args.out, "registration", result, "\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
