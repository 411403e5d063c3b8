"""The pipelined per-frame step against the sequential one: `edgefuse run`'s loop fed by a
camera faster than inference (issue 19).

    python benchmarks/pipeline.py [--bundle DIR | --model dynmm-tiny-synth] [--rate HZ]
        [--seconds 10] [--rounds 3] [--threads 0 ...] [--size HxW] [--tag TAG]

The camera is simulated, not rendered live: pre-rendered synthetic RGB-D frames (at the
bundle's input size unless --size says otherwise) are released at --rate Hz on the monotonic
clock, and like a camera's one-frame buffer, a frame the reader was too slow to take is
replaced by the next one (counted as dropped at the camera). Each frame carries its capture
time, so stamp-to-output (capture to the sinks' write) is measured exactly. The loop is
`edgefuse run`'s own (`Pipeline`), pipelined (newest-only input, as for a live camera) and
sequential, alternating within each round so load drifts hit both alike.

Per run: input rate, output rate, mean inference (stem/gate + path) and the goal ratio
output rate / (1 / mean inference) (goal >= 0.9 pipelined), stamp-to-output p50 / p99
(goal p99 <= 2x p50: no build-up), drops at the camera and before inference. --rate
defaults to 1.5x what a short sequential warm-up measures (a camera faster than inference).
Writes benchmarks/results/pipeline_<model>_<HxW>[_<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import RESULTS, bundle_or_export, harness_parser, write_result  # noqa: E402

GOAL_RATIO = 0.9
GOAL_P99_OVER_P50 = 2.0
SKIP = 5   # first outputs left out of the latency percentiles (caches, first-run allocations)


class PacedCamera:
    """A live source over pre-rendered frames at `rate` Hz for `seconds`: each read returns
    the newest frame already captured (waiting for the next when none is new); the frames
    captured in between were overwritten in the camera's buffer and count as `dropped`."""

    name = "paced"
    is_live = True

    def __init__(self, frames: list, rate: float, seconds: float) -> None:
        self.frames, self.rate, self.total = frames, rate, max(1, int(round(rate * seconds)))
        self.dropped = 0

    def __enter__(self) -> "PacedCamera":
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def __iter__(self):
        from edgefuse.cameras import Frame

        t0, last = time.monotonic(), -1
        while last + 1 < self.total:
            k = min(int((time.monotonic() - t0) * self.rate), self.total - 1)
            if k <= last:                           # nothing new yet: wait for the next capture
                k = last + 1
                time.sleep(max(0.0, t0 + k / self.rate - time.monotonic()))
            self.dropped += k - last - 1
            last = k
            rgb, depth = self.frames[k % len(self.frames)]
            yield Frame(rgb=rgb, depth=depth, timestamp=t0 + k / self.rate, index=k)


class StampToOutput:
    """A sink: capture time -> written, per output (the frame's timestamp is its capture time)."""

    def __init__(self) -> None:
        self.ms: list[float] = []

    def write(self, out) -> None:
        self.ms.append((time.monotonic() - out.frame.timestamp) * 1e3)

    def close(self) -> None:
        pass


def _frames(size: tuple[int, int], n: int = 20) -> list:
    from edgefuse.cameras import open_source

    with open_source("synthetic:5", size=size, frames=n) as src:
        return [(np.ascontiguousarray(f.rgb), np.ascontiguousarray(f.depth)) for f in src]


def one_run(bundle: str, frames: list, rate: float, seconds: float, threads: int, pipeline: bool) -> dict:
    from edgefuse.runtime.pipeline import Pipeline, RunConfig

    camera, sink = PacedCamera(frames, rate, seconds), StampToOutput()
    config = RunConfig(bundle=bundle, threads=threads, pipeline=pipeline)
    summary = Pipeline(config, source=camera, sinks=[sink]).run()
    lat = sink.ms[SKIP:] if len(sink.ms) > 2 * SKIP else sink.ms
    p50, p99 = (float(v) for v in np.percentile(lat, [50, 99]))
    r = summary.rate()
    stage = {k: float(np.mean(v)) for k, v in summary.stages.items() if v}
    queue_drops = (summary.pipeline or {}).get("dropped", {}).get("before_infer", 0)
    return {"pipeline": pipeline, "threads": threads, "input_hz": camera.total / summary.wall_s,
            "output_hz": r["output_hz"], "inference_ms": r["inference_ms"], "goal_ratio": r["ratio"],
            "stamp_to_output_ms": {"p50": p50, "p99": p99}, "p99_over_p50": p99 / p50,
            "frames_in": camera.total, "frames_out": summary.frames,
            "dropped": {"camera": camera.dropped, "before_infer": queue_drops},
            "stage_mean_ms": stage, "failed": summary.failed, "step": summary.step,
            "pipeline_stats": summary.pipeline}


def _mean(runs: list[dict], key: str) -> float:
    return float(np.mean([r[key] for r in runs]))


def markdown(res: dict) -> str:
    lines = [f"# Pipelined vs sequential per-frame step: {res['model']} {res['size']} "
             f"(camera {res['rate_hz']:.1f} Hz, {res['seconds']:g} s x {res['rounds']} rounds, alternating)", "",
             f"Bundle: `{res['bundle']}`; frames fed at {res['frame_size']}; load before {res['load_before']}, "
             f"after {res['load_after']}.", "",
             "| step | ORT threads | in Hz | out Hz | inference ms | out / (1/inference) (goal >= 0.9) | "
             "stamp->output p50 / p99 ms | p99/p50 (goal <= 2) | dropped camera / before infer |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for row in res["summary"]:
        lines.append(f"| {'pipelined' if row['pipeline'] else 'sequential'} | {row['threads'] or 'default'} | "
                     f"{row['input_hz']:.1f} | {row['output_hz']:.2f} | {row['inference_ms']:.2f} | "
                     f"{row['goal_ratio']:.2f} | {row['p50']:.1f} / {row['p99']:.1f} | {row['p99_over_p50']:.2f} | "
                     f"{row['dropped_camera']} / {row['dropped_before_infer']} |")
    lines += ["", "Means over the rounds (each round runs both, alternating which goes first). Stage means (ms, "
              "last round): " + "; ".join(
                  f"{'pipelined' if r['pipeline'] else 'sequential'} t{r['threads']}: "
                  + ", ".join(f"{k} {v:.2f}" for k, v in r["stage_mean_ms"].items()) for r in res["last_round"]),
              "", "Thread split: " + "; ".join(sorted({r["step"] for r in res["last_round"]})),
              "", "inference = stem/gate + path (mean, this run's own: in the pipelined runs it shares the cores with "
              "the other stages). stamp->output: capture time to the sinks' write. out / (1/inference): the "
              "output rate against what the engines alone could give."]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    p.add_argument("--bundle", help="an existing bundle (e.g. an int8 dynmm-r34-nbt1d 480x640 one)")
    p.add_argument("--model", default="dynmm-tiny-synth", help="exported to a temp dir without --bundle")
    p.add_argument("--rate", type=float, default=None, help="camera Hz (default: 1.5x the sequential rate)")
    p.add_argument("--seconds", type=float, default=10.0, help="per run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, nargs="+", default=[0], help="ORT intra-op threads (0: ORT's default)")
    p.add_argument("--size", default=None, help="frame size fed (HxW; default the bundle's input size)")
    p.add_argument("--tag", default="")
    a = p.parse_args()

    from edgefuse.cli.common import parse_size
    from edgefuse.export.bundle import load_bundle

    with tempfile.TemporaryDirectory(prefix="pipeline_bench_") as tmp:
        bundle = bundle_or_export(a.bundle, a.model, None, tmp)
        m = load_bundle(bundle).manifest
        size = tuple(int(s) for s in m.input_size)
        frame_size = parse_size(a.size, "--size") or size
        frames = _frames(frame_size)
        rate = a.rate
        if rate is None:   # a camera faster than inference: 1.5x the sequential loop's own rate
            warm = one_run(bundle, frames, 1000.0, 3.0, a.threads[0], pipeline=False)
            rate = round(1.5 * 1000.0 / warm["inference_ms"], 1)
            print(f"camera rate {rate} Hz (sequential inference {warm['inference_ms']:.2f} ms)", file=sys.stderr)
        load_before = [round(x, 2) for x in os.getloadavg()]
        runs: list[dict] = []
        for k in range(a.rounds):
            for threads in a.threads:
                order = (True, False) if k % 2 == 0 else (False, True)
                for pipelined in order:
                    r = one_run(bundle, frames, rate, a.seconds, threads, pipelined)
                    r["round"] = k
                    runs.append(r)
                    print(f"round {k} {'pipelined' if pipelined else 'sequential'} t{threads}: out "
                          f"{r['output_hz']:.2f} Hz, ratio {r['goal_ratio']:.2f}, p50/p99 "
                          f"{r['stamp_to_output_ms']['p50']:.1f}/{r['stamp_to_output_ms']['p99']:.1f} ms",
                          file=sys.stderr, flush=True)
        load_after = [round(x, 2) for x in os.getloadavg()]
    summary = []
    for threads in a.threads:
        for pipelined in (True, False):
            sel = [r for r in runs if r["threads"] == threads and r["pipeline"] == pipelined]
            summary.append({
                "pipeline": pipelined, "threads": threads, "input_hz": _mean(sel, "input_hz"),
                "output_hz": _mean(sel, "output_hz"), "inference_ms": _mean(sel, "inference_ms"),
                "goal_ratio": _mean(sel, "goal_ratio"),
                "p50": float(np.mean([r["stamp_to_output_ms"]["p50"] for r in sel])),
                "p99": float(np.mean([r["stamp_to_output_ms"]["p99"] for r in sel])),
                "p99_over_p50": _mean(sel, "p99_over_p50"),
                "dropped_camera": int(sum(r["dropped"]["camera"] for r in sel)),
                "dropped_before_infer": int(sum(r["dropped"]["before_infer"] for r in sel)),
                "goal_ratio_met": _mean(sel, "goal_ratio") >= GOAL_RATIO,
                "goal_p99_met": _mean(sel, "p99_over_p50") <= GOAL_P99_OVER_P50})
    model = Path(str(m.source)).stem if getattr(m, "source", None) else a.model
    size_text = f"{size[0]}x{size[1]}"
    res = {"model": model, "size": size_text, "bundle": a.bundle or f"{a.model} exported to a temp dir",
           "frame_size": f"{frame_size[0]}x{frame_size[1]}", "rate_hz": rate, "seconds": a.seconds,
           "rounds": a.rounds, "goals": {"ratio": GOAL_RATIO, "p99_over_p50": GOAL_P99_OVER_P50},
           "load_before": load_before, "load_after": load_after, "summary": summary,
           "last_round": [r for r in runs if r["round"] == a.rounds - 1], "runs": runs}
    stem = f"pipeline_{model}_{size_text}" + (f"_{a.tag}" if a.tag else "")
    write_result(RESULTS, stem, res, markdown(res), a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
