"""Where the stem/gate's time goes: ONNX Runtime's own per-node profile of stem_gate.onnx
next to the full path's, grouped by operator, with the MAdds each graph computes.

    python benchmarks/stem_profile.py [--model dynmm-tiny-synth] [--input-size HxW] [--runs 100]

Exports the model (or takes --bundle), runs each graph `--runs` times in one ORT session
with `SessionOptions.enable_profiling` (the runner's options: full graph optimisation, no
spinning, `--threads`), and sums the per-node kernel times (median over runs) by operator
type. MAdds count only convolutions and matmuls (as torch.utils.flop_counter does), so the
element-wise, pooling and layout work that the table shows is what makes a graph cost more
than its MAdds share. Writes benchmarks/results/stem_profile_<model>_<H>x<W>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, bundle_or_export, machine_info, write_result  # noqa: E402

from edgefuse.cli.common import parse_size  # noqa: E402


def profiled_events(file: Path, feeds: dict, warmup: int, runs: int, threads: int, prefix: str) -> list[dict]:
    """ONNX Runtime's profile events of `warmup` + `runs` runs of one graph, in a session with
    the runner's options (full graph optimisation, no spinning, `threads` intra-op threads)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.enable_profiling = True
    opts.profile_file_prefix = prefix
    sess = ort.InferenceSession(str(file), opts, providers=["CPUExecutionProvider"])
    names = [i.name for i in sess.get_inputs()]
    for _ in range(warmup + runs):
        sess.run(None, {n: feeds[n] for n in names})
    return json.loads(Path(sess.end_profiling()).read_text())


def profile_graph(file: Path, feeds: dict, runs: int, threads: int, prefix: str) -> dict:
    events = profiled_events(file, feeds, 5, runs, threads, prefix)
    per_node: dict[tuple[str, str], list[float]] = {}
    runs_us = []
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            per_node.setdefault((e["name"][: -len("_kernel_time")], e["args"].get("op_name", "?")), []).append(e["dur"])
        elif e.get("name") == "model_run":
            runs_us.append(e["dur"])
    node_ms = {k: statistics.median(v[-runs:]) / 1e3 for k, v in per_node.items()}
    by_op: dict[str, float] = {}
    for (_, op), ms in node_ms.items():
        by_op[op] = by_op.get(op, 0.0) + ms
    top = sorted(node_ms.items(), key=lambda kv: -kv[1])[:12]
    return {"run_ms": statistics.median(runs_us[-runs:]) / 1e3, "nodes_ms": sum(node_ms.values()),
            "by_op_ms": dict(sorted(by_op.items(), key=lambda kv: -kv[1])),
            "top_nodes": [{"node": k[0], "op": k[1], "ms": v} for k, v in top], "nodes": len(node_ms)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--model", default="dynmm-tiny-synth")
    ap.add_argument("--input-size", default=None)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--bundle", default=None)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    size = parse_size(args.input_size)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        bundle = bundle_or_export(args.bundle, args.model, size, tmp)
        from edgefuse.export.bundle import load_bundle
        from edgefuse.runtime.bench import full_path

        b = load_bundle(bundle)
        m = b.manifest
        h, w = m.input_size
        rng = np.random.default_rng(0)
        feeds = {"rgb": (rng.random((1, 3, h, w)) * 255).astype(np.float32),
                 "depth": (rng.random((1, 1, h, w)) * 4000 + 500).astype(np.float32)}
        import onnxruntime as ort

        stem = ort.InferenceSession(str(b.stem_gate), providers=["CPUExecutionProvider"])
        feeds.update(zip([o.name for o in stem.get_outputs()], stem.run(None, feeds)))
        full = full_path(m)
        graphs = {"stem_gate": (b.stem_gate, float(m.stem_gate.madds)),
                  f"path_{full}": (b.paths[full], float(m.path(full).path_madds))}
        result = {name: {**profile_graph(f, feeds, args.runs, args.threads, str(Path(tmp) / name)), "madds": madds}
                  for name, (f, madds) in graphs.items()}
    total_ms = sum(r["run_ms"] for r in result.values())
    total_madds = sum(r["madds"] for r in result.values())
    st = result["stem_gate"]
    out = {"command": machine_info()["command"], "machine": machine_info(), "model": args.model,
           "input_size": [h, w], "threads": args.threads, "runs": args.runs,
           "load_before": load_before, "load_after": os.getloadavg(), "graphs": result,
           "stem_time_share": st["run_ms"] / total_ms, "stem_madds_share": st["madds"] / total_madds}
    write_result(args.out, f"stem_profile_{Path(args.model).stem}_{h}x{w}", out, markdown(out), args)


def markdown(out: dict) -> str:
    m, g = out["machine"], out["graphs"]
    names = list(g)
    ops = sorted({op for r in g.values() for op in r["by_op_ms"]}, key=lambda op: -g[names[0]]["by_op_ms"].get(op, 0))
    lines = [f"# Where the stem/gate's time goes: {out['model']} at {out['input_size'][0]}x{out['input_size'][1]}", "",
             f"`{out['command']}` - {m['date']}, {m.get('cpu_model', m['processor'])}, {out['threads']} ORT thread(s), "
             f"median of {out['runs']} profiled runs; load average {out['load_before'][0]:.1f} before, "
             f"{out['load_after'][0]:.1f} after.", "",
             f"The stem/gate is {out['stem_time_share']:.1%} of a full-path frame's time (profiled runs) for "
             f"{out['stem_madds_share']:.1%} of its MAdds (ratio {out['stem_time_share'] / out['stem_madds_share']:.2f}).", "",
             "| operator | " + " | ".join(f"{n} ms" for n in names) + " | " + " | ".join(f"{n} share" for n in names) + " |",
             "|---|" + "---:|" * (2 * len(names))]
    for op in ops:
        vals = [g[n]["by_op_ms"].get(op, 0.0) for n in names]
        shares = [v / g[n]["nodes_ms"] if g[n]["nodes_ms"] else 0.0 for v, n in zip(vals, names)]
        lines.append(f"| {op} | " + " | ".join(f"{v:.3f}" for v in vals) + " | "
                     + " | ".join(f"{s:.1%}" for s in shares) + " |")
    lines.append("| all nodes / run | " + " | ".join(f"{g[n]['nodes_ms']:.3f} / {g[n]['run_ms']:.3f}" for n in names)
                 + " | " + " | ".join("" for _ in names) + " |")
    lines += ["", "GMAC: " + ", ".join(f"{n} {g[n]['madds'] / 1e9:.3f}" for n in names) + ".", "",
              "Slowest stem/gate nodes: " + "; ".join(f"{t['op']} `{t['node']}` {t['ms']:.3f} ms"
                                                     for t in g["stem_gate"]["top_nodes"][:8]) + "."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
