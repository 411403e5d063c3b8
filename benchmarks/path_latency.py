"""Eager PyTorch latency of every path of a dynamic model, next to its measured MAdds.

    python benchmarks/path_latency.py --model dynmm-r50 --input-size 480x640 --iterations 10

One run measures all paths on the same inputs (stem + gate + path, batch 1, no_grad),
after a warm-up per path, interleaved round-robin; writes benchmarks/results/path_latency_<model>_<device>.{json,md}.
Latency should fall roughly with MAdds if the skipping is real.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, machine_info, write_result  # noqa: E402

from edgefuse.cli.common import parse_size  # noqa: E402
from edgefuse.models.costs import measure_costs  # noqa: E402
from edgefuse.models.registry import build_model  # noqa: E402


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--model", default="dynmm-r50")
    ap.add_argument("--input-size", default=None, help="HxW (default: the model's)")
    ap.add_argument("--iterations", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    size = parse_size(args.input_size)
    model = build_model(args.model, **({"input_size": size} if size else {})).eval()
    costs = measure_costs(model)
    model = model.to(args.device)
    h, w = costs.input_size
    g = torch.Generator().manual_seed(0)
    rgb = (torch.rand(1, 3, h, w, generator=g) * 255).to(args.device)
    depth = (torch.rand(1, 1, h, w, generator=g) * 5000).to(args.device)
    # Paths are timed round-robin (one frame of each path per round), so a change in machine
    # load during the run affects every path alike instead of biasing the later ones.
    times: dict[int, list[float]] = {k: [] for k in range(len(costs.paths))}
    with torch.no_grad():
        for k in times:
            for _ in range(args.warmup):
                model(rgb, depth, path=k)
        for _ in range(args.iterations):
            for k in times:
                _sync(args.device)
                t0 = time.perf_counter()
                model(rgb, depth, path=k)
                _sync(args.device)
                times[k].append((time.perf_counter() - t0) * 1e3)
    rows = []
    for k, cost in enumerate(costs.paths):
        t = times[k]
        rows.append({"index": k, "decision": list(cost.decision), "madds": cost.madds,
                     "depth_encoder_madds": cost.depth_encoder_madds,
                     "latency_ms": {"median": statistics.median(t), "mean": statistics.fmean(t),
                                    "min": min(t), "max": max(t)}})
    full = rows[-1]
    for r in rows:
        r["madds_share"] = r["madds"] / full["madds"]
        r["latency_share"] = r["latency_ms"]["median"] / full["latency_ms"]["median"]
    result = {"model": args.model, "input_size": [h, w], "device": args.device,
              "iterations": args.iterations, "warmup": args.warmup, "paths": rows, "machine": machine_info()}
    stem = f"path_latency_{args.model}_{args.device.split(':')[0]}"
    lines = [f"# Eager PyTorch latency per path: {args.model} at {h}x{w} on {args.device}", "",
             f"`{result['machine']['command']}` — {result['machine']['date']}, "
             f"{result['machine'].get('cpu_model', result['machine']['processor'])}, "
             f"{result['machine'].get('gpu', 'no GPU')}, torch {result['machine'].get('torch')}", "",
             "| path | fuses cells | GMAC | MAdds share | median ms | latency share |",
             "| ---: | :--- | ---: | ---: | ---: | ---: |"]
    for r in rows:
        cells = ",".join(str(i + 1) for i, f in enumerate(r["decision"]) if f) or "-"
        lines.append(f"| {r['index']} | {cells} | {r['madds'] / 1e9:.2f} | {r['madds_share']:.2f} | "
                     f"{r['latency_ms']['median']:.2f} | {r['latency_share']:.2f} |")
    write_result(args.out, stem, result, "\n".join(lines) + "\n", args)


if __name__ == "__main__":
    main()
