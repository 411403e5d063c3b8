"""The torch backend on a GPU: every graph eager vs captured in a CUDA graph and replayed.

    python benchmarks/torch_cuda_graphs.py --model dynmm-tiny --model dynmm-r50:480x640

For each model: a checkpoint is saved (random weights: latency does not depend on them),
the torch runner is activated twice on the same weights (eager, then CUDA graphs), the
labels of every path are checked to agree between the two on a fresh input (the static
buffers are wired right), and stem/gate and each path are timed (round-robin, after
warm-up; each call ends with the labels on the host, as in the pipeline). No ONNX export
is needed: the torch runner reads only the manifest's model, weights and path list.
Writes benchmarks/results/torch_cuda_graphs_<gpu>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, machine_info, write_result  # noqa: E402

from edgefuse.checkpoint import load_model, save_checkpoint  # noqa: E402
from edgefuse.cli.common import parse_size  # noqa: E402
from edgefuse.models.costs import measure_costs  # noqa: E402
from edgefuse.models.registry import build_model  # noqa: E402
from edgefuse.runtime.bench import time_graphs  # noqa: E402
from edgefuse.runtime.runners import STEM_GATE, path_graph  # noqa: E402
from edgefuse.runtime.runners.torch import TorchRunner  # noqa: E402
from edgefuse.runtime.stats import LatencyStats  # noqa: E402


def fake_bundle(ckpt: Path, model, costs) -> SimpleNamespace:
    """The parts of a Bundle the torch runner reads."""
    h, w = model.config.input_size
    spec = lambda name, shape: SimpleNamespace(name=name, shape=shape, dtype="float32")  # noqa: E731
    paths = tuple(SimpleNamespace(index=c.index, decision=c.decision, madds=c.madds, path_madds=c.path_madds,
                                  depth_encoder_madds=c.depth_encoder_madds) for c in costs.paths)
    manifest = SimpleNamespace(
        source=str(ckpt), input_size=(h, w), weights_sha256=load_model(ckpt).weights_sha256, paths=paths,
        stem_gate=SimpleNamespace(inputs=("rgb", "depth"),
                                  tensors=(spec("rgb", (1, 3, h, w)), spec("depth", (1, 1, h, w)))))
    return SimpleNamespace(root=ckpt.parent, manifest=manifest, paths={p.index: None for p in paths})


def measure(name: str, size, iterations: int, warmup: int, tmp: Path) -> dict:
    torch.manual_seed(0)
    model = build_model(name, **({"input_size": size} if size else {})).eval()
    costs = measure_costs(model)
    ckpt = save_checkpoint(tmp / f"{name}.safetensors", model)
    bundle = fake_bundle(ckpt, model, costs)
    h, w = model.config.input_size
    rng = np.random.default_rng(0)
    rgb = (rng.random((1, 3, h, w)) * 255).astype(np.float32)
    depth = (rng.random((1, 1, h, w)) * 5000).astype(np.float32)
    rgb2 = (rng.random((1, 3, h, w)) * 255).astype(np.float32)
    out = {"model": name, "input_size": [h, w], "modes": {}}
    labels = {}
    for mode, graphs in (("eager", False), ("cuda_graphs", True)):
        runner = TorchRunner(bundle, device="cuda", cuda_graphs=graphs, warmup=3)
        with runner:
            captured = sorted(runner.graphs_captured)
            st = runner.stem_gate(rgb2, depth)
            labels[mode] = {k: runner.run_path(k, st.features).copy() for k in bundle.paths}
            feats = runner.stem_gate(rgb, depth).features
            calls = {STEM_GATE: lambda: runner.stem_gate(rgb, depth)}
            for k in bundle.paths:
                calls[path_graph(k)] = lambda k=k: runner.run_path(k, feats)
            samples = time_graphs(calls, warmup, iterations, None)
        out["modes"][mode] = {"captured": captured,
                              "graphs": {g: LatencyStats.of(s).to_dict() for g, s in samples.items()}}
    out["labels_agree"] = {str(k): float((labels["eager"][k] == labels["cuda_graphs"][k]).mean())
                           for k in bundle.paths}
    out["paths"] = [{"index": c.index, "madds": c.madds, "path_madds": c.path_madds} for c in costs.paths]
    out["stem_madds"], out["gate_madds"] = costs.stem_madds, costs.gate_madds
    return out


def markdown(res: dict) -> str:
    m = res["machine"]
    lines = [f"# torch backend on {m.get('gpu', 'GPU')}: eager vs CUDA graphs", "",
             f"`{m['command']}` - {m['date']}, torch {torch.__version__}. p50 ms per call, "
             "labels copied to the host (as the pipeline does).", ""]
    for r in res["results"]:
        e, g = r["modes"]["eager"]["graphs"], r["modes"]["cuda_graphs"]["graphs"]
        full = max(r["paths"], key=lambda p: p["madds"])
        lines += [f"## {r['model']} at {r['input_size'][0]}x{r['input_size'][1]}", "",
                  "| graph | GMAC | eager p50 | graphs p50 | graphs cv | x | labels agree |",
                  "|---|---:|---:|---:|---:|---:|---:|"]
        for name in e:
            madds = (r["stem_madds"] + r["gate_madds"]) if name == STEM_GATE else \
                next(p["path_madds"] for p in r["paths"] if path_graph(p["index"]) == name)
            agree = "" if name == STEM_GATE else f"{r['labels_agree'][name.split('_')[1]]:.4f}"
            lines.append(f"| {name} | {madds / 1e9:.3f} | {e[name]['p50']:.3f} | {g[name]['p50']:.3f} | "
                         f"{g[name]['cv']:.1%} | {e[name]['p50'] / g[name]['p50']:.2f} | {agree} |")
        sg = g[STEM_GATE]["p50"]
        frames = {p["index"]: sg + g[path_graph(p["index"])]["p50"] for p in r["paths"]}
        fk = full["index"]
        lines += ["", "CUDA graphs, frame p50 (stem/gate + path) vs the MAdds-share prediction: " + ", ".join(
            f"path {k}: {v:.3f} ms ({v / (frames[fk] * p['madds'] / full['madds']) - 1:+.0%})"
            for (k, v), p in zip(frames.items(), r["paths"])),
            f"stem/gate overhead: {sg / g[path_graph(fk)]['p50']:.1%} of the full path.", ""]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--model", action="append", default=None, help="NAME[:HxW], repeatable")
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--warmup", type=int, default=30)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("needs a CUDA GPU")
    specs = args.model or ["dynmm-tiny", "dynmm-r50:480x640"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for s in specs:
            name, _, size = s.partition(":")
            results.append(measure(name, parse_size(size or None), args.iterations, args.warmup, Path(tmp)))
            print(json.dumps({"model": name, "labels_agree": results[-1]["labels_agree"]}), flush=True)
    info = {**machine_info(), "gpu": torch.cuda.get_device_name(0), "torch": torch.__version__}
    res = {"machine": info, "results": results}
    gpu = info["gpu"].replace(" ", "-")
    write_result(args.out, f"torch_cuda_graphs_{gpu}", res, markdown(res), args)


if __name__ == "__main__":
    main()
