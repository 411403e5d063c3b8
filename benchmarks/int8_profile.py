"""Where an int8 path's time goes, beside the same path in fp32: ONNX Runtime's per-node
profile of each path graph of two bundles (fp32 and int8 cpu scheme), grouped into what the
time is spent on, with the convolutions' achieved GMAC/s against this CPU's peak.

    python benchmarks/int8_profile.py --fp32 BUNDLE --int8 BUNDLE [--paths 0,4] [--runs 5]

Groups (by the operator ORT actually ran after its graph optimisations):
  - conv int8: QLinearConv (ONNX or com.microsoft NHWC), ConvInteger;
  - conv float: Conv / FusedConv (all of fp32; in int8, the convolutions the scheme left
    float: small K, and whatever the quantiser could not fuse);
  - quantise / dequantise: QuantizeLinear, DequantizeLinear (pairs left around float ops);
  - layout: Transpose, ReorderInput / ReorderOutput (NCHW <-> NHWC / NCHWc conversions);
  - resize: Resize / Upsample; add: Add, QLinearAdd, Sum; argmax; other.
The conv GMAC/s column is the path graph's MAdds (the manifest's count: convolutions and
matmuls) over the time of its convolution kernels alone, i.e. the kernels' own speed (the
profile cannot give per-node MAdds: int8 kernels run on pre-packed weights whose recorded
shape is not the kernel's); the frame's speed (all time) is in benchmarks/vs_official.py.
`outside kernels` is the run's time not in any node (session overhead, allocation). Writes
benchmarks/results/int8_profile_<model>_<H>x<W>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, machine_info, write_result  # noqa: E402
from _peak import gemm_ceiling, read_peak  # noqa: E402
from stem_profile import profiled_events  # noqa: E402

GROUPS = {
    "conv int8": {"QLinearConv", "ConvInteger", "NhwcQLinearConv"},
    "conv float": {"Conv", "FusedConv", "NhwcFusedConv"},
    "quantise / dequantise": {"QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear"},
    "layout": {"Transpose", "ReorderInput", "ReorderOutput"},
    "resize": {"Resize", "Upsample", "QLinearResize"},
    "add": {"Add", "QLinearAdd", "Sum"},
    "argmax": {"ArgMax"},
}
GROUP_OF = {op: g for g, ops in GROUPS.items() for op in ops}


def profile(file: Path, feeds: dict, runs: int, threads: int, prefix: str) -> dict:
    events = profiled_events(file, feeds, 2, runs, threads, prefix)
    per_node: dict[str, dict] = {}
    runs_us = []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            node = per_node.setdefault(e["name"], {"op": e["args"].get("op_name", "?"), "us": []})
            node["us"].append(e["dur"])
        elif e.get("name") == "model_run":
            runs_us.append(e["dur"])
    groups: dict[str, dict[str, float]] = {}
    for node in per_node.values():
        ms = statistics.median(node["us"][-runs:]) / 1e3
        g = groups.setdefault(GROUP_OF.get(node["op"], "other"), {"ms": 0.0, "nodes": 0})
        g["ms"] += ms
        g["nodes"] += 1
    others: dict[str, float] = {}
    for node in per_node.values():
        if node["op"] not in GROUP_OF:
            others[node["op"]] = others.get(node["op"], 0.0) + statistics.median(node["us"][-runs:]) / 1e3
    run_ms = statistics.median(runs_us[-runs:]) / 1e3
    groups["outside kernels"] = {"ms": max(run_ms - sum(g["ms"] for g in groups.values()), 0.0), "nodes": 0}
    return {"run_ms": run_ms, "groups": groups,
            "other_ops_ms": dict(sorted(others.items(), key=lambda kv: -kv[1]))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--fp32", required=True, help="fp32 bundle")
    ap.add_argument("--int8", required=True, help="int8 bundle (cpu scheme) of the same model and size")
    ap.add_argument("--paths", default="all", help="'all' or path indices, e.g. 0,4")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    from edgefuse.export.bundle import load_bundle

    bundles = {"fp32": load_bundle(args.fp32), "int8": load_bundle(args.int8)}
    m = bundles["fp32"].manifest
    if tuple(bundles["int8"].manifest.input_size) != tuple(m.input_size):
        raise SystemExit("--fp32 and --int8 are bundles of different input sizes")
    paths = [p.index for p in m.paths] if args.paths == "all" else [int(x) for x in args.paths.split(",")]
    h, w = m.input_size
    rng = np.random.default_rng(0)
    feeds = {"rgb": (rng.random((1, 3, h, w)) * 255).astype(np.float32),
             "depth": (rng.random((1, 1, h, w)) * 4000 + 500).astype(np.float32)}
    load_before = os.getloadavg()
    import onnxruntime as ort

    # Both precisions' paths read the fp32 stem's features (the cpu scheme keeps the stem fp32).
    stem = ort.InferenceSession(str(bundles["fp32"].stem_gate), providers=["CPUExecutionProvider"])
    feeds.update(zip([o.name for o in stem.get_outputs()], stem.run(None, feeds)))
    result: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for k in paths:
            for prec, b in bundles.items():
                print(f"profiling path {k} {prec} ...", file=sys.stderr, flush=True)
                r = profile(b.paths[k], feeds, args.runs, args.threads, str(Path(tmp) / f"p{k}{prec}"))
                r["path_madds"] = float(b.manifest.path(k).path_madds)
                result.setdefault(str(k), {})[prec] = r
    peak = read_peak(cores=args.threads)
    ceiling = {p: gemm_ceiling(p, args.threads) for p in ("fp32", "int8")}
    out = {"machine": machine_info(), "model": m.model.get("name"), "input_size": [h, w], "threads": args.threads,
           "runs": args.runs, "bundles": {"fp32": args.fp32, "int8": args.int8},
           "load_before": load_before, "load_after": os.getloadavg(), "peak": peak.record(),
           "gemm_ceiling_gmacs": ceiling, "paths": result}
    write_result(args.out, f"int8_profile_{m.model.get('name')}_{h}x{w}", out, markdown(out), args)


def markdown(out: dict) -> str:
    m, p = out["machine"], out["peak"]
    h, w = out["input_size"]
    lines = [f"# Where an int8 path's time goes: {out['model']} at {h}x{w}", "",
             f"`{out['command'] if 'command' in out else m['command']}` - {m['date']}, {out['threads']} ORT thread(s), "
             f"median of {out['runs']} profiled runs; load {out['load_before'][0]:.1f} before, "
             f"{out['load_after'][0]:.1f} after.", "",
             f"Peak: fp32 {p['fp32_gmacs']:.1f}, int8 {p['int8_gmacs']:.1f} GMAC/s ({p['ghz']:.2f} GHz, {p['units']} x "
             f"{p['vector_bits']}-bit units{', VNNI' if p['vnni'] else ', no VNNI'}); ONNX Runtime GEMM reaches "
             f"fp32 {out['gemm_ceiling_gmacs']['fp32']:.1f}, int8 {out['gemm_ceiling_gmacs']['int8']:.1f} GMAC/s here.", ""]
    groups = list(GROUPS) + ["other", "outside kernels"]
    lines += ["| path | precision | run ms | " + " | ".join(groups) + " | conv GMAC/s (of peak) |",
              "|---:|---|---:|" + "---:|" * (len(groups) + 1)]
    for k, per in out["paths"].items():
        for prec, r in per.items():
            g = r["groups"]
            conv_ms = sum(g[n]["ms"] for n in ("conv int8", "conv float") if n in g)
            gm = r["path_madds"] / 1e9 / (conv_ms / 1e3) if conv_ms else 0.0
            cells = [f"{g[n]['ms']:.0f} ({g[n]['ms'] / r['run_ms']:.0%})" if n in g else "-" for n in groups]
            lines.append(f"| {k} | {prec} | {r['run_ms']:.0f} | " + " | ".join(cells)
                         + f" | {gm:.1f} ({gm / p[prec + '_gmacs']:.0%}) |")
    lines += ["", "Cells: ms (share of the run). conv GMAC/s: the path's MAdds over its convolution kernels' time "
                  "(int8 and float). `other`: " + ", ".join(
                      sorted({op for per in out["paths"].values() for r in per.values() for op in r["other_ops_ms"]}))
              + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
