"""How much of a frame the camera takes: `edgefuse run` on the synthetic camera with its
pre-rendered loop (the default) against rendering every frame on demand (loop=0).

    python benchmarks/capture_share.py [--model dynmm-tiny-synth] [--input-size HxW] [--frames 150]

Exports the model (or takes --bundle), then runs the pipeline (capture -> stem/gate ->
path -> post) on the synthetic camera twice per round, loop and on-demand alternately,
with the loop's scenes already rendered into a fresh frame cache in a temporary folder
(what a first run pays to render them is reported apart; your ~/.cache is not touched). Reports per-stage means, the capture's share of the frame
time, and FPS. Issue 10's goal: capture <= 10% of the demo's frame time, and `run` at
480x640 limited by inference, not rendering.
Writes benchmarks/results/capture_share_<model>_<H>x<W>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, bundle_or_export, machine_info, write_result  # noqa: E402

from edgefuse.cli.common import parse_size  # noqa: E402

GOAL_CAPTURE_SHARE = 0.10


def one_run(bundle: str, frames: int, loop: int, threads: int) -> dict:
    from edgefuse.cameras import open_source
    from edgefuse.export.bundle import load_bundle
    from edgefuse.runtime.pipeline import Pipeline, RunConfig

    b = load_bundle(bundle)
    source = open_source("synthetic", frames=frames, size=tuple(b.manifest.input_size), loop=loop)
    s = Pipeline(RunConfig(bundle=bundle, camera="synthetic", frames=frames, threads=threads),
                 bundle=b, source=source).run()
    means = {k: statistics.fmean(v) for k, v in s.stages.items() if v}
    return {"loop": loop, "frames": s.frames, "fps": s.fps, "stage_mean_ms": means,
            "capture_share": means["capture"] / means["total"],
            "inference_share": (means["gate"] + means["path"]) / means["total"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--model", default="dynmm-tiny-synth")
    ap.add_argument("--input-size", default=None, help="HxW (default: the model's)")
    ap.add_argument("--frames", type=int, default=150, help="frames per run (the demo runs 300)")
    ap.add_argument("--loop", type=int, default=100, help="scenes in the synthetic camera's loop (its default)")
    ap.add_argument("--rounds", type=int, default=2, help="alternating rounds of (loop, on demand)")
    ap.add_argument("--threads", type=int, default=0, help="ORT intra-op threads (0: its default, as the demo)")
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    size = parse_size(args.input_size)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = bundle_or_export(args.bundle, args.model, size, tmp, verify_frames=2)
        from edgefuse.data.synth.cache import CACHE_ENV, FrameCache
        from edgefuse.export.bundle import load_bundle

        os.environ[CACHE_ENV] = str(Path(tmp) / "frame-cache")

        hw = tuple(load_bundle(bundle).manifest.input_size)
        loop = min(args.loop, args.frames)
        t0 = time.perf_counter()
        rendered = FrameCache(0, hw).ensure(range(loop))     # what a first run pays, once
        render_s = time.perf_counter() - t0
        runs: dict[str, list[dict]] = {"loop": [], "on_demand": []}
        for r in range(args.rounds):
            for name, lp in (("loop", args.loop), ("on_demand", 0)):
                runs[name].append(one_run(bundle, args.frames, lp, args.threads))
                print(f"round {r + 1}: {name}: capture {runs[name][-1]['capture_share']:.1%} of "
                      f"{runs[name][-1]['stage_mean_ms']['total']:.2f} ms, {runs[name][-1]['fps']:.1f} FPS "
                      f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)

    def med(name: str, key: str, stage: str | None = None) -> float:
        vals = [r["stage_mean_ms"][stage] if stage else r[key] for r in runs[name]]
        return statistics.median(vals)

    summary = {name: {"capture_ms": med(name, "", "capture"), "inference_ms": med(name, "", "gate") + med(name, "", "path"),
                      "post_ms": med(name, "", "post"), "total_ms": med(name, "", "total"),
                      "capture_share": med(name, "capture_share"), "fps": med(name, "fps")} for name in runs}
    out = {"command": machine_info()["command"], "machine": machine_info(), "model": args.model,
           "input_size": list(hw), "frames": args.frames, "loop": args.loop, "threads": args.threads,
           "first_render": {"frames": len(rendered), "seconds": render_s},
           "load_before": load_before, "load_after": os.getloadavg(), "summary": summary, "runs": runs,
           "goal": {"capture_share_max": GOAL_CAPTURE_SHARE,
                    "met": summary["loop"]["capture_share"] <= GOAL_CAPTURE_SHARE}}
    name = f"capture_share_{Path(args.model).stem}_{hw[0]}x{hw[1]}"
    write_result(args.out, name, out, markdown(out), args)


def markdown(out: dict) -> str:
    m, s = out["machine"], out["summary"]
    h, w = out["input_size"]
    fr = out["first_render"]
    lines = [f"# Capture share of a frame: {out['model']} at {h}x{w}, synthetic camera", "",
             f"`{out['command']}` - {m['date']}, {m.get('cpu_model', m['processor'])}, {m['cpu_count']} cores, "
             f"ORT threads {out['threads'] or 'default'}, {out['frames']} frames per run, medians of alternating runs; "
             f"load average {out['load_before'][0]:.1f} before, {out['load_after'][0]:.1f} after.", "",
             "| camera | capture ms | stem/gate + path ms | post ms | frame ms | capture share | FPS |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, label in (("loop", f"pre-rendered loop ({out['loop']} scenes, cached)"), ("on_demand", "rendered on demand")):
        r = s[name]
        lines.append(f"| {label} | {r['capture_ms']:.2f} | {r['inference_ms']:.2f} | {r['post_ms']:.2f} | "
                     f"{r['total_ms']:.2f} | {r['capture_share']:.1%} | {r['fps']:.1f} |")
    lines += ["", f"Goal: capture <= {out['goal']['capture_share_max']:.0%} of the frame time with the loop: "
                  f"{'met' if out['goal']['met'] else 'not met'}. Rendering the loop the first time "
                  f"({fr['frames']} scenes not cached yet) took {fr['seconds']:.1f} s, before any frame is timed."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
