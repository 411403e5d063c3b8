"""Side by side with the official DynMM code: its NYUv2 fusion-level model against edgefuse
eager PyTorch and edgefuse ONNX Runtime, per path, same machine, same input size.

    python benchmarks/vs_official.py --official /path/to/DynMM [--input-size 480x640] [--threads 2]

`--official` is a checkout of https://github.com/zihuixue/DynMM (the folder holding
FusionDynMM/, or FusionDynMM itself); nothing of it is copied into this repository. Its
model is built by its own `src.build_model.build_model` with the arguments of its NYUv2
fusion-level model (`--dynamic --global-gate`, ResNet-50, SE-add fusion, decoder 128 x 3,
three NonBottleneck1D blocks per module: the 56.7-GMAC configuration of the paper's cost
table, docs/models-and-training.md "ESANet"), no pretrained weights (random init), eval mode. What the script
changes around it, and only there:
  - its constructor puts hard-coded path-cost constants on the GPU with `.cuda()`; on a
    machine without CUDA `Tensor.cuda` returns the tensor unchanged while the model is
    built (the constants stay on the CPU; the forward never uses them with test=True);
  - "path k" of the official model: its own gate runs, then its weights are replaced by
    the one-hot vector of path k. The official forward computes every branch and blends
    them with these weights, so every path costs the same there - which is the point.
  - its `src/models/resnet.py` imports pandas (for loading pretrained logs): install it
    (`pip install pandas`); torchvision is not needed.
edgefuse's model is `dynmm-r50` (random init, seed 0) at the same size: eager = the stem/
gate module and path k's module (what the torch backend runs, logits out, no argmax, as
the official forward); + labels = the same and the per-pixel labels the torch backend
returns (`labels_of`); ORT = the exported bundle's stem_gate.onnx + path_<k>.onnx through
the ORT runner (labels out). Every round times each (implementation, path) once, in
alternation, so a change in machine load affects all alike; medians are reported.
MAdds are counted with torch.utils.flop_counter on each forward (convolutions and matmuls).
Writes benchmarks/results/vs_official_<H>x<W>.{json,md}.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from _harness import harness_parser, bundle_or_export, machine_info, write_result  # noqa: E402

from edgefuse.cli.common import parse_size  # noqa: E402
from edgefuse.models.costs import count_madds  # noqa: E402
from edgefuse.runtime.runners.torch import labels_of  # noqa: E402

NUM_CLASSES = 40   # NYUv2
OFFICIAL_ARGS = ["--dynamic", "--global-gate", "--no_imagenet_pretraining", "--encoder", "resnet50",
                 "--decoder_channels_mode", "constant", "--channels_decoder", "128",
                 "--nr_decoder_blocks", "3", "--fuse_depth_in_rgb_encoder", "SE-add",
                 "--context_module", "ppm", "--upsampling", "learned-3x3-zeropad"]


# --- the official model ---------------------------------------------------------------------
def official_root(path: str) -> Path:
    root = Path(path).expanduser().resolve()
    for cand in (root, root / "FusionDynMM"):
        if (cand / "src" / "build_model.py").is_file():
            return cand
    raise SystemExit(f"--official {path}: no FusionDynMM/src/build_model.py there; pass a checkout of "
                     "https://github.com/zihuixue/DynMM")


@contextlib.contextmanager
def cpu_constants():
    """While the official model is built: `.cuda()` returns the tensor itself when this
    machine has no CUDA (its constructor moves hard-coded constants to the GPU)."""
    if torch.cuda.is_available():
        yield
        return
    original = torch.Tensor.cuda
    torch.Tensor.cuda = lambda self, *a, **k: self   # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.cuda = original   # type: ignore[method-assign]


class ForcedGate(torch.nn.Module):
    """The official gate, run as is, with its output replaced by the one-hot vector of `path`."""

    def __init__(self, gate: torch.nn.Module, branches: int) -> None:
        super().__init__()
        self.gate = gate
        self.branches = branches
        self.path = branches - 1

    def forward(self, rgb, depth, temp=1.0, hard=False):
        w = self.gate(rgb, depth, temp, hard)
        return torch.nn.functional.one_hot(torch.full((w.shape[0],), self.path), self.branches).to(w.dtype)


def build_official(root: Path, size: tuple[int, int]):
    sys.path.insert(0, str(root))
    from src.args import ArgumentParserRGBDSegmentation   # the official code
    from src.build_model import build_model

    parser = ArgumentParserRGBDSegmentation(description="official DynMM (benchmark)")
    parser.set_common_args()   # as its train.py does
    args = parser.parse_args(OFFICIAL_ARGS + ["--height", str(size[0]), "--width", str(size[1])])
    torch.manual_seed(0)
    with cpu_constants(), contextlib.redirect_stdout(sys.stderr):
        model, _ = build_model(args, n_classes=NUM_CLASSES)
    model = model.cpu().eval()
    model.hard_gate = True
    model.gate_layer = ForcedGate(model.gate_layer, model.gate_layer.bnum)
    return model


# --- timing ---------------------------------------------------------------------------------
CLOCKS = {"wall": time.perf_counter, "cpu": time.thread_time}


def timed(fn, clock=time.perf_counter) -> float:
    t0 = clock()
    fn()
    return (clock() - t0) * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--official", required=True, help="checkout of github.com/zihuixue/DynMM")
    ap.add_argument("--input-size", default="480x640")
    ap.add_argument("--threads", type=int, default=2, help="torch and ORT intra-op threads")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (each times every implementation and path once)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall: elapsed time; cpu: this thread's CPU time (needs --threads 1, where torch "
                         "and ORT run on the calling thread): robust on a machine shared with other jobs")
    ap.add_argument("--bundle", default=None, help="an existing dynmm-r50 bundle at this size (else exported here)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    size = parse_size(args.input_size)
    h, w = size
    if args.clock == "cpu" and args.threads != 1:
        raise SystemExit("--clock cpu measures the calling thread: use it with --threads 1")
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    official = build_official(official_root(args.official), size)
    from edgefuse.models.registry import build_model

    torch.manual_seed(0)
    ours = build_model("dynmm-r50", input_size=size).eval()
    stem = ours.stem_gate_module().eval()
    paths = list(range(ours.num_paths))
    modules = {k: ours.path_module(k).eval() for k in paths}

    g = torch.Generator().manual_seed(0)
    rgb_raw, depth_raw = torch.rand(1, 3, h, w, generator=g) * 255, torch.rand(1, 1, h, w, generator=g) * 5000
    # The official model takes normalised inputs (its data pipeline normalises); same cost.
    rgb_n, depth_n = torch.randn(1, 3, h, w, generator=g), torch.randn(1, 1, h, w, generator=g)

    def official_fwd(k: int):
        official.gate_layer.path = k
        return official(rgb_n, depth_n, test=True)

    def eager_fwd(k: int):
        feats = dict(zip(stem.output_names, stem(rgb_raw, depth_raw)))
        m = modules[k]
        return m(*(feats[n] for n in m.input_names))

    def torch_backend_fwd(k: int):   # what the torch backend runs per frame: + labels
        return labels_of(eager_fwd(k))

    with tempfile.TemporaryDirectory() as tmp:
        bundle = bundle_or_export(args.bundle, "dynmm-r50", size, tmp)
        from edgefuse.export.bundle import load_bundle
        from edgefuse.runtime.runners import make_runner

        runner = make_runner("ort", load_bundle(bundle), threads=args.threads).activate()
        rgb_np, depth_np = rgb_raw.numpy(), depth_raw.numpy()

        def ort_fwd(k: int):
            return runner.run_path(k, runner.stem_gate(rgb_np, depth_np).features)

        impls = {"official": official_fwd, "edgefuse_eager": eager_fwd, "edgefuse_torch_labels": torch_backend_fwd,
                 "edgefuse_ort": ort_fwd}
        madds = {"official": {k: count_madds(lambda k=k: official_fwd(k)) for k in paths},
                 "edgefuse_eager": {k: count_madds(lambda k=k: eager_fwd(k)) for k in paths}}
        samples: dict[str, dict[int, list[float]]] = {name: {k: [] for k in paths} for name in impls}
        with torch.inference_mode():
            for r in range(args.warmup + args.rounds):
                for k in paths:
                    for name, fn in impls.items():
                        ms = timed(lambda: fn(k), clock)
                        if r >= args.warmup:
                            samples[name][k].append(ms)
                print(f"round {r + 1}/{args.warmup + args.rounds} (load {os.getloadavg()[0]:.1f})",
                      file=sys.stderr, flush=True)
        runner.deactivate()

    med = {name: {k: statistics.median(v) for k, v in per.items()} for name, per in samples.items()}
    full = paths[-1]
    rows = []
    for k in paths:
        o, e, x = med["official"][k], med["edgefuse_eager"][k], med["edgefuse_ort"][k]
        rows.append({"path": k, "official_ms": o, "edgefuse_eager_ms": e, "edgefuse_ort_ms": x,
                     "edgefuse_torch_labels_ms": med["edgefuse_torch_labels"][k],
                     "official_gmac": madds["official"][k] / 1e9, "edgefuse_gmac": madds["edgefuse_eager"][k] / 1e9,
                     "official_over_eager": o / e, "official_over_ort": o / x})
    equal_work = {"official_ms": med["official"][full], "edgefuse_eager_full_ms": med["edgefuse_eager"][full],
                  "eager_over_official": med["edgefuse_eager"][full] / med["official"][full],
                  "edgefuse_torch_labels_full_ms": med["edgefuse_torch_labels"][full]}
    out = {"command": machine_info()["command"], "machine": machine_info(), "threads": args.threads,
           "clock": args.clock,
           "input_size": [h, w], "rounds": args.rounds, "warmup": args.warmup,
           "load_before": load_before, "load_after": os.getloadavg(),
           "official_args": OFFICIAL_ARGS, "rows": rows, "equal_work": equal_work,
           "samples_ms": {n: {str(k): v for k, v in per.items()} for n, per in samples.items()}}
    name = f"vs_official_{h}x{w}" + ("_cpu" if args.clock == "cpu" else "")
    write_result(args.out, name, out, markdown(out), args)


def markdown(out: dict) -> str:
    m = out["machine"]
    lines = [f"# edgefuse vs the official DynMM code, {out['input_size'][0]}x{out['input_size'][1]}", "",
             f"`{out['command']}` - {m['date']}, {m.get('cpu_model', m['processor'])}, {m['cpu_count']} cores, "
             f"torch {m.get('torch')}, {out['threads']} threads, {out['clock']} time, {out['rounds']} alternating "
             f"rounds (medians); "
             f"load average {out['load_before'][0]:.1f} before, {out['load_after'][0]:.1f} after.", "",
             "| path | official GMAC | official ms | edgefuse GMAC | edgefuse eager ms | + labels (torch backend) ms "
             "| edgefuse ORT ms | official / eager | official / ORT |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in out["rows"]:
        lines.append(f"| {r['path']} | {r['official_gmac']:.1f} | {r['official_ms']:.0f} | {r['edgefuse_gmac']:.1f} | "
                     f"{r['edgefuse_eager_ms']:.0f} | {r['edgefuse_torch_labels_ms']:.0f} | {r['edgefuse_ort_ms']:.0f} | "
                     f"x{r['official_over_eager']:.2f} | x{r['official_over_ort']:.2f} |")
    e = out["equal_work"]
    lines += ["", f"At equal work (full path, logits out as the official forward): edgefuse eager "
                  f"{e['edgefuse_eager_full_ms']:.0f} ms vs official {e['official_ms']:.0f} ms (eager / official = "
                  f"{e['eager_over_official']:.3f}); with the labels the torch backend returns, "
                  f"{e['edgefuse_torch_labels_full_ms']:.0f} ms. eager and ORT times cover stem/gate + path."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
