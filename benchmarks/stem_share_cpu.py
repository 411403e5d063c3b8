"""The stem/gate's share of a frame in CPU time (robust on a shared machine), before and after
issue 10's stem changes, against its share of the frame's MAdds.

    python benchmarks/stem_share_cpu.py [--model dynmm-tiny-synth] [--input-size HxW] [--runs 200]

Wall-clock latency on a machine shared with other jobs mostly measures the others; with one
ONNX Runtime thread a session runs on the calling thread, so that thread's CPU time
(`time.thread_time`) is the graph's own cost. Exports the model (or takes --bundle; a
fusion-level DynMM), builds the stem/gate as it was exported before issue 10 (gate on the
concatenated features, SE fusion multiplied at full resolution before pooling) from the same
weights, and times it, the bundle's stem_gate.onnx and the full path, alternating, `--runs`
times. Reports medians, the stem/gate's share of a full-path frame (stem + full path) in CPU
time and in MAdds, and their ratio (issue 10's goal: <= 1.15).
Writes benchmarks/results/stem_share_cpu_<model>_<H>x<W>.{json,md}.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, machine_info, write_result  # noqa: E402

from edgefuse.cli.common import parse_size  # noqa: E402

GOAL_RATIO = 1.15


class StemBefore(torch.nn.Module):
    """stem + gate of a FusionSegNet as exported before issue 10 (same weights)."""

    output_names = ("rgb_feat", "depth_feat", "gate_logits")

    def __init__(self, model) -> None:
        super().__init__()
        self.m = model

    def forward(self, rgb, depth):
        from edgefuse.models.resnet import ResNetEncoder

        m = self.m
        r = m.encoder_rgb.stem(m.norm.rgb(rgb))
        d = m.encoder_depth.stem(m.norm.depth(depth))
        fused = m.fuse0(r, d)
        rgb_feat, depth_feat = ResNetEncoder.pool(fused), ResNetEncoder.pool(d)
        return rgb_feat, depth_feat, m.gate_net(torch.cat([rgb_feat, depth_feat], dim=1))


def session(data, threads: int = 1):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--model", default="dynmm-tiny-synth")
    ap.add_argument("--input-size", default=None)
    ap.add_argument("--runs", type=int, default=200)
    ap.add_argument("--bundle", default=None, help="a bundle exported from --model (else exported here)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    size = parse_size(args.input_size)
    load_before = os.getloadavg()
    from edgefuse.checkpoint import load_model
    from edgefuse.export.bundle import load_bundle
    from edgefuse.export.onnx_graphs import export_onnx
    from edgefuse.runtime.bench import full_path

    with tempfile.TemporaryDirectory() as tmp:
        bundle = args.bundle
        torch.manual_seed(0)   # a registry name is randomly initialised: the same weights as the bundle's
        if bundle is None:
            from edgefuse.export.exporter import export_bundle

            bundle = str(Path(tmp) / "bundle")
            export_bundle(args.model, bundle, input_size=size, force=True, verify_frames=1)
            torch.manual_seed(0)
        b = load_bundle(bundle)
        m = b.manifest
        h, w = m.input_size
        model = load_model(args.model, input_size=(h, w)).model.eval()
        rgb, depth = torch.full((1, 3, h, w), 128.0), torch.full((1, 1, h, w), 2000.0)
        before = export_onnx(StemBefore(model), (rgb, depth), ["rgb", "depth"], list(StemBefore.output_names))
        full = full_path(m)
        sessions = {"stem_gate (before)": session(before), "stem_gate": session(str(b.stem_gate)),
                    f"path_{full}": session(str(b.paths[full]))}
        g = np.random.default_rng(0)
        feeds = {"rgb": (g.random((1, 3, h, w)) * 255).astype(np.float32),
                 "depth": (g.random((1, 1, h, w)) * 4000 + 500).astype(np.float32)}
        stem_out = sessions["stem_gate"].run(None, feeds)
        ref = sessions["stem_gate (before)"].run(None, feeds)
        max_diff = max(float(np.abs(a - b_).max()) for a, b_ in zip(stem_out, ref))
        feeds.update(zip([o.name for o in sessions["stem_gate"].get_outputs()], stem_out))
        inputs = {n: [i.name for i in s.get_inputs()] for n, s in sessions.items()}
        cpu: dict[str, list[float]] = {n: [] for n in sessions}
        for r in range(args.runs + 5):
            for name, s in sessions.items():
                f = {k: feeds[k] for k in inputs[name]}
                t0 = time.thread_time()
                s.run(None, f)
                if r >= 5:
                    cpu[name].append((time.thread_time() - t0) * 1e3)
    med = {n: statistics.median(v) for n, v in cpu.items()}
    stem_madds, path_madds = float(m.stem_gate.madds), float(m.path(full).path_madds)
    madds_share = stem_madds / (stem_madds + path_madds)
    rows = {}
    for name in ("stem_gate (before)", "stem_gate"):
        share = med[name] / (med[name] + med[f"path_{full}"])
        rows[name] = {"cpu_ms": med[name], "time_share": share, "ratio": share / madds_share}
    out = {"command": machine_info()["command"], "machine": machine_info(), "model": args.model,
           "input_size": [h, w], "runs": args.runs, "load_before": load_before, "load_after": os.getloadavg(),
           "full_path": full, "path_cpu_ms": med[f"path_{full}"], "madds_share": madds_share,
           "stem_madds": stem_madds, "path_madds": path_madds, "rows": rows,
           "max_abs_diff_before_vs_now": max_diff, "goal_ratio": GOAL_RATIO,
           "met": rows["stem_gate"]["ratio"] <= GOAL_RATIO}
    write_result(args.out, f"stem_share_cpu_{Path(args.model).stem}_{h}x{w}", out, markdown(out), args)


def markdown(out: dict) -> str:
    m, r = out["machine"], out["rows"]
    b, a = r["stem_gate (before)"], r["stem_gate"]
    lines = [f"# Stem/gate share of a frame in CPU time: {out['model']} at {out['input_size'][0]}x{out['input_size'][1]}", "",
             f"`{out['command']}` - {m['date']}, {m.get('cpu_model', m['processor'])}, 1 ORT thread, thread CPU time, "
             f"median of {out['runs']} alternating runs; load average {out['load_before'][0]:.1f} before, "
             f"{out['load_after'][0]:.1f} after.", "",
             "| stem/gate graph | CPU ms | share of stem + full path | MAdds share | time / MAdds |",
             "|---|---:|---:|---:|---:|",
             f"| before issue 10 | {b['cpu_ms']:.3f} | {b['time_share']:.1%} | {out['madds_share']:.1%} | {b['ratio']:.2f} |",
             f"| now | {a['cpu_ms']:.3f} | {a['time_share']:.1%} | {out['madds_share']:.1%} | {a['ratio']:.2f} |", "",
             f"Full path (path {out['full_path']}): {out['path_cpu_ms']:.3f} ms CPU, {out['path_madds'] / 1e9:.3f} GMAC; "
             f"stem/gate {out['stem_madds'] / 1e9:.3f} GMAC. Stem/gate {1 - a['cpu_ms'] / b['cpu_ms']:.1%} cheaper than "
             f"before (outputs equal to {out['max_abs_diff_before_vs_now']:.1e}). Goal time / MAdds <= "
             f"{out['goal_ratio']}: {'met' if out['met'] else 'not met'}."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
