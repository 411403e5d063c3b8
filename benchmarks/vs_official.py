"""Side by side with the official DynMM code: its fusion-level model against edgefuse
eager PyTorch and edgefuse ONNX Runtime (fp32, and int8 with --int8-bundle), per path and for
a gate's path mix, same machine, same input size; with each ORT graph's achieved GMAC/s
against this CPU's peak (benchmarks/_peak.py).

    python benchmarks/vs_official.py --official /path/to/DynMM [--model dynmm-r34-nbt1d]
        [--input-size 480x640] [--threads 1 --clock cpu] [--bundle FP32] [--int8-bundle INT8]
        [--mix uniform | --mix 0.03,0.78,0.01,0.18,0 --mix-source "..."]

`--official` is a checkout of https://github.com/zihuixue/DynMM (the folder holding
FusionDynMM/, or FusionDynMM itself); nothing of it is copied into this repository. Its
model is built by its own `src.build_model.build_model` with the arguments in OFFICIAL_ARGS:
for `dynmm-r50` those of its NYUv2 fusion-level model (`--dynamic --global-gate`, ResNet-50,
SE-add fusion, decoder 128 x 3, three NonBottleneck1D blocks per module: the 56.7-GMAC
configuration of the paper's cost table, docs/models-and-training.md "ESANet"); for
`dynmm-r34-nbt1d` the same on ESANet's flagship R34 NonBottleneck1D encoder with its
512-256-128 decoder (45.2 GMAC at 480x640, as edgefuse's). No pretrained weights (random
init), eval mode. What the script changes around it, and only there:
  - its constructor puts hard-coded path-cost constants on the GPU with `.cuda()`; on a
    machine without CUDA `Tensor.cuda` returns the tensor unchanged while the model is
    built (the constants stay on the CPU; the forward never uses them with test=True);
  - "path k" of the official model: its own gate runs, then its weights are replaced by
    the one-hot vector of path k. The official forward computes every branch and blends
    them with these weights, so every path costs the same there - which is the point.
  - its `src/models/resnet.py` imports pandas (for loading pretrained logs): install it
    (`pip install pandas`); torchvision is not needed.
edgefuse's model is `--model` (random init, seed 0) at the same size: eager = the stem/
gate module and path k's module (what the torch backend runs, logits out, no argmax, as
the official forward); + labels = the same and the per-pixel labels the torch backend
returns (`labels_of`); ORT = the exported bundle's stem_gate.onnx + path_<k>.onnx through
the ORT runner (labels out); ORT int8 = the same with the int8 bundle (`edgefuse export
--precision int8`, cpu scheme). The path mix row weights each path's median by --mix: the
official forward costs the same whatever the gate chooses. Every round times each (implementation, path) once, in
alternation, so a change in machine load affects all alike; medians are reported.
MAdds are counted with torch.utils.flop_counter on each forward (convolutions and matmuls).
Writes benchmarks/results/vs_official_<H>x<W>[_<model>][_int8][_cpu].{json,md}.
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
from _peak import gemm_ceiling, read_peak  # noqa: E402

from edgefuse.cli.common import parse_size  # noqa: E402
from edgefuse.models.costs import count_madds  # noqa: E402
from edgefuse.runtime.runners.torch import labels_of  # noqa: E402

NUM_CLASSES = 40   # NYUv2
_COMMON = ["--dynamic", "--global-gate", "--no_imagenet_pretraining", "--nr_decoder_blocks", "3",
           "--fuse_depth_in_rgb_encoder", "SE-add", "--context_module", "ppm", "--upsampling", "learned-3x3-zeropad"]
# edgefuse model -> the official arguments that build the same network (the MAdds columns
# of the result show both counts, so a mismatch is visible).
OFFICIAL_ARGS = {
    # the paper's NYUv2 model (its cost table's 56.7 GMAC)
    "dynmm-r50": _COMMON + ["--encoder", "resnet50", "--decoder_channels_mode", "constant", "--channels_decoder", "128"],
    # ESANet's flagship encoder and decoder (512-256-128), as a robot deploys it
    "dynmm-r34-nbt1d": _COMMON + ["--encoder", "resnet34", "--encoder_block", "NonBottleneck1D",
                                  "--decoder_channels_mode", "decreasing"],
}


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


def build_official(root: Path, size: tuple[int, int], model: str):
    sys.path.insert(0, str(root))
    from src.args import ArgumentParserRGBDSegmentation   # the official code
    from src.build_model import build_model

    parser = ArgumentParserRGBDSegmentation(description="official DynMM (benchmark)")
    parser.set_common_args()   # as its train.py does
    args = parser.parse_args(OFFICIAL_ARGS[model] + ["--height", str(size[0]), "--width", str(size[1])])
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


def parse_mix(text: str, paths: int) -> list[float]:
    """`uniform` or comma-separated path fractions (normalised to sum 1)."""
    if text == "uniform":
        return [1.0 / paths] * paths
    try:
        w = [float(x) for x in text.split(",")]
    except ValueError:
        raise SystemExit(f"--mix {text!r}: 'uniform' or {paths} comma-separated fractions") from None
    if len(w) != paths or min(w) < 0 or sum(w) <= 0:
        raise SystemExit(f"--mix {text!r}: {paths} non-negative fractions expected")
    return [x / sum(w) for x in w]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--official", required=True, help="checkout of github.com/zihuixue/DynMM")
    ap.add_argument("--model", choices=sorted(OFFICIAL_ARGS), default="dynmm-r50",
                    help="edgefuse model; the official code builds the same network (OFFICIAL_ARGS)")
    ap.add_argument("--input-size", default="480x640")
    ap.add_argument("--threads", type=int, default=2, help="torch and ORT intra-op threads")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (each times every implementation and path once)")
    ap.add_argument("--warmup", type=int, default=1, help="untimed rounds first")
    ap.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                    help="wall: elapsed time; cpu: this thread's CPU time (needs --threads 1, where torch "
                         "and ORT run on the calling thread): robust on a machine shared with other jobs")
    ap.add_argument("--bundle", default=None, help="an existing fp32 bundle of --model at this size (else exported here)")
    ap.add_argument("--int8-bundle", default=None,
                    help="an int8 bundle of --model at this size (`edgefuse export --precision int8`, cpu target): "
                         "timed beside fp32")
    ap.add_argument("--mix", default="uniform",
                    help="path mix for the dynamic rows: 'uniform' or fractions per path, e.g. 0.02,0.78,0,0.2,0")
    ap.add_argument("--mix-source", default="", help="where the --mix fractions come from (recorded)")
    ap.add_argument("--no-eager", action="store_true", help="skip edgefuse's eager PyTorch columns (faster)")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    size = parse_size(args.input_size)
    h, w = size
    if args.clock == "cpu" and args.threads != 1:
        raise SystemExit("--clock cpu measures the calling thread: use it with --threads 1")
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()

    official = build_official(official_root(args.official), size, args.model)
    from edgefuse.models.registry import build_model

    torch.manual_seed(0)
    ours = build_model(args.model, input_size=size).eval()
    stem = ours.stem_gate_module().eval()
    paths = list(range(ours.num_paths))
    modules = {k: ours.path_module(k).eval() for k in paths}
    mix = parse_mix(args.mix, len(paths))

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

    from edgefuse.export.bundle import load_bundle
    from edgefuse.runtime.runners import make_runner

    rgb_np, depth_np = rgb_raw.numpy(), depth_raw.numpy()

    def ort_fn(runner):
        return lambda k: runner.run_path(k, runner.stem_gate(rgb_np, depth_np).features)

    with tempfile.TemporaryDirectory() as tmp:
        bundles = {"edgefuse_ort": bundle_or_export(args.bundle, args.model, size, tmp)}
        if args.int8_bundle:
            bundles["edgefuse_ort_int8"] = args.int8_bundle
        runners = {}
        for name, path in bundles.items():
            b = load_bundle(path)
            if b.manifest.model.get("name") not in (None, args.model) or tuple(b.manifest.input_size) != size:
                raise SystemExit(f"{path}: a bundle of {b.manifest.model.get('name')} at "
                                 f"{b.manifest.input_size}, not {args.model} at {h}x{w}")
            runners[name] = make_runner("ort", b, threads=args.threads).activate()
        precision = {name: ("int8" if load_bundle(p).manifest.precision == "int8" else "fp32")
                     for name, p in bundles.items()}

        impls = {"official": official_fwd}
        if not args.no_eager:
            impls |= {"edgefuse_eager": eager_fwd, "edgefuse_torch_labels": torch_backend_fwd}
        impls |= {name: ort_fn(r) for name, r in runners.items()}
        madds = {"official": {k: count_madds(lambda k=k: official_fwd(k)) for k in paths},
                 "edgefuse": {k: count_madds(lambda k=k: eager_fwd(k)) for k in paths}}
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
        for r in runners.values():
            r.deactivate()

    peak = read_peak(cores=args.threads)
    ceiling = {p: gemm_ceiling(p, args.threads) for p in sorted(set(precision.values()))}
    med = {name: {k: statistics.median(v) for k, v in per.items()} for name, per in samples.items()}
    full = paths[-1]
    rows = []
    for k in paths:
        o = med["official"][k]
        row = {"path": k, "official_ms": o, "official_gmac": madds["official"][k] / 1e9,
               "edgefuse_gmac": madds["edgefuse"][k] / 1e9}
        for name in impls:
            if name != "official":
                row[f"{name}_ms"] = med[name][k]
                row[f"official_over_{name}"] = o / med[name][k]
        for name, p in precision.items():   # achieved GMAC/s (stem/gate + path) against the peak
            gmacs = row["edgefuse_gmac"] / (med[name][k] / 1e3)
            row[f"{name}_gmacs"] = gmacs
            row[f"{name}_of_peak"] = gmacs / peak.gmacs(p)
            row[f"{name}_of_gemm"] = gmacs / ceiling[p]
        rows.append(row)
    mixed = {name: sum(wk * med[name][k] for k, wk in zip(paths, mix)) for name in impls}
    dynamic = {"mix": mix, "mix_source": args.mix_source or args.mix, "ms": mixed,
               "gmac": sum(wk * madds["edgefuse"][k] / 1e9 for k, wk in zip(paths, mix)),
               "official_over": {name: mixed["official"] / v for name, v in mixed.items() if name != "official"}}
    equal_work = {"official_ms": med["official"][full]}
    if not args.no_eager:
        equal_work |= {"edgefuse_eager_full_ms": med["edgefuse_eager"][full],
                       "eager_over_official": med["edgefuse_eager"][full] / med["official"][full],
                       "edgefuse_torch_labels_full_ms": med["edgefuse_torch_labels"][full]}
    info = machine_info()
    out = {"command": info["command"], "machine": info, "model": args.model, "threads": args.threads,
           "clock": args.clock, "input_size": [h, w], "rounds": args.rounds, "warmup": args.warmup,
           "load_before": load_before, "load_after": os.getloadavg(),
           "official_args": OFFICIAL_ARGS[args.model], "bundles": bundles, "precision": precision,
           "peak": peak.record(), "gemm_ceiling_gmacs": ceiling,
           "rows": rows, "dynamic": dynamic, "equal_work": equal_work,
           "samples_ms": {n: {str(k): v for k, v in per.items()} for n, per in samples.items()}}
    name = f"vs_official_{h}x{w}" + ("" if args.model == "dynmm-r50" else f"_{args.model}") + \
        ("_int8" if args.int8_bundle else "") + ("_cpu" if args.clock == "cpu" else "")
    write_result(args.out, name, out, markdown(out, list(impls)), args)


LABELS = {"edgefuse_eager": "edgefuse eager", "edgefuse_torch_labels": "+ labels (torch backend)",
          "edgefuse_ort": "edgefuse ORT fp32", "edgefuse_ort_int8": "edgefuse ORT int8"}


def markdown(out: dict, impls: list[str]) -> str:
    m = out["machine"]
    ours = [n for n in impls if n != "official"]
    ort_names = list(out["precision"])
    h, w = out["input_size"]
    lines = [f"# edgefuse vs the official DynMM code: {out['model']}, {h}x{w}", "",
             f"`{out['command']}` - {m['date']}, {m.get('cpu_model', m['processor'])}, {m['cpu_count']} cores, "
             f"torch {m.get('torch')}, {out['threads']} threads, {out['clock']} time, {out['rounds']} alternating "
             f"rounds (medians); load average {out['load_before'][0]:.1f} before, {out['load_after'][0]:.1f} after.", "",
             "| path | official GMAC | official ms | edgefuse GMAC | " + " | ".join(f"{LABELS[n]} ms" for n in ours)
             + " | " + " | ".join(f"official / {LABELS[n].replace('edgefuse ', '')}" for n in ours) + " |",
             "|---:|" + "---:|" * (3 + 2 * len(ours))]
    for r in out["rows"]:
        lines.append(f"| {r['path']} | {r['official_gmac']:.1f} | {r['official_ms']:.0f} | {r['edgefuse_gmac']:.1f} | "
                     + " | ".join(f"{r[n + '_ms']:.0f}" for n in ours) + " | "
                     + " | ".join(f"x{r['official_over_' + n]:.2f}" for n in ours) + " |")
    d = out["dynamic"]
    mix = "/".join(f"{100 * x:.0f}" for x in d["mix"])
    lines += ["", f"**Path mix** {mix}% ({d['mix_source']}; {d['gmac']:.1f} GMAC per frame): official "
                  f"{d['ms']['official']:.0f} ms per frame (it computes every path whatever the gate says); "
              + "; ".join(f"{LABELS[n]} {d['ms'][n]:.0f} ms (official / it = x{d['official_over'][n]:.2f})" for n in ours)
              + "."]
    p = out["peak"]
    lines += ["", "## Distance to the silicon", "",
              f"Peak of {p['cores']} core(s): {p['model']}, {p['ghz']:.2f} GHz ({p['ghz_source']}), {p['units']} x "
              f"{p['vector_bits']}-bit vector units{' with VNNI' if p['vnni'] else ', no VNNI'}: fp32 "
              f"{p['fp32_gmacs']:.1f} GMAC/s, int8 {p['int8_gmacs']:.1f} GMAC/s (benchmarks/_peak.py says how). "
              "ONNX Runtime's own GEMM on this machine (1024^3, best of 30): "
              + ", ".join(f"{k} {v:.1f} GMAC/s" for k, v in out["gemm_ceiling_gmacs"].items()) + ".", "",
              "| path | " + " | ".join(f"{LABELS[n]} GMAC/s | of peak | of GEMM" for n in ort_names) + " |",
              "|---:|" + "---:|" * (3 * len(ort_names))]
    for r in out["rows"]:
        lines.append(f"| {r['path']} | " + " | ".join(
            f"{r[n + '_gmacs']:.1f} | {100 * r[n + '_of_peak']:.0f}% | {100 * r[n + '_of_gemm']:.0f}%" for n in ort_names)
            + " |")
    lines += ["", "GMAC/s = the path's MAdds (stem/gate + path, convolutions and matmuls) / its time: element-wise, "
                  "pooling, resize and layout work count as time without MAdds."]
    e = out["equal_work"]
    if "edgefuse_eager_full_ms" in e:
        lines += ["", f"At equal work (full path, logits out as the official forward): edgefuse eager "
                      f"{e['edgefuse_eager_full_ms']:.0f} ms vs official {e['official_ms']:.0f} ms (eager / official = "
                      f"{e['eager_over_official']:.3f}); with the labels the torch backend returns, "
                      f"{e['edgefuse_torch_labels_full_ms']:.0f} ms. eager and ORT times cover stem/gate + path."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
