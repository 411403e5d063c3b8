"""DynMM's accuracy-compute trade-off on our benchmark (the paper's Fig. 4/5).

    python experiments/lambda_sweep.py --stage1 runs/dynmm-tiny-synth/stage-stage1.safetensors \
        --lambdas 0,0.5,2,8 --epochs 2
    python experiments/lambda_sweep.py --stage1 runs/dynmm-tiny-synth-routed/stage-routed.safetensors \
        --gate-mode supervised --freeze-network --gate-target error --gate-lr 0.02 --lr 0.001 \
        --epochs 10 --lambdas 0.22,0.5 --shift-to 0,0.05,0.1,0.15,0.3,0.4,0.6,0.8 --tag routed
        (the shipped recipe's gate on its routed network)

From one stage-I checkpoint, trains stage II (Gumbel-softmax, straight-through or soft, with
the resource-aware loss over the measured path costs; or the shipped recipe's 'supervised'
gate with the network frozen, --gate-mode supervised --freeze-network) once per lambda,
evaluates every model on a held-out split, and draws (left) mIoU vs mean MAdds per frame
against the static baselines (RGB-only and ESANet-style fusion, shipped weights by default)
and (right) the path selection ratio vs lambda. A supervised gate regresses path loss +
lambda x cost, so moving lambda after training is a shift of its logits by the costs: the
left plot also draws the first lambda's gate shifted to every other lambda (dotted; no
retraining), which shows how closely a shift stands in for training at that lambda.
Writes benchmarks/results/lambda_sweep[_TAG].{json,png}. Finished runs
(OUT/lambda-X/model.safetensors) are reused unless --retrain.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the shared harness
from _harness import RESULTS, harness_parser, load_average, machine_info, write_result  # noqa: E402

from edgefuse.checkpoint import load_model  # noqa: E402
from edgefuse.data.dataset import SegmentationDataset  # noqa: E402
from edgefuse.eval.evaluate import evaluate  # noqa: E402
from edgefuse.train.config import TrainConfig  # noqa: E402
from edgefuse.train.trainer import train  # noqa: E402



def run_sweep(args) -> dict:
    eval_data = SegmentationDataset(args.eval_data, args.eval_split)
    points = []
    for lam in args.lambdas:
        cfg = TrainConfig.from_dict({
            "model": {"checkpoint": args.stage1},
            "data": {"root": args.data, "eval_split": None, "max_frames": args.max_frames},
            "out_dir": str(Path(args.out) / f"lambda-{lam:g}"),
            "optim": {"kind": "adamw", "lr": args.lr, "weight_decay": 1e-4, "schedule": "onecycle", "pct_start": 0.15},
            "stages": [{"name": "stage2", "epochs": args.epochs, "gate_mode": args.gate_mode,
                        "gate_lr": args.gate_lr, "tau_start": 1.0, "tau_end": args.tau_end,
                        "resource_lambda": lam, "freeze_network": args.freeze_network,
                        "gate_target": args.gate_target}],
            "batch_size": args.batch_size, "seed": args.seed, "threads": args.threads, "progress": False})
        done = Path(cfg.out_dir) / "model.safetensors"
        checkpoint = done if done.is_file() and not args.retrain else train(cfg).checkpoint
        report = evaluate(load_model(checkpoint).model, eval_data)
        points.append({"lambda": lam, "checkpoint": str(checkpoint), "config": cfg.to_dict(), "report": report})
        print(f"lambda {lam:g}: mIoU {100 * report['miou']:.2f}, {report['mean_madds'] / 1e9:.4f} GMAC, "
              f"paths {[round(r, 2) for r in report['path_ratio']]}")
    shifted = []
    if args.gate_mode == "supervised" and points:
        shifted = shift_curve(points[0], sorted(set(args.lambdas) | set(args.shift_to)), eval_data)
    baselines = {}
    for spec in args.baselines:
        baselines[spec] = evaluate(load_model(spec).model, eval_data)
    return {"machine": machine_info(), "load": load_average(), "stage1": args.stage1,
            "train_data": args.data, "eval_data": f"{args.eval_data}/{args.eval_split}", "epochs": args.epochs,
            "points": points, "shifted": shifted, "baselines": baselines}


def shift_curve(first: dict, lambdas: list[float], eval_data) -> list[dict]:
    """The first lambda's supervised gate with its logits shifted to each other lambda."""
    import numpy as np

    from edgefuse.eval.oracle import policy_report, score_paths

    scores = score_paths(load_model(first["checkpoint"]).model, eval_data)
    share = scores.costs / scores.costs.max()
    out = []
    for lam in lambdas:
        d = lam - first["lambda"]
        rep = policy_report(scores, np.argmax(scores.gate_logits - d * share[None, :], axis=1))
        out.append({"lambda": lam, "from_lambda": first["lambda"], "report": rep})
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    pts = result["points"]
    xs = [p["report"]["mean_madds"] / 1e9 for p in pts]
    ys = [100 * p["report"]["miou"] for p in pts]
    left.plot(xs, ys, "o-", label=f"DynMM (stage II {result.get('gate_mode', '')}, varying λ)")
    for p, x, y in zip(pts, xs, ys):
        left.annotate(f"λ={p['lambda']:g}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if result.get("shifted"):
        sh = result["shifted"]
        left.plot([p["report"]["mean_madds"] / 1e9 for p in sh], [100 * p["report"]["miou"] for p in sh], "x:",
                  label=f"λ={sh[0]['from_lambda']:g} gate, logits shifted to each λ")
    for (name, rep), marker in zip(result["baselines"].items(), "s^Dv"):
        left.plot(rep["mean_madds"] / 1e9, 100 * rep["miou"], marker, markersize=9, label=name)
    left.set_xlabel("mean GMAC per frame (measured)")
    left.set_ylabel("mIoU % (held-out synthetic split)")
    left.grid(alpha=0.3)
    left.legend(fontsize=8)
    lams = [p["lambda"] for p in pts]
    ratios = [p["report"]["path_ratio"] for p in pts]
    for k in range(len(ratios[0])):
        right.plot(range(len(lams)), [r[k] for r in ratios], "o-", label=f"path {k}")
    right.set_xticks(range(len(lams)), [f"{lam:g}" for lam in lams])
    right.set_xlabel("λ (resource loss weight)")
    right.set_ylabel("path selection ratio")
    right.set_ylim(-0.02, 1.02)
    right.grid(alpha=0.3)
    right.legend(fontsize=8)
    fig.suptitle("DynMM on the edgefuse synthetic RGB-D benchmark (cf. DynMM paper Fig. 4/5)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--stage1", default="runs/dynmm-tiny-synth/stage-stage1.safetensors")
    ap.add_argument("--lambdas", default="0,0.5,2,8", type=lambda s: [float(x) for x in s.split(",")])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-4)
    ap.add_argument("--gate-mode", default="gumbel_hard", choices=["gumbel_hard", "gumbel_soft", "supervised"])
    ap.add_argument("--freeze-network", action="store_true", help="train the gate alone (the shipped recipe)")
    ap.add_argument("--gate-lr", type=float, default=None, help="the gate's own learning rate")
    ap.add_argument("--shift-to", default="", type=lambda s: [float(x) for x in s.split(",") if x],
                    help="'supervised': further lambdas the first gate is shifted to (no training)")
    ap.add_argument("--gate-target", default="loss", choices=["loss", "error"],
                    help="'supervised': what the gate regresses per path (the shipped recipe: error)")
    ap.add_argument("--tau-end", type=float, default=1.0, help="Gumbel temperature at the end (from 1)")
    ap.add_argument("--tag", default="", help="suffix of the result files (several sweeps side by side)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--max-frames", type=int, default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--data", default="data/synth-s0")
    ap.add_argument("--eval-data", default="data/synth-eval-s1", help="made by experiments/eval_shipped.py")
    ap.add_argument("--eval-split", default="test")
    ap.add_argument("--baselines", default="rgb-tiny-synth,esanet-tiny-synth", type=lambda s: s.split(","))
    ap.add_argument("--out", default="runs/lambda-sweep")
    ap.add_argument("--retrain", action="store_true", help="train again even where a finished run exists")
    args = ap.parse_args()
    result = run_sweep(args)
    stem = "lambda_sweep" + (f"_{args.tag}" if args.tag else "")
    result["gate_mode"] = args.gate_mode
    write_result(RESULTS, stem, result, markdown(result, stem), args)
    plot(result, RESULTS / f"{stem}.png")


def markdown(result: dict, stem: str) -> str:
    """The sweep as a table: each trained lambda, then each shifted one (mIoU % @ GMAC)."""
    lines = [f"# lambda sweep ({result['gate_mode']}), evaluated on {result['eval_data']}", "",
             "| lambda | how | mIoU % | mean GMAC |", "|---:|---|---:|---:|"]
    for how, points in (("trained", result["points"]), ("shifted", result.get("shifted", []))):
        for p in points:
            r = p.get("report", p)
            lines.append(f"| {p['lambda']:g} | {how} | {100 * r['miou']:.2f} | {r['mean_madds'] / 1e9:.4f} |")
    for name, r in result.get("baselines", {}).items():
        lines.append(f"| - | {name} | {100 * r['miou']:.2f} | {r.get('mean_madds', 0) / 1e9:.4f} |")
    return "\n".join(lines) + f"\n\n![sweep]({stem}.png)\n"


if __name__ == "__main__":
    main()
