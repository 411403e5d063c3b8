"""Issue 13 ("the gate must route"): every recipe tried, scored against the per-frame oracle.

    python experiments/gate_routing.py --runs NAME=CHECKPOINT[,NAME=CHECKPOINT...] \
        [--splits data/synth-s0:test,data/synth-eval-s1:test,data/synth-eval-s2:test] [--tag experiments]

For each run and split, every path runs on every frame once (edgefuse.eval.oracle.score_paths;
the scores are cached in runs/gate-scores/ so a report can be redrawn without the model), and
the table gives: every forced path's mIoU, the gate's mIoU and mean MAdds, the oracle (within 2
points of pixel accuracy), the gate's distance to the oracle curve at its cost, its agreement
with the oracle, and issue 13's two goals. For a gate trained in 'supervised' mode (its logits
are predicted path losses + lambda x cost) the deploy-time lambda shift is also tabulated:
the same gate with lambda moved by d (argmax of logits - d x C_k / max C).

Writes benchmarks/results/gate_routing[_TAG].{md,json} with the command, machine, date and load.
The seeds: tune on data/synth-s0 (test), seeds 1 and 2; the final seed (4242) is never used
here (benchmarks/results/gate_routing_protocol.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the shared harness
from _harness import RESULTS, harness_parser, load_average, machine_info, write_result  # noqa: E402
from _routing import routing_goals, split_tag  # noqa: E402

from edgefuse.eval.oracle import PathScores, oracle_report, policy_report  # noqa: E402

CACHE = Path("runs/gate-scores")
LAMBDA_SHIFTS = (-0.3, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.3, 0.5)


def scores_for(name: str, checkpoint: str, data: str, split: str, threads: int,
               network_of: PathScores | None = None) -> PathScores:
    """Every path on every frame (cached). `network_of`: scores of a run with the same network
    (a gate trained with the network frozen): only the stem and the gate run, for its choices."""
    cache = CACHE / f"{name}@{Path(data).name}-{split}.npz"
    if cache.is_file() and cache.stat().st_mtime >= Path(checkpoint).stat().st_mtime:
        return PathScores.load(cache)
    import torch

    from edgefuse.checkpoint import load_model
    from edgefuse.data.dataset import SegmentationDataset
    from edgefuse.eval.oracle import score_paths

    torch.set_num_threads(threads)
    model, dataset = load_model(checkpoint).model, SegmentationDataset(data, split)
    if network_of is not None:
        logits = []
        with torch.no_grad():
            for i in range(len(dataset)):
                item = dataset[i]
                logits.append(model.choose(model.stem(item["rgb"][None], item["depth"][None]))[1][0].numpy())
        g = np.stack(logits)
        scores = PathScores(network_of.cms, g.argmax(1), network_of.hard, network_of.costs, network_of.names,
                            True, g)
    else:
        scores = score_paths(model, dataset)
    cache.parent.mkdir(parents=True, exist_ok=True)
    scores.save(cache)
    return scores


def train_summary(checkpoint: str) -> dict:
    """The stages a checkpoint was trained with (from its metadata), for the table."""
    from edgefuse.checkpoint import load_model

    meta = load_model(checkpoint).meta
    cfg = meta.get("train_config") or {}
    keys = ("name", "epochs", "gate_mode", "path", "lr", "gate_lr", "resource_lambda", "freeze_network",
            "gate_target", "gate_temperature")
    return {"stages": [{k: s.get(k) for k in keys} for s in cfg.get("stages", [])],
            "init": (cfg.get("model") or {}).get("init_from") or (cfg.get("model") or {}).get("checkpoint")}


def lambda_shift(scores: PathScores, d: float) -> dict:
    """The gate with lambda moved by d after training (a shift of its logits by the costs)."""
    c = scores.costs / scores.costs.max()
    rep = policy_report(scores, np.argmax(scores.gate_logits - d * c[None, :], axis=1))
    return {"shift": d, "miou": rep["miou"], "mean_madds": rep["mean_madds"], "path_ratio": rep["path_ratio"]}


def row(name: str, tag: str, report: dict, supervised: bool, scores: PathScores,
        shifts: tuple[float, ...] = LAMBDA_SHIFTS) -> dict:
    out = {"run": name, "split": tag, "forced": [r["miou"] for r in report["forced"]],
           "gate": {k: report["gate"][k] for k in ("miou", "mean_madds", "path_ratio")},
           "gate_subsets": {n: s["miou"] for n, s in report["gate"]["subsets"].items()},
           "oracle": {k: report["oracle"][k] for k in ("miou", "mean_madds")},
           "distance": report["distance"]["gap"], "agreement": report["agreement"],
           "goals": routing_goals(report)}
    if supervised and scores.gate_logits is not None:
        out["lambda_shift"] = [lambda_shift(scores, d) for d in shifts]
    return out


def markdown(rows: list[dict], runs: dict, info: dict) -> str:
    lines = ["# Issue 13: gate recipes against the per-frame oracle", "",
             f"Date {info['machine']['date']}; load {info['load']}; command `{info['machine']['command']}`.", "",
             "Forced paths 0-4 and the gate: mIoU %; GMAC: mean per frame; oracle: within 2 points of pixel accuracy; "
             "distance: the best oracle point costing no more than the gate, minus the gate (mIoU points); "
             "agree: the gate's path is within 2 points of the frame's best. Goal 1: the gate beats the best forced "
             "path costing no more; goal 2: within 1 mIoU of path 4 at >= 20% fewer MAdds.", "",
             "| run | split | forced 0 / 1 / 2 / 3 / 4 | gate mIoU | gate GMAC | easy / hard | oracle | distance | "
             "agree | goal 1 | goal 2 |", "|---|---|---|---:|---:|---|---|---:|---:|---|---|"]
    for r in rows:
        f = " / ".join(f"{100 * m:.1f}" for m in r["forced"])
        g = r["gate"]
        sub = " / ".join(f"{100 * r['gate_subsets'][n]:.1f}" for n in ("easy", "hard") if n in r["gate_subsets"])
        goals = [("yes" if x["met"] else "no") + f" ({x['value'].split('(')[-1].rstrip(')')})"
                 if i == 0 else ("yes" if x["met"] else "no") + f" ({x['value']})" for i, x in enumerate(r["goals"][:2])]
        lines.append(f"| {r['run']} | {r['split']} | {f} | {100 * g['miou']:.2f} | {g['mean_madds'] / 1e9:.4f} | {sub} | "
                     f"{100 * r['oracle']['miou']:.1f} @ {r['oracle']['mean_madds'] / 1e9:.3f} | "
                     f"{100 * r['distance']:.2f} | {100 * r['agreement']['all']['within_tolerance']:.0f}% | "
                     f"{goals[0]} | {goals[1]} |")
    shifted = [r for r in rows if "lambda_shift" in r]
    if shifted:
        lines += ["", "Supervised gates, deploy-time lambda shift d (mIoU % @ GMAC; d in the units of the "
                      "gate's target: loss, or pixel error for gate_target error):", ""]
        for r in shifted:
            lines += ["| run | split | " + " | ".join(f"d={p['shift']:g}" for p in r["lambda_shift"]) + " |",
                      "|---|---|" + "---|" * len(r["lambda_shift"])]
            cells = [f"{100 * p['miou']:.1f} @ {p['mean_madds'] / 1e9:.3f}" for p in r["lambda_shift"]]
            lines.append(f"| {r['run']} | {r['split']} | " + " | ".join(cells) + " |")
    lines += ["", "Runs (stages from each checkpoint's metadata):", ""]
    for name, meta in runs.items():
        stages = "; ".join(", ".join(f"{k}={v}" for k, v in s.items() if v not in (None, False, 0, 0.0))
                           for s in meta["summary"]["stages"])
        lines.append(f"- `{name}` = `{meta['checkpoint']}` (from `{meta['summary']['init']}`): {stages}")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--runs", required=True, type=lambda s: [x.split("=", 1) for x in s.split(",")])
    ap.add_argument("--splits", default="data/synth-s0:test,data/synth-eval-s1:test,data/synth-eval-s2:test",
                    type=lambda s: [x.rsplit(":", 1) for x in s.split(",")])
    ap.add_argument("--tag", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--network-of", default=None,
                    help="NAME of a run (listed first) whose network every other run shares (gates trained with "
                         "the network frozen): the others then run only the stem and the gate")
    args = ap.parse_args()
    rows, runs = [], {}
    base: dict[tuple[str, str], PathScores] = {}
    for name, ckpt in args.runs:
        summary = train_summary(ckpt)
        runs[name] = {"checkpoint": ckpt, "summary": summary}
        supervised = bool(summary["stages"]) and summary["stages"][-1]["gate_mode"] == "supervised"
        for data, split in args.splits:
            shared = base.get((data, split)) if args.network_of and name != args.network_of else None
            scores = scores_for(name, ckpt, data, split, args.threads, shared)
            if name == args.network_of:
                base[(data, split)] = scores
            report = oracle_report(scores)
            error = summary["stages"][-1].get("gate_target") == "error" if summary["stages"] else False
            rows.append(row(name, split_tag(data, split), report, supervised, scores,
                            tuple(d / 10 for d in LAMBDA_SHIFTS) if error else LAMBDA_SHIFTS))
            print(f"{name} {split_tag(data, split)}: gate {100 * report['gate']['miou']:.2f} @ "
                  f"{report['gate']['mean_madds'] / 1e9:.4f}, forced {[round(100 * r['miou'], 1) for r in report['forced']]}",
                  flush=True)
    info = {"machine": machine_info(), "load": load_average()}
    stem = "gate_routing" + (f"_{args.tag}" if args.tag else "")
    write_result(RESULTS, stem, {**info, "runs": runs, "rows": rows}, markdown(rows, runs, info), args)


if __name__ == "__main__":
    main()
