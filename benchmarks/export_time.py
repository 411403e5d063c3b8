"""Wall time of each phase of `edgefuse export ... --precision int8` (issue 19), and its peak memory.

    nice -n 10 python benchmarks/export_time.py --model dynmm-r34-nbt1d --input-size 480x640 \
        --int8-target cpu --label after

Runs `export_bundle` in this process (a registry name is randomly initialised from seed 0:
timing does not need trained weights) and times the phases from the export's own progress
steps (the same messages `edgefuse export` prints), plus, where they exist in the version of
the code being measured, the calibration functions inside a step (ONNX Runtime's calibrator,
the quantiser, edgefuse's one-pass collector), so a before/after comparison of two versions of
the exporter uses one script. Peak memory is this process's max RSS (the calibration holds
tensors in memory). `--compare FILE.json` adds a before/after table against an earlier run.
Writes benchmarks/results/export_time_<model>_<HxW>_<target>[_<label>].{json,md}.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, load_average, write_result  # noqa: E402

# Phase of each progress step, by the start of its message (first match wins).
PHASES = (
    ("export ", "torch -> ONNX export"),
    ("load calibration frames", "calibration frames"),
    ("calibrat", "calibration (all paths)"),
    ("quantize ", "quantise (per path)"),
    ("store the weights once", "store weights once"),
    ("check ", "check graphs"),
    ("load verification frames", "verification frames"),
    ("verify ", "verification (fp32 + int8)"),
)

# Functions timed inside the steps, where the measured code has them (module, attribute path).
INNER = (
    ("onnxruntime.quantization.quantize", "create_calibrator", "ORT: build calibrator (augment graph + session)"),
    ("onnxruntime.quantization.calibrate", "HistogramCalibrater.collect_data", "ORT: calibration inference + histograms"),
    ("onnxruntime.quantization.calibrate", "MinMaxCalibrater.collect_data", "ORT: calibration inference (MinMax)"),
    ("onnxruntime.quantization.calibrate", "HistogramCalibrater.compute_data", "ORT: percentiles from histograms"),
    ("onnxruntime.quantization.qdq_quantizer", "QDQQuantizer.quantize_model", "ORT: quantise graph (QDQ)"),
    ("onnxruntime.quantization.quantize", "quantize_static", "ORT: quantize_static total"),
    ("edgefuse.export.int8", "path_feeds", "edgefuse: stem features for a path"),
    ("edgefuse.export.calibrate", "shared_graph", "edgefuse: merge graphs (shared tensors once)"),
    ("edgefuse.export.calibrate", "Collector.add", "edgefuse: histograms (one pass; its inference is outside)"),
    ("edgefuse.export.calibrate", "Collector.ranges", "edgefuse: percentiles from histograms"),
)


def _wrap_inner(totals: dict[str, float], counts: dict[str, int], cpu: dict[str, float]) -> list[str]:
    """Wrap every INNER function that exists with a timer; returns the labels wrapped."""
    wrapped = []
    for module_name, attr, label in INNER:
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        owner, _, name = attr.rpartition(".")
        target = getattr(module, owner, None) if owner else module
        fn = getattr(target, name, None) if target is not None else None
        if fn is None:
            continue

        def timed(*a, _fn=fn, _label=label, **kw):
            t, c = time.perf_counter(), time.process_time()
            try:
                return _fn(*a, **kw)
            finally:
                totals[_label] += time.perf_counter() - t
                cpu[_label] += time.process_time() - c
                counts[_label] += 1

        setattr(target, name, functools.wraps(fn)(timed))
        if not owner:   # a module function may have been imported by name elsewhere
            for other in list(sys.modules.values()):
                if other is not None and other is not module and getattr(other, name, None) is fn:
                    setattr(other, name, timed)
        wrapped.append(label)
    return wrapped


def _phase(message: str) -> str:
    for prefix, phase in PHASES:
        if message.startswith(prefix):
            return phase
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[harness_parser()])
    ap.add_argument("--model", default="dynmm-r34-nbt1d")
    ap.add_argument("--input-size", default=None, help="HxW (default: the model's own)")
    ap.add_argument("--int8-target", default="cpu")
    ap.add_argument("--calib-frames", type=int, default=None, help="default: the exporter's")
    ap.add_argument("--calib-tolerance", type=float, default=None, help="default: the exporter's (after issue 19)")
    ap.add_argument("--verify-frames", type=int, default=None, help="default: the exporter's")
    ap.add_argument("--reduce-range", choices=("on", "off"), default=None,
                    help="cpu scheme's 7-bit weights (default: the exporter's, on)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (ONNX Runtime: as the exporter sets)")
    ap.add_argument("--label", default="", help="suffix of the result name, e.g. before / after")
    ap.add_argument("--compare", default=None, help="an earlier result JSON: adds a before/after table")
    ap.add_argument("--rerender", default=None, metavar="RESULT.json",
                    help="no export: rewrite RESULT.md from RESULT.json (e.g. with a --compare that did not "
                         "exist when it ran); the footer keeps the run's own command, machine, load and date")
    args = ap.parse_args()
    if args.rerender:
        _rerender(Path(args.rerender), args)
        return

    import torch

    from edgefuse.cli.common import parse_size
    from edgefuse.export.exporter import ExportOptions, export_bundle

    torch.set_num_threads(args.threads)
    size = parse_size(args.input_size) if args.input_size else None
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    importlib.import_module("edgefuse.export.int8")
    try:
        importlib.import_module("edgefuse.export.calibrate")
    except ImportError:
        pass
    inner_cpu: dict[str, float] = defaultdict(float)
    inner = _wrap_inner(totals, counts, inner_cpu)
    steps: list[tuple[float, str]] = []
    step_cpu: list[float] = []
    counted: dict[str, tuple[int, int]] = {}

    def progress(message: str) -> None:
        steps.append((time.perf_counter(), message))
        step_cpu.append(time.process_time())
        print(f"{time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)

    def count(done: int, total: int) -> None:
        counted[steps[-1][1]] = (done, total)

    overrides = {k: v for k, v in (("calib_frames", args.calib_frames), ("verify_frames", args.verify_frames),
                                   ("calib_tolerance", args.calib_tolerance)) if v is not None}
    if args.reduce_range is not None:
        overrides["int8_reduce_range"] = args.reduce_range == "on"
    opts = ExportOptions(input_size=size, precision="int8", int8_target=args.int8_target, force=True, **overrides)
    import inspect

    extra = {"count": count} if "count" in inspect.signature(export_bundle).parameters else {}
    torch.manual_seed(0)
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="export_time_") as tmp:
        t0, c0 = time.perf_counter(), time.process_time()
        result = export_bundle(args.model, Path(tmp) / "bundle", opts, progress=progress, **extra)
        total, total_cpu = time.perf_counter() - t0, time.process_time() - c0
    bounds = [t for t, _ in steps] + [t0 + total]
    per_step = [(m, bounds[i + 1] - t) for i, (t, m) in enumerate(steps)]
    phases: dict[str, float] = defaultdict(float)
    first = steps[0][0] - t0 if steps else total   # model build before the first step
    phases["build model (random init)"] += first
    for message, seconds in per_step:
        phases[_phase(message)] += seconds
    cbounds = step_cpu + [c0 + total_cpu]
    phases_cpu: dict[str, float] = defaultdict(float)
    phases_cpu["build model (random init)"] += (step_cpu[0] - c0) if step_cpu else total_cpu
    for i, (_, message) in enumerate(steps):
        phases_cpu[_phase(message)] += cbounds[i + 1] - cbounds[i]
    calib = result.manifest.calibration
    i8 = result.verify.get("int8", {})
    data = {
        "model": args.model, "input_size": list(result.manifest.input_size), "int8_target": args.int8_target,
        "label": args.label,
        "options": {"calib_frames": opts.calib_frames, "calib_tolerance": getattr(opts, "calib_tolerance", None),
                    "verify_frames": opts.verify_frames, "threads": args.threads,
                    "reduce_range": opts.int8_reduce_range},
        "total_s": round(total, 2), "phases_s": {k: round(v, 2) for k, v in phases.items()},
        "total_cpu_s": round(total_cpu, 2), "phases_cpu_s": {k: round(v, 2) for k, v in phases_cpu.items()},
        "steps_s": [[m, round(s, 2)] for m, s in per_step],
        "inner_s": {k: {"seconds": round(totals[k], 2), "cpu_seconds": round(inner_cpu[k], 2), "calls": counts[k]}
                    for k in inner if counts[k]},
        "counted": {m: list(v) for m, v in counted.items()},
        "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2),
        "calibration": calib,
        "int8_vs_fp32": {"label_agreement": i8.get("label_agreement_vs_fp32"),
                         "gate_agreement": i8.get("gate_agreement_vs_fp32"),
                         "miou_fp32": i8.get("miou_fp32"), "miou_int8": i8.get("miou_int8"),
                         "path_label_agreement": i8.get("path_label_agreement_vs_fp32")},
        "load_average_start": load_before, "nice": os.nice(0),
    }
    h, w = result.manifest.input_size
    name = f"export_time_{args.model}_{h}x{w}_{args.int8_target}" + (f"_{args.label}" if args.label else "")
    write_result(Path(__file__).parent / "results", name, data, _markdown(data, args), args)


def _markdown(data: dict, args) -> str:
    h, w = data["input_size"]
    calib = data["calibration"]
    lines = [f"# int8 export time: {data['model']} {h}x{w}, `{data['int8_target']}` scheme"
             + (f" ({data['label']})" if data["label"] else ""), "",
             f"Total {data['total_s']:.1f} s, peak RSS {data['peak_rss_gb']:.2f} GB; calibration "
             f"{calib.get('frames')} frames" + (f" of at most {calib['max_frames']}" if "max_frames" in calib else "")
             + f"; int8 vs fp32 labels {_pct(data['int8_vs_fp32']['label_agreement'])}, gate "
             f"{_pct(data['int8_vs_fp32']['gate_agreement'])}{_miou(data['int8_vs_fp32'])}. Threads: torch "
             f"{data['options']['threads']}, nice {data['nice']}.", ""]
    before = json.loads(Path(args.compare).read_text()) if args.compare and Path(args.compare).is_file() else None
    if args.compare and before is None:
        lines += [f"(--compare {args.compare}: no such file when this run ended)", ""]
    lines += ["Wall seconds and this process's CPU seconds (all its threads) per phase; the machine is "
              "shared, so CPU seconds compare better across runs than wall seconds.", ""]
    if before is None:
        lines += ["| phase | wall (s) | CPU (s) |", "| --- | ---: | ---: |"]
    else:
        lines += ["| phase | before wall (s) | before CPU (s) | after wall (s) | after CPU (s) |",
                  "| --- | ---: | ---: | ---: | ---: |"]
    keys = list(data["phases_s"]) + [k for k in (before or {}).get("phases_s", {}) if k not in data["phases_s"]]
    for k in keys:
        now = [data["phases_s"].get(k), data.get("phases_cpu_s", {}).get(k)]
        old = [] if before is None else [before["phases_s"].get(k), before.get("phases_cpu_s", {}).get(k)]
        lines.append("| " + " | ".join([k] + [_s(x) for x in old + now]) + " |")
    tot = [data["total_s"], data.get("total_cpu_s")]
    old = [] if before is None else [before["total_s"], before.get("total_cpu_s")]
    lines.append("| **total** | " + " | ".join(f"**{_s(x)}**" for x in old + tot) + " |")
    if before is not None:
        lines.append(f"| peak RSS (GB) | {before['peak_rss_gb']:.2f} | | {data['peak_rss_gb']:.2f} | |")
        lines.append(f"| calibration frames | {before['calibration'].get('frames')} | | {calib.get('frames')} | |")
    for title, run in (("Inside the steps", data), ("Before, inside the steps", before)):
        if run is None or not run.get("inner_s"):
            continue
        lines += ["", f"{title}:", "", "| function | wall (s) | CPU (s) | calls |", "| --- | ---: | ---: | ---: |"]
        lines += [f"| {k} | {v['seconds']:.1f} | {_s(v.get('cpu_seconds'))} | {v['calls']} |"
                  for k, v in run["inner_s"].items()]
    if calib.get("range_change"):
        lines += ["", f"Range change at each check (mean over activation values / largest): {calib['range_change']} / "
                      f"{calib.get('range_change_max')}; one pass: {calib.get('one_pass')}."]
    return "\n".join(lines) + "\n"


def _rerender(path: Path, args) -> None:
    data = json.loads(path.read_text())
    # results of an earlier version of this script name the histogram timer differently
    old = "edgefuse: one-pass inference + histograms"
    if old in data.get("inner_s", {}):
        data["inner_s"]["edgefuse: histograms (one pass; its inference is outside)"] = data["inner_s"].pop(old)
    m = data["machine"]
    text = _markdown(data, args).rstrip("\n") + (
        f"\n\n_Recorded by `{data['command']}` on {m.get('cpu_model', m.get('processor'))} ({m.get('cpu_count')} "
        f"cores), load {data['load_average']}, {m['date']}; tables re-rendered from the JSON"
        + (f" with `--compare {args.compare}`" if args.compare else "") + "._\n")
    path.with_suffix(".md").write_text(text, encoding="utf-8")
    path.write_text(json.dumps(data, indent=2) + "\n")
    print(text)


def _s(x) -> str:
    return "-" if x is None else f"{x:.1f}"


def _miou(i8: dict) -> str:
    if i8.get("miou_fp32") is None:
        return ""
    return f", mIoU {100 * i8['miou_fp32']:.2f} -> {100 * i8['miou_int8']:.2f}"


def _pct(x) -> str:
    return "-" if x is None else f"{x:.2%}"


if __name__ == "__main__":
    main()
