"""Latency of every graph of a bundle: eager PyTorch vs ONNX Runtime fp32 vs ONNX Runtime
int8 (Q/DQ), on this CPU, on the same frames, in one run.

    python benchmarks/export_latency.py --model dynmm-tiny --iterations 30 --threads 1

Exports an fp32 and an int8 bundle of the same weights (a registry name is initialised
with seed 0 and saved first, so both bundles hold identical weights), then times each
graph (stem_gate, path_k) in the three runtimes round-robin: one call of every
(graph, runtime) pair per round, so a change of machine load during the run affects all
alike. Inputs: synthetic benchmark frames; path graphs get the fp32 stem features of the
same frame. Writes benchmarks/results/export_latency_<model>_cpu.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine_info  # noqa: E402

from edgefuse.cli.common import parse_size  # noqa: E402


def _session(path: Path, threads: int):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _checkpoint(spec: str, size, work: Path) -> str:
    """A checkpoint both exports read: registry names get seed-0 weights saved to `work`."""
    from edgefuse.checkpoint import load_model, save_checkpoint
    from edgefuse.models.registry import list_configs

    if spec not in list_configs():
        return spec
    torch.manual_seed(0)
    loaded = load_model(spec, input_size=size)
    return str(save_checkpoint(work / f"{spec}.safetensors", loaded.model))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="dynmm-tiny", help="registry name, shipped weights or checkpoint")
    ap.add_argument("--input-size", default=None, help="HxW (default: the model's)")
    ap.add_argument("--iterations", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1, help="torch and ORT intra-op threads")
    ap.add_argument("--frames", type=int, default=4, help="synthetic frames cycled through")
    ap.add_argument("--calib-frames", type=int, default=16)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from edgefuse.calibration.frames import EVAL_SEED, load_frames
    from edgefuse.checkpoint import load_model
    from edgefuse.export.exporter import export_bundle

    size = parse_size(args.input_size)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = _checkpoint(args.model, size, work)
        fp32 = export_bundle(spec, work / "fp32", input_size=size, verify_frames=args.frames)
        int8 = export_bundle(spec, work / "int8", input_size=size, precision="int8",
                             calib_frames=args.calib_frames, verify_frames=args.frames)
        m = fp32.manifest
        model = load_model(spec, input_size=size).model.eval()
        h, w = m.input_size
        frames = load_frames("synthetic", args.frames, (h, w), seed=EVAL_SEED + 1)

        stem = model.stem_gate_module().eval()
        names = stem.output_names
        feeds = []
        with torch.no_grad():
            for f in frames:
                x = f.inputs()
                feats = dict(zip(names, (t.numpy() for t in stem(torch.from_numpy(x["rgb"]), torch.from_numpy(x["depth"])))))
                feeds.append({"stem_gate": x, **{f"path_{p.index}": {n: feats[n] for n in p.inputs} for p in m.paths}})

        graphs = ["stem_gate"] + [f"path_{p.index}" for p in m.paths]
        runners = {}
        for g in graphs:
            order = list(feeds[0][g])
            runners[(g, "torch")] = _torch_runner(model, stem, g, order)
            runners[(g, "ort_fp32")] = _ort_runner(_session(fp32.bundle / f"{g}.onnx", args.threads))
            runners[(g, "ort_int8")] = _ort_runner(_session(int8.bundle / f"{g}.onnx", args.threads))

        times: dict[tuple[str, str], list[float]] = {key: [] for key in runners}
        with torch.no_grad():
            for key, run in runners.items():           # warm every engine before timing
                for i in range(args.warmup):
                    run(feeds[i % len(feeds)][key[0]])
            for i in range(args.iterations):
                fd = feeds[i % len(feeds)]
                for key, run in runners.items():
                    t0 = time.perf_counter()
                    run(fd[key[0]])
                    times[key].append((time.perf_counter() - t0) * 1e3)

        v8 = int8.verify["int8"]
        madds = {"stem_gate": m.stem_gate.madds, **{f"path_{p.index}": p.path_madds for p in m.paths}}
        sizes = {g: ((fp32.bundle / f"{g}.onnx").stat().st_size, (int8.bundle / f"{g}.onnx").stat().st_size)
                 for g in graphs}
        rows = []
        for g in graphs:
            med = {rt: statistics.median(times[(g, rt)]) for rt in ("torch", "ort_fp32", "ort_int8")}
            rows.append({
                "graph": g, "madds": madds[g], "bytes_fp32": sizes[g][0], "bytes_int8": sizes[g][1],
                "median_ms": med,
                "p90_ms": {rt: float(np.percentile(times[(g, rt)], 90)) for rt in med},
                "int8_label_agreement_vs_fp32": v8["path_label_agreement_vs_fp32"].get(g),
            })
        frame_rows = []
        stem_row = rows[0]["median_ms"]
        for r in rows[1:]:
            frame_rows.append({"path": r["graph"], **{rt: stem_row[rt] + r["median_ms"][rt] for rt in stem_row}})

    result = {"model": args.model, "input_size": [h, w], "threads": args.threads, "iterations": args.iterations,
              "warmup": args.warmup, "frames": args.frames, "graphs": rows, "frame_via_path_ms": frame_rows,
              "int8": {k: v8.get(k) for k in ("label_agreement_vs_fp32", "gate_agreement_vs_fp32",
                                                "miou_fp32", "miou_int8", "miou_change")},
              "machine": machine_info()}
    import onnxruntime

    result["machine"]["onnxruntime"] = onnxruntime.__version__
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    stem_name = f"export_latency_{Path(args.model).stem}_cpu"
    (out / f"{stem_name}.json").write_text(json.dumps(result, indent=2) + "\n")
    mach = result["machine"]
    lines = [f"# Bundle graphs: eager PyTorch vs ONNX Runtime fp32 vs int8 — {args.model} at {h}x{w}", "",
             f"`{mach['command']}` — {mach['date']}, {mach.get('cpu_model', mach['processor'])}, "
             f"{args.threads} thread(s), torch {mach.get('torch')}, onnxruntime {mach['onnxruntime']}; "
             f"median of {args.iterations} round-robin iterations after {args.warmup} warm-up calls, batch 1.", "",
             "| graph | MMAC | torch eager ms | ORT fp32 ms | ORT int8 ms | fp32 vs eager | int8 vs fp32 "
             "| int8 labels = fp32 | size fp32 / int8 |",
             "| :--- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        md = r["median_ms"]
        agree = r["int8_label_agreement_vs_fp32"]
        lines.append(f"| {r['graph']} | {r['madds'] / 1e6:.1f} | {md['torch']:.2f} | {md['ort_fp32']:.2f} | "
                     f"{md['ort_int8']:.2f} | {md['torch'] / md['ort_fp32']:.2f}x | {md['ort_fp32'] / md['ort_int8']:.2f}x | "
                     f"{'-' if agree is None else f'{agree:.1%}'} | {r['bytes_fp32'] / 1e6:.2f} / {r['bytes_int8'] / 1e6:.2f} MB |")
    lines += ["", "A frame through path k = stem_gate + path_k (sum of the medians above):", "",
              "| path | torch eager ms | ORT fp32 ms | ORT int8 ms |", "| :--- | ---: | ---: | ---: |"]
    for r in frame_rows:
        lines.append(f"| {r['path']} | {r['torch']:.2f} | {r['ort_fp32']:.2f} | {r['ort_int8']:.2f} |")
    i8 = result["int8"]
    lines += ["", f"int8 vs fp32 on {args.frames} synthetic frames (end to end): labels agree on "
                  f"{i8['label_agreement_vs_fp32']:.2%} of pixels, gate choice on {i8['gate_agreement_vs_fp32']:.0%}"
              + (f", mIoU {i8['miou_fp32']:.3f} -> {i8['miou_int8']:.3f}" if i8.get("miou_fp32") is not None else "")
              + (" (random-init weights: mIoU is not meaningful)" if args.model in _registry() else "") + "."]
    (out / f"{stem_name}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _torch_runner(model, stem, graph: str, order: list[str]):
    """Eager PyTorch doing what the graph does (path graphs: logits -> int32 labels)."""
    if graph == "stem_gate":
        module = stem
    else:
        pm = model.path_module(int(graph.split("_")[1])).eval()

        def module(*feats):
            return pm(*feats).argmax(1).to(torch.int32)

    def run(feed):
        return module(*(torch.from_numpy(feed[n]) for n in order))
    return run


def _ort_runner(session):
    def run(feed):
        return session.run(None, feed)
    return run


def _registry() -> list[str]:
    from edgefuse.models.registry import list_configs

    return list_configs()


if __name__ == "__main__":
    main()
