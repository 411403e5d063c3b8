"""Modality-level DynMM on the synthetic benchmark: the gate-stage variants tried, and the
results table of the shipped `dynmm-modality-tiny-synth` against its two experts' static
networks (`rgb-tiny-synth`, `esanet-tiny-synth`).

    python experiments/modality_tiny_synth.py sweep
    python experiments/modality_tiny_synth.py report --evals RGB.json RGBD.json MOD.json \
        --bench BENCH.json --run RUN.json [--data data/synth-eval-s1] [--commands FILE]

`sweep` trains each gate-stage variant (an overlay on configs/shipped/dynmm-modality-tiny-
synth.yaml's single frozen-expert stage) into runs/modsweep/NAME, reusing a finished run with
the same config; the variants are scored on the seed-0 test split (the split the shipped
config was chosen on). `report` reads the `edgefuse eval --json` reports (the fresh seed-1
split), the `edgefuse bench --json` and `edgefuse run --json` outputs, adds two reference
selection rules computed with the shipped experts on the same frames (RGB-D exactly on the
frames flagged hard; per-frame oracle = the expert with the lower cross-entropy), and writes
benchmarks/results/modality_tiny_synth.{md,json}.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the shared harness
from _harness import RESULTS, harness_parser, machine_info, write_result  # noqa: E402

CONFIG = "configs/shipped/dynmm-modality-tiny-synth.yaml"
SHIPPED = "dynmm-modality-tiny-synth"
SWEEP_DIR = Path("runs/modsweep")

# name -> (gate, optimiser lr, stage overlay). Every stage field that varies is given, so a
# variant does not depend on the shipped config's current values.
_SOFT = {"gate_mode": "gumbel_soft", "tau_start": 1.0}
VARIANTS: dict[str, tuple[str, float, dict]] = {
    "soft_lr003_l05_tau01_e4": ("conv", 0.003, {**_SOFT, "epochs": 4, "tau_end": 0.1, "resource_lambda": 0.5}),
    "soft_lr01": ("conv", 0.01, {**_SOFT, "epochs": 6, "tau_end": 0.1, "resource_lambda": 0.5}),
    "hard_lr01": ("conv", 0.01, {"gate_mode": "gumbel_hard", "tau_start": 1.0, "tau_end": 1.0, "epochs": 6,
                                 "resource_lambda": 0.5}),
    "soft_mlp_lr01": ("mlp", 0.01, {**_SOFT, "epochs": 6, "tau_end": 0.1, "resource_lambda": 0.5}),
    "soft_l1_e10": ("conv", 0.01, {**_SOFT, "epochs": 10, "tau_end": 0.1, "resource_lambda": 1.0}),
    "soft_l1_tau1": ("conv", 0.01, {**_SOFT, "epochs": 10, "tau_end": 1.0, "resource_lambda": 1.0}),
    "soft_l2_e10": ("conv", 0.01, {**_SOFT, "epochs": 10, "tau_end": 0.1, "resource_lambda": 2.0}),
    "soft_l1_lr05": ("conv", 0.05, {**_SOFT, "epochs": 10, "tau_end": 1.0, "resource_lambda": 1.0}),
    "soft_l075_lr05": ("conv", 0.05, {**_SOFT, "epochs": 10, "tau_end": 1.0, "resource_lambda": 0.75}),
    "soft_l1_lr05_tau3": ("conv", 0.05, {**_SOFT, "epochs": 10, "tau_start": 3.0, "tau_end": 1.0,
                                         "resource_lambda": 1.0}),
}


def variant_config(name: str) -> dict:
    import yaml

    gate, lr, stage = VARIANTS[name]
    cfg = yaml.safe_load(Path(CONFIG).read_text())
    cfg = copy.deepcopy(cfg)
    cfg["progress"] = False
    cfg["out_dir"] = str(SWEEP_DIR / name)
    if gate != "conv":
        cfg["model"]["overrides"] = {"modality": {"gate": gate}}
    cfg["optim"]["lr"] = lr
    cfg["stages"][0].update(stage)
    return cfg


def _summary(e: dict) -> dict:
    s = e["subsets"]
    return {"miou": e["miou"], "easy_miou": s["easy"]["miou"], "hard_miou": s["hard"]["miou"],
            "mean_gmac": e["mean_madds"] / 1e9, "path_ratio": e["path_ratio"],
            "rgbd_share_easy": s["easy"]["path_ratio"][1] if s["easy"]["path_ratio"] else None,
            "rgbd_share_hard": s["hard"]["path_ratio"][1] if s["hard"]["path_ratio"] else None,
            "frames": e["frames"]}


def sweep() -> dict[str, dict]:
    from edgefuse.checkpoint import load_model
    from edgefuse.train.config import TrainConfig
    from edgefuse.train.trainer import train

    rows = {}
    for name in VARIANTS:
        cfg = TrainConfig.from_dict(variant_config(name))
        out = Path(cfg.out_dir)
        done = out / "model.safetensors"
        if not (done.is_file() and load_model(done).meta.get("train_config") == cfg.to_dict()):
            train(cfg, command=f"python experiments/modality_tiny_synth.py sweep ({name})")
        e = json.loads((out / "eval-gate.json").read_text())
        rows[name] = {"variant": {"gate": VARIANTS[name][0], "lr": VARIANTS[name][1], **VARIANTS[name][2]},
                      **_summary(e)}
        r = rows[name]
        print(f"{name}: mIoU {100 * r['miou']:.2f} easy {100 * r['easy_miou']:.2f} hard {100 * r['hard_miou']:.2f} "
              f"GMAC {r['mean_gmac']:.3f} RGB-D easy {r['rgbd_share_easy']:.2f} hard {r['rgbd_share_hard']:.2f}",
              flush=True)
    return rows


def reference_rules(data: str, split: str = "test") -> dict[str, dict]:
    """Selection rules the gate cannot see, with the shipped experts on the same frames:
    'hard flag' runs RGB-D exactly on the frames flagged hard (metadata), 'oracle' the expert
    with the lower per-frame cross-entropy (labels). Costs: the shipped model's measured ones."""
    import torch
    import torch.nn.functional as F

    from edgefuse.checkpoint import load_model
    from edgefuse.data.dataset import SegmentationDataset
    from edgefuse.eval.metrics import ConfusionMatrix
    from edgefuse.models.costs import measure_costs

    model = load_model(SHIPPED).model.eval()
    costs = measure_costs(model).madds()
    ds = SegmentationDataset(data, split)
    n = model.config.num_classes
    rules = {"hard flag": lambda hard, ce: int(hard), "oracle": lambda hard, ce: int(ce[1] < ce[0])}
    cms = {r: {s: ConfusionMatrix(n) for s in ("all", "easy", "hard")} for r in rules}
    picks = {r: {"easy": [0, 0], "hard": [0, 0]} for r in rules}
    with torch.no_grad():
        for i in range(len(ds)):
            x = ds[i]
            target = x["label"].long() - 1
            outs = [model(x["rgb"][None].float(), x["depth"][None].float(), path=k) for k in range(2)]
            ce = [float(F.cross_entropy(o, target[None], ignore_index=-1)) for o in outs]
            sub = "hard" if x["hard"] else "easy"
            for r, rule in rules.items():
                k = rule(bool(x["hard"]), ce)
                pred = outs[k][0].argmax(0)
                cms[r]["all"].update(pred, target)
                cms[r][sub].update(pred, target)
                picks[r][sub][k] += 1
    rows = {}
    for r in rules:
        counts = [picks[r]["easy"][k] + picks[r]["hard"][k] for k in range(2)]
        total = sum(counts)
        rows[r] = {"miou": cms[r]["all"].scores().miou, "easy_miou": cms[r]["easy"].scores().miou,
                   "hard_miou": cms[r]["hard"].scores().miou,
                   "mean_gmac": sum(c * m for c, m in zip(counts, costs)) / total / 1e9,
                   "path_ratio": [c / total for c in counts],
                   "rgbd_share_easy": picks[r]["easy"][1] / max(sum(picks[r]["easy"]), 1),
                   "rgbd_share_hard": picks[r]["hard"][1] / max(sum(picks[r]["hard"]), 1), "frames": total}
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.2f}"


def _share(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def _table(rows: dict[str, dict]) -> list[str]:
    out = ["| model | mIoU | easy mIoU | hard mIoU | mean GMAC/frame | RGB-D expert easy / hard |",
           "|---|---|---|---|---|---|"]
    for name, r in rows.items():
        out.append(f"| {name} | {_pct(r['miou'])} | {_pct(r['easy_miou'])} | {_pct(r['hard_miou'])} | "
                   f"{r['mean_gmac']:.3f} | {_share(r['rgbd_share_easy'])} / {_share(r['rgbd_share_hard'])} |")
    return out


def report(args) -> None:
    evals = {}
    for path in args.evals:
        e = json.loads(Path(path).read_text())
        evals[Path(path).stem] = _summary(e)
    refs = reference_rules(args.data)
    bench = json.loads(Path(args.bench).read_text())
    run = json.loads(Path(args.run).read_text())
    sweep_rows = {}
    for name in VARIANTS:
        f = SWEEP_DIR / name / "eval-gate.json"
        if f.is_file():
            sweep_rows[name] = {"variant": {"gate": VARIANTS[name][0], "lr": VARIANTS[name][1], **VARIANTS[name][2]},
                                **_summary(json.loads(f.read_text()))}
    commands = Path(args.commands).read_text().strip().splitlines() if args.commands else []
    info = machine_info()
    lat = {"stem_gate": bench["stem_gate"]["latency_ms"],
           **{f"path_{p['index']}": p["latency_ms"] for p in bench["paths"]}}
    result = {"machine": info, "bench_machine": bench.get("machine"), "data": f"{args.data} (test split)",
              "commands": commands, "eval": evals, "reference_rules": refs, "sweep_seed0_test": sweep_rows,
              "bench": {"graphs": lat, "dynamic": bench["dynamic"], "settings": bench["settings"],
                        "memory": bench["memory"], "warnings": bench.get("warnings", [])},
              "run": run}

    bm = bench.get("machine", {})
    lines = [f"# Modality-level DynMM ({SHIPPED}) on the synthetic benchmark", "",
             f"Date {info['date']}; machine: {info.get('cpu_model', info['processor'])}, {info['cpu_count']} cores "
             f"(shared with other work), {info['platform']}, Python {info['python']}, torch {info.get('torch')}; "
             f"ONNX Runtime {bm.get('onnxruntime', '?')} with {bm.get('threads', '?')} thread(s) for the latencies.", "",
             "## Commands", "", "```"] + commands + ["```", "",
             f"## Accuracy and compute on a fresh split ({args.data}, test, seed 1, "
             f"{next(iter(evals.values()))['frames']} frames)", "",
             "Every row is `edgefuse eval ... --json` except the two reference rules, which use the same two "
             "experts with a selection the gate cannot make (metadata or labels).", ""]
    lines += _table({**evals, **{f"reference: RGB-D iff {k}" if k == "hard flag" else "reference: per-frame oracle": v
                                 for k, v in refs.items()}})
    lines += ["", "## Exported bundle, per frame (ONNX Runtime, CPU)", "",
              f"`edgefuse export` wrote one graph per expert plus the gate: stem_gate.onnx (gate; inputs rgb, depth), "
              f"path_0.onnx (RGB-only expert; input rgb_frame only), path_1.onnx (RGB-D expert; rgb_frame, depth_frame); "
              f"{bench['memory']['files_total_bytes'] / 1e6:.1f} MB in all.", "",
              "| graph | GMAC | mean ms | p50 ms | p90 ms | p99 ms | cv |", "|---|---|---|---|---|---|---|"]
    gmac = {"stem_gate": bench["stem_gate"]["madds"], **{f"path_{p['index']}": p["path_madds"] for p in bench["paths"]}}
    for g, l in lat.items():
        lines.append(f"| {g} | {gmac[g] / 1e9:.3f} | {l['mean']:.2f} | {l['p50']:.2f} | {l['p90']:.2f} | "
                     f"{l['p99']:.2f} | {100 * l['cv']:.1f}% |")
    d = bench["dynamic"]
    lines += ["", f"`edgefuse bench` ({bench['settings']['iterations']} timed runs per graph): path mix on "
              f"{d['frames']} synthetic camera frames {', '.join(f'{k}: {100 * v:.0f}%' for k, v in d['path_distribution'].items())}; "
              f"dynamic mean {d['mean_latency_ms']:.2f} ms vs static (RGB-D expert always) {d['static_latency_ms']:.2f} ms "
              f"(x{d['speedup']:.2f}).", "",
              f"`edgefuse run` on {run['frames']} synthetic camera frames: both experts ran "
              f"({', '.join('expert %d: %d frames' % (p['path'], p['count']) for p in run['paths'])}); "
              f"{run['fps']:.1f} FPS end to end, of which capture (rendering) {run['stage_mean_ms']['capture']:.1f} ms, "
              f"gate {run['stage_mean_ms']['gate']:.2f} ms and expert {run['stage_mean_ms']['path']:.2f} ms per frame "
              "on average.", ""]
    for w in bench.get("warnings", []):
        lines.append(f"Note from bench: {w}")
    if sweep_rows:
        lines += ["", "## Gate-stage variants tried (seed-0 test split, 160 frames; experts frozen in all)", "",
                  "| variant | gate | lr | mode | epochs | tau | lambda | mIoU | easy | hard | GMAC | RGB-D easy / hard |",
                  "|---|---|---|---|---|---|---|---|---|---|---|---|"]
        for name, r in sweep_rows.items():
            v = r["variant"]
            mark = " (shipped)" if name == args.shipped_variant else ""
            lines.append(f"| {name}{mark} | {v['gate']} | {v['lr']} | {v['gate_mode']} | {v['epochs']} | "
                         f"{v['tau_start']} -> {v['tau_end']} | {v['resource_lambda']} | {_pct(r['miou'])} | "
                         f"{_pct(r['easy_miou'])} | {_pct(r['hard_miou'])} | {r['mean_gmac']:.3f} | "
                         f"{_share(r['rgbd_share_easy'])} / {_share(r['rgbd_share_hard'])} |")
    if args.analysis:
        lines += ["", "## Analysis", "", Path(args.analysis).read_text().strip()]
    write_result(RESULTS, "modality_tiny_synth", result, "\n".join(lines) + "\n", args)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    sub.add_parser("sweep")
    rp = sub.add_parser("report", parents=[harness_parser()])
    rp.add_argument("--evals", nargs="+", required=True, help="edgefuse eval --json reports (file stem = row name)")
    rp.add_argument("--bench", required=True)
    rp.add_argument("--run", required=True)
    rp.add_argument("--data", default="data/synth-eval-s1")
    rp.add_argument("--commands", help="text file: the exact commands, one a line")
    rp.add_argument("--analysis", help="text file: the analysis paragraph(s)")
    rp.add_argument("--shipped-variant", default="soft_l075_lr05")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    if args.cmd == "sweep":
        sweep()
    else:
        report(args)


if __name__ == "__main__":
    main()
