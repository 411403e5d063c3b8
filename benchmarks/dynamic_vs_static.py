"""Dynamic vs static on the synthetic test scenes, in one run, with the ORT backend.

    python benchmarks/dynamic_vs_static.py [--model dynmm-tiny-synth] [--frames 200]

Exports the model to a bundle, then `edgefuse bench` measures every graph (round-robin,
after separate warm-ups) and runs the same synthetic frames through the gate's chosen path
(dynamic) and through the full, most-fusing path (static), interleaved. Optionally, with
--budget-ms, the same frames again under the closed-loop latency budget. Checks the goals
of issue 5:
  1. stem/gate overhead < 5% of the full path (p50);
  2. each path's frame p50 (stem/gate + path) within 15% of what its MAdds share predicts
     (full frame p50 x MAdds_k / MAdds_full);
  3. mean dynamic latency >= 25% under the static full path;
and of issue 10:
  4. the stem/gate's share of a full-path frame's time within 15% of its share of the
     frame's MAdds (time share / MAdds share <= 1.15);
  5. the measured dynamic speed-up realises >= 90% of what the path mix predicts from MAdds;
  6. a budget no path can meet (--infeasible-fraction of the stem/gate's p50 alone, so it
     stays infeasible if the machine's load changes between the runs) is reported as
     infeasible by the run, with the cheapest path's measured latency.
Writes benchmarks/results/dynamic_vs_static_<model>_<backend>[_<tag>].{json,md}.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, bundle_or_export, machine_info, write_result  # noqa: E402

from edgefuse.checkpoint import load_model, shipped_weights  # noqa: E402
from edgefuse.cli.common import parse_size  # noqa: E402
from edgefuse.models.costs import measure_costs  # noqa: E402
from edgefuse.runtime.bench import BenchConfig, run_bench  # noqa: E402

GOAL_OVERHEAD, GOAL_MADDS_FIT, GOAL_SAVING = 0.05, 0.15, 0.25
GOAL_STEM_SHARE, GOAL_REALISED = 1.15, 0.90


def budget_run(bundle: str, camera: str, frames: int, budget_ms: float, threads: int) -> dict:
    """The same frames under the latency budget: mean latency and path mix."""
    from edgefuse.runtime.pipeline import RunConfig, run

    s = run(RunConfig(bundle=bundle, camera=camera, frames=frames, budget_ms=budget_ms, threads=threads))
    inference = [g + p for g, p in zip(s.stages["gate"], s.stages["path"])]
    return {"budget_ms": budget_ms, "frames": s.frames,
            "mean_inference_ms": sum(inference) / len(inference),
            "path_distribution": {str(r["path"]): r["share"] for r in s.path_rows()},
            "budget": s.budget}


def gate_overhead(bundle: str, model, threads: int, iterations: int, warmup: int) -> dict:
    """The gate's own cost, measured: the bundle's stem_gate.onnx against the same stem
    exported without the gate (stem_only.onnx, written next to it), timed round-robin with
    the runner's session options. The stem itself is work the static model does too."""
    import numpy as np
    import onnxruntime as ort
    import torch

    from edgefuse.export.onnx_graphs import export_onnx
    from edgefuse.runtime.bench import time_graphs
    from edgefuse.runtime.stats import LatencyStats

    class StemOnly(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, rgb, depth):
            feats = self.m.stem(rgb, depth)
            return tuple(feats[n] for n in self.m.feature_names)

    h, w = model.config.input_size
    rgb, depth = torch.rand(1, 3, h, w) * 255, torch.rand(1, 1, h, w) * 4000
    stem_file = Path(bundle) / "stem_only.onnx"
    stem_file.write_bytes(export_onnx(StemOnly(model.eval()), (rgb, depth), ["rgb", "depth"],
                                      list(model.feature_names)))
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    feeds = {"rgb": rgb.numpy(), "depth": depth.numpy()}
    sessions = {name: ort.InferenceSession(str(Path(bundle) / f"{name}.onnx"), opts,
                                           providers=["CPUExecutionProvider"])
                for name in ("stem_gate", "stem_only")}
    samples = time_graphs({n: (lambda s=s: s.run(None, feeds)) for n, s in sessions.items()},
                          warmup, iterations, None)
    p50 = {n: LatencyStats.of(v).p50 for n, v in samples.items()}
    stem_file.unlink()
    return {"stem_gate_p50_ms": p50["stem_gate"], "stem_only_p50_ms": p50["stem_only"],
            "gate_p50_ms": p50["stem_gate"] - p50["stem_only"], "check": bool(np.isfinite(list(p50.values())).all())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    default = "dynmm-tiny-synth" if "dynmm-tiny-synth" in shipped_weights() else "dynmm-tiny"
    ap.add_argument("--model", default=default, help=f"checkpoint / shipped weights / registry name ({default})")
    ap.add_argument("--input-size", default=None, help="HxW (default: the model's)")
    ap.add_argument("--camera", default="synthetic", help="frame source (default: synthetic test scenes)")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="ORT intra-op threads (1: least noise on a shared box)")
    ap.add_argument("--budget-ms", type=float, default=None, help="also run the frames under this budget")
    ap.add_argument("--budget-fraction", type=float, default=0.8,
                    help="without --budget-ms: budget = this fraction of the measured static latency (0: no budget run)")
    ap.add_argument("--infeasible-fraction", type=float, default=0.5,
                    help="also run under a budget of this fraction of the stem/gate's p50 (0: skip)")
    ap.add_argument("--bundle", default=None, help="use this bundle instead of exporting")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--tag", default="", help="suffix of the result file names (e.g. the machine)")
    args = ap.parse_args()

    size = parse_size(args.input_size)
    with tempfile.TemporaryDirectory() as tmp:
        bundle = bundle_or_export(args.bundle, args.model, size, tmp, verify_frames=4)
        result = run_bench(BenchConfig(bundle=bundle, camera=args.camera, frames=args.frames,
                                       warmup=args.warmup, iterations=args.iterations, threads=args.threads),
                           log=lambda s: print(s, flush=True))
        budget_ms = args.budget_ms or (args.budget_fraction * result.data["dynamic"]["static_latency_ms"])
        budget = budget_run(bundle, args.camera, args.frames, budget_ms, args.threads) if budget_ms else None
        if budget is not None:
            budget["static_latency_ms"] = result.data["dynamic"]["static_latency_ms"]
        infeasible = None
        if args.infeasible_fraction:
            infeasible = budget_run(bundle, args.camera, args.frames, args.infeasible_fraction
                                    * result.data["stem_gate"]["latency_ms"]["p50"], args.threads)
        model = load_model(args.model, input_size=size).model
        gate = gate_overhead(bundle, model, args.threads, args.iterations, args.warmup)
    data = result.data
    costs = measure_costs(model)

    stem = data["stem_gate"]["latency_ms"]["p50"]
    full = data["dynamic"]["full_path"]
    paths = {p["index"]: p for p in data["paths"]}
    full_frame = stem + paths[full]["latency_ms"]["p50"]
    fit = []
    for k, p in sorted(paths.items()):
        share = p["madds"] / paths[full]["madds"]
        predicted = full_frame * share
        measured = stem + p["latency_ms"]["p50"]
        path_share = p["path_madds"] / paths[full]["path_madds"]
        path_pred = paths[full]["latency_ms"]["p50"] * path_share
        fit.append({"index": k, "madds_share": share, "predicted_frame_p50_ms": predicted,
                    "measured_frame_p50_ms": measured, "rel_error": measured / predicted - 1,
                    "path_only_predicted_p50_ms": path_pred, "path_only_measured_p50_ms": p["latency_ms"]["p50"],
                    "path_only_rel_error": p["latency_ms"]["p50"] / path_pred - 1})
    overhead = data["stem_gate"]["overhead_vs_full_path"]
    saving = 1 - data["dynamic"]["mean_latency_ms"] / data["dynamic"]["static_latency_ms"]
    goals = {
        "stem_gate_overhead": {"value": overhead, "goal": f"< {GOAL_OVERHEAD:.0%}", "met": overhead < GOAL_OVERHEAD},
        "p50_vs_madds_share": {"worst_rel_error": max(abs(f["rel_error"]) for f in fit),
                               "goal": f"within {GOAL_MADDS_FIT:.0%}",
                               "met": all(abs(f["rel_error"]) <= GOAL_MADDS_FIT for f in fit)},
        "dynamic_saving": {"value": saving, "goal": f">= {GOAL_SAVING:.0%}", "met": saving >= GOAL_SAVING},
        "stem_share_vs_madds": {"value": data["stem_gate"]["share_ratio"],
                                "time_share": data["stem_gate"]["time_share"],
                                "madds_share": data["stem_gate"]["madds_share"],
                                "goal": f"<= {GOAL_STEM_SHARE:.2f}",
                                "met": data["stem_gate"]["share_ratio"] <= GOAL_STEM_SHARE},
        "speedup_realised": {"value": data["dynamic"]["speedup_realised"],
                             "predicted": data["dynamic"]["predicted_speedup_madds"],
                             "measured": data["dynamic"]["speedup"], "goal": f">= {GOAL_REALISED:.0%}",
                             "met": data["dynamic"]["speedup_realised"] >= GOAL_REALISED},
    }
    if infeasible is not None:
        b = infeasible["budget"] or {}
        goals["infeasible_budget_said"] = {"value": b.get("feasible") is False, "goal": "reported",
                                           "met": b.get("feasible") is False}
    if max(data["dynamic"]["path_distribution"].values()) >= 0.99:
        # One path on every frame (an untrained gate): the "saving" is that path's cost, not a
        # dynamic network's, so the goal is not measured.
        goals["dynamic_saving"]["met"] = None
        goals["speedup_realised"]["met"] = None
    gate["gate_vs_full_path"] = gate["gate_p50_ms"] / paths[full]["latency_ms"]["p50"]
    out = {"command": machine_info()["command"], "machine": {**machine_info(), **data["machine"]},
           "model": args.model, "gate_madds": costs.gate_madds, "stem_madds": costs.stem_madds,
           "gate_overhead": gate,
           "load_average": os.getloadavg(),
           "bench": data, "madds_fit": fit, "budget_run": budget, "infeasible_budget_run": infeasible,
           "goals": goals}
    name = f"dynamic_vs_static_{Path(args.model).stem}_{data['backend']}" + (f"_{args.tag}" if args.tag else "")
    write_result(args.out, name, out, markdown(out), args)


def _met(met: bool | None) -> str:
    return "n/a (the gate took one path on every frame)" if met is None else ("yes" if met else "no")


def markdown(out: dict) -> str:
    b, g, m = out["bench"], out["goals"], out["machine"]
    d = b["dynamic"]
    dist = ", ".join(f"{k}: {v:.0%}" for k, v in d["path_distribution"].items())
    lines = [
        f"# Dynamic vs static: {out['model']} at {b['input_size'][0]}x{b['input_size'][1]}, {b['backend']}",
        "", f"`{out['command']}` - {m['date']}, {m.get('cpu_model', m.get('cpu'))}, "
        f"{m.get('affinity') or m['cpu_count']} cores, onnxruntime {m['onnxruntime']}, "
        f"threads {m.get('threads', 'default')}. Shared machine: see the CV column.", "",
        "| goal | measured | target | met |", "|---|---:|---:|:---:|",
        f"| stem/gate overhead (p50 vs full path p50) | {g['stem_gate_overhead']['value']:.1%} | "
        f"{g['stem_gate_overhead']['goal']} | {'yes' if g['stem_gate_overhead']['met'] else 'no'} |",
        f"| worst path p50 vs MAdds-share prediction | {g['p50_vs_madds_share']['worst_rel_error']:.1%} | "
        f"{g['p50_vs_madds_share']['goal']} | {'yes' if g['p50_vs_madds_share']['met'] else 'no'} |",
        f"| mean dynamic latency under static | {g['dynamic_saving']['value']:.1%} | "
        f"{g['dynamic_saving']['goal']} | {_met(g['dynamic_saving']['met'])} |",
        f"| stem/gate share of a full-path frame: time / MAdds | {g['stem_share_vs_madds']['time_share']:.1%} / "
        f"{g['stem_share_vs_madds']['madds_share']:.1%} = {g['stem_share_vs_madds']['value']:.2f} | "
        f"{g['stem_share_vs_madds']['goal']} | {_met(g['stem_share_vs_madds']['met'])} |",
        f"| speed-up realised vs MAdds prediction | x{g['speedup_realised']['measured']:.3f} of "
        f"x{g['speedup_realised']['predicted']:.3f} = {g['speedup_realised']['value']:.1%} | "
        f"{g['speedup_realised']['goal']} | {_met(g['speedup_realised']['met'])} |"]
    if "infeasible_budget_said" in g:
        lines.append(f"| infeasible budget reported | {'yes' if g['infeasible_budget_said']['value'] else 'no'} | "
                     f"reported | {_met(g['infeasible_budget_said']['met'])} |")
    lines += [
        "", f"Load average at the end: {', '.join(f'{x:.1f}' for x in out['load_average'])}.", "",
        f"The stem (both encoders' first stage) is work the static model does too; the gate alone, "
        f"timed as stem_gate.onnx minus the same stem exported without it, costs "
        f"{out['gate_overhead']['gate_p50_ms']:.3f} ms = {out['gate_overhead']['gate_vs_full_path']:.1%} "
        f"of the full path (stem/gate p50 {out['gate_overhead']['stem_gate_p50_ms']:.3f} ms, stem only "
        f"{out['gate_overhead']['stem_only_p50_ms']:.3f} ms).", "",
        f"Gate: {out['gate_madds'] / 1e6:.2f} MMAC; stem (both encoders' first stage): "
        f"{out['stem_madds'] / 1e6:.2f} MMAC. Path mix on {d['frames']} frames: {dist}. Dynamic mean "
        f"{d['mean_latency_ms']:.2f} ms, static (stem/gate + full path {d['full_path']}) "
        f"{d['static_latency_ms']:.2f} ms, speed-up x{d['speedup']:.3f}.", "",
        "| path | MAdds share | p50 ms (path) | cv | frame p50 ms | predicted | error | path-only error |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    by = {p["index"]: p for p in b["paths"]}
    for f in out["madds_fit"]:
        s = by[f["index"]]["latency_ms"]
        lines.append(f"| {f['index']} | {f['madds_share']:.3f} | {s['p50']:.3f} | {s['cv']:.1%} | "
                     f"{f['measured_frame_p50_ms']:.3f} | {f['predicted_frame_p50_ms']:.3f} | "
                     f"{f['rel_error']:+.1%} | {f['path_only_rel_error']:+.1%} |")
    sg = b["stem_gate"]["latency_ms"]
    lines.append(f"| stem/gate | | {sg['p50']:.3f} | {sg['cv']:.1%} | | | | |")
    if out["budget_run"]:
        r = out["budget_run"]
        mix = ", ".join(f"{k}: {v:.0%}" for k, v in r["path_distribution"].items())
        lines += ["", f"Same frames under `--budget-ms {r['budget_ms']:.2f}` "
                      f"({r['budget_ms'] / r['static_latency_ms']:.0%} of static): mean stem/gate + path "
                      f"{r['mean_inference_ms']:.2f} ms over {r['frames']} frames "
                      f"({1 - r['mean_inference_ms'] / r['static_latency_ms']:.1%} under static); mix {mix}."]
    if out.get("infeasible_budget_run"):
        r = out["infeasible_budget_run"]
        b = r["budget"] or {}
        said = (f"the run reports it infeasible: the cheapest path (path {b['cheapest_path']}) takes "
                f"{b['cheapest_ms']:.2f} ms (median of {b['cheapest_frames']} frames)"
                if b.get("feasible") is False else "the run did NOT report it infeasible")
        lines += ["", f"Under an infeasible `--budget-ms {r['budget_ms']:.2f}`: mean stem/gate + path "
                      f"{r['mean_inference_ms']:.2f} ms; {said}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
