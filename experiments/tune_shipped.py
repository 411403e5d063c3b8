"""Choose the shipped dynamic models' operating points on the tuning splits (issue 17).

    python experiments/tune_shipped.py --tune data/synth-s1:test,data/synth-s2:test \
        --target match:esanet-tiny-synth [--models dynmm-modality-tiny-synth,dynmm-tiny-synth] [--write]

For each model, the gate's cost-bias curve on the pooled tuning frames (edgefuse.eval.tune,
what `edgefuse tune` runs), the reference's mIoU there, and the point the target picks.
`--write` stores that point in the shipped weights (tensors as stored: the weights hash does
not change) and in their card (`operating_point`; `eval` re-scored on the card's split).
Path scores are cached in runs/scores/ (the network runs once per model and split). Writes
benchmarks/results/tune_shipped.{json,md}. The final split (a seed used for neither training
nor tuning) is never read here: experiments/eval_shipped.py scores it afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the shared harness
from _harness import machine_info  # noqa: E402

import numpy as np  # noqa: E402

from edgefuse.checkpoint import WEIGHTS_DIR, load_model  # noqa: E402
from edgefuse.data.dataset import SegmentationDataset  # noqa: E402
from edgefuse.eval.oracle import PathScores, policy_report, score_paths  # noqa: E402
from edgefuse.eval.tune import Target, choose, strength_curve, write_checkpoint  # noqa: E402
from edgefuse.models.operating_point import OperatingPoint  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
CACHE = Path("runs/scores")


def scores_for(name: str, splits: list[tuple[str, str]]) -> PathScores:
    model = None
    pooled = None
    for root, split in splits:
        sha = load_model(name).weights_sha256[:12]
        path = CACHE / f"{Path(name).stem}-{sha}-{Path(root).name}-{split}.npz"
        if path.is_file():
            s = PathScores.load(path)
        else:
            if model is None:
                model = load_model(name).model
                model.set_operating_point(None)
            s = score_paths(model, SegmentationDataset(root, split), batch_size=8)
            path.parent.mkdir(parents=True, exist_ok=True)
            s.save(path)
        s.operating_point = None
        pooled = s if pooled is None else pooled.concat(s)
    assert pooled is not None
    return pooled


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tune", default="data/synth-s1:test,data/synth-s2:test",
                    type=lambda s: [tuple(x.split(":")) for x in s.split(",")])
    ap.add_argument("--target", default="match:esanet-tiny-synth")
    ap.add_argument("--models", default="dynmm-modality-tiny-synth,dynmm-tiny-synth", type=lambda s: s.split(","))
    ap.add_argument("--write", action="store_true", help="store the chosen points in the shipped weights")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--tag", default="", help="suffix of the result files (targets side by side)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    target = Target.parse(args.target)
    label = " + ".join(f"{r}/{s}" for r, s in args.tune)
    ref = None
    if target.kind == "match":
        rs = scores_for(target.spec, args.tune)
        ref = policy_report(rs, np.zeros(rs.frames, dtype=np.int64))
    out = {"machine": machine_info(), "load": [round(x, 2) for x in os.getloadavg()], "tuning_data": label,
           "target": str(target), "reference": None if ref is None else
           {"spec": target.spec, "miou": ref["miou"], "mean_madds": ref["mean_madds"]}, "models": {}}
    lines = [f"# Operating points of the shipped dynamic models (target `{target}`, on {label})", "",
             f"Date {out['machine']['date']}, command `{out['machine']['command']}`.", ""]
    if ref:
        lines += [f"Reference {target.spec}: mIoU {100 * ref['miou']:.2f} at {ref['mean_madds'] / 1e9:.4f} GMAC.", ""]
    lines += ["| model | bias (logit ranges) | strength | mIoU | mean GMAC | vs reference MAdds | met | "
              "plain gate mIoU / GMAC |", "|---|---:|---:|---:|---:|---:|---|---|"]
    for name in args.models:
        scores = scores_for(name, args.tune)
        full = policy_report(scores, np.full(scores.frames, int(np.argmax(scores.costs))))
        curve = strength_curve(scores, confidence=target.confidence)
        point, met, bar = choose(curve, target, full, ref["miou"] if ref else None)
        plain = next(p for p in curve if p["bias"] == 0.0)
        info = {"target": str(target), "met": met, "miou_bar": bar, "frames": scores.frames, "miou": point["miou"],
                "mean_madds": point["mean_madds"], "path_ratio": point["path_ratio"],
                "full_path": {"miou": full["miou"], "mean_madds": full["mean_madds"]},
                "reference": out["reference"]}
        op = OperatingPoint.from_strength(point["strength"], scores.costs.tolist(), target=str(target), data=label,
                                          scores=info)
        out["models"][name] = {**info, "strength": point["strength"], "bias": point["bias"],
                               "operating_point": op.to_dict(), "plain_gate": plain,
                               "curve": curve[::5]}   # every 0.05 of bias (the grid is 0.01)
        rel = "-" if not ref else f"{100 * point['mean_madds'] / ref['mean_madds']:.1f}%"
        lines.append(f"| {name} | {point['bias']:+.2f} | {point['strength']:.4f} | {100 * point['miou']:.2f} | "
                     f"{point['mean_madds'] / 1e9:.4f} | {rel} | {'yes' if met else 'NO'} | "
                     f"{100 * plain['miou']:.2f} / {plain['mean_madds'] / 1e9:.4f} |")
        print(lines[-1], flush=True)
        if args.write:
            weights = WEIGHTS_DIR / f"{name}.safetensors"
            command = f"python experiments/tune_shipped.py --tune {','.join(':'.join(t) for t in args.tune)} " \
                      f"--target {target} --models {name} --write"
            write_checkpoint(weights, weights, op, command)
            weights.chmod(0o644)
            card_path = WEIGHTS_DIR / f"{name}.json"
            card = json.loads(card_path.read_text())
            shipped = load_model(weights)
            assert shipped.weights_sha256 == card["weights_sha256"], "the weights must not change"
            root = (card.get("train_config") or {}).get("data", {}).get("root") or "data/synth-s0"
            from edgefuse.eval.evaluate import evaluate

            card["eval"] = evaluate(shipped.model, SegmentationDataset(root, "test"))
            card["operating_point"] = {**op.to_dict(), "command": command}
            card_path.write_text(json.dumps(card, indent=2) + "\n")
            print(f"wrote the operating point into {weights} and {card_path}")
    RESULTS.mkdir(exist_ok=True)
    stem = "tune_shipped" + (f"_{args.tag}" if args.tag else "")
    previous = RESULTS / f"{stem}.json"
    if previous.is_file():   # models tuned by an earlier run on the same data and target stay listed
        old = json.loads(previous.read_text())
        if old.get("tuning_data") == label and old.get("target") == str(target):
            for name, m in old["models"].items():
                if name not in out["models"]:
                    out["models"][name] = m
                    rel = "-" if not ref else f"{100 * m['mean_madds'] / ref['mean_madds']:.1f}%"
                    lines.insert(lines.index("|---|---:|---:|---:|---:|---:|---|---|") + 1,
                                 f"| {name} | {m['bias']:+.2f} | {m['strength']:.4f} | {100 * m['miou']:.2f} | "
                                 f"{m['mean_madds'] / 1e9:.4f} | {rel} | {'yes' if m['met'] else 'NO'} | "
                                 f"{100 * m['plain_gate']['miou']:.2f} / {m['plain_gate']['mean_madds'] / 1e9:.4f} |")
    lines += ["", f"Curves: benchmarks/results/{stem}.json (`curve`: the gate at every 0.05 of bias)."]
    (RESULTS / f"{stem}.json").write_text(json.dumps(out, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
