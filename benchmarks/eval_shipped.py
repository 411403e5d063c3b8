"""Evaluate the shipped weights on a freshly generated synthetic test split and write the table.

    python benchmarks/eval_shipped.py [--seed 1] [--frames 400] [--data data/synth-eval-s1]

The split is rendered with a seed the models never saw (training used seed 0), and every
model is scored by `edgefuse.eval.evaluate` (paths chosen by the gate, measured MAdds).
Writes benchmarks/results/eval_shipped.{json,md}, with the issue's goals checked:
  1. static fusion beats RGB-only by >= 5 mIoU on hard frames;
  2. DynMM within 1 mIoU of static fusion with >= 30% fewer mean MAdds;
  3. DynMM takes fusing paths (any path fusing depth in a stage, k > 0) on hard frames at
     least twice as often as on easy frames.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import machine_info  # noqa: E402

from edgefuse.checkpoint import load_model, shipped_weights  # noqa: E402
from edgefuse.data.dataset import SegmentationDataset  # noqa: E402
from edgefuse.eval.evaluate import evaluate  # noqa: E402

MODELS = ("rgb-tiny-synth", "esanet-tiny-synth", "dynmm-tiny-synth")
RESULTS = Path(__file__).parent / "results"


def fusing_share(sub: dict) -> float | None:
    r = sub.get("path_ratio")
    return None if r is None else 1.0 - r[0]


def goals(rows: dict[str, dict]) -> list[dict]:
    out = []
    rgb, esa, dyn = (rows.get(m) for m in MODELS)
    if rgb and esa:
        gap = 100 * (esa["subsets"]["hard"]["miou"] - rgb["subsets"]["hard"]["miou"])
        out.append({"goal": "static fusion beats RGB-only by >= 5 mIoU on hard frames",
                    "value": f"{gap:+.2f} mIoU", "met": gap >= 5})
    if esa and dyn:
        gap = 100 * (dyn["miou"] - esa["miou"])
        saving = 1 - dyn["mean_madds"] / esa["mean_madds"]
        out.append({"goal": "DynMM within 1 mIoU of static fusion", "value": f"{gap:+.2f} mIoU", "met": gap >= -1})
        out.append({"goal": "DynMM >= 30% fewer mean MAdds than static fusion", "value": f"{100 * saving:.1f}% fewer",
                    "met": saving >= 0.30})
        hard, easy = fusing_share(dyn["subsets"]["hard"]), fusing_share(dyn["subsets"]["easy"])
        ratio = hard / easy if easy else float("inf")
        out.append({"goal": "DynMM fuses on hard frames >= 2x as often as on easy frames",
                    "value": f"hard {100 * hard:.1f}% vs easy {100 * easy:.1f}% ({ratio:.2f}x)", "met": ratio >= 2})
    return out


def markdown(rows: dict[str, dict], checks: list[dict], info: dict) -> str:
    lines = [f"# Shipped weights on a fresh synthetic test split ({info['data']}, {info['frames']} frames)", "",
             "| model | mIoU | easy mIoU | hard mIoU | pixel acc | mean GMAC/frame | path ratio (all) | "
             "fusing share easy / hard |", "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        e, h = r["subsets"]["easy"], r["subsets"]["hard"]
        ratio = "-" if r["path_ratio"] is None else " ".join(f"{v:.2f}" for v in r["path_ratio"])
        fs = "-" if r["path_ratio"] is None else f"{100 * fusing_share(e):.1f}% / {100 * fusing_share(h):.1f}%"
        lines.append(f"| {name} | {100 * r['miou']:.2f} | {100 * e['miou']:.2f} | {100 * h['miou']:.2f} | "
                     f"{100 * r['pixel_acc']:.2f} | {r['mean_madds'] / 1e9:.4f} | {ratio} | {fs} |")
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {c['goal']} | {c['value']} | {'yes' if c['met'] else 'NO'} |" for c in checks]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--frames", type=int, default=400, help="rendered frames; half form the test split")
    ap.add_argument("--data", default=None, help="folder for the split (default data/synth-eval-s<seed>)")
    args = ap.parse_args()
    data = Path(args.data or f"data/synth-eval-s{args.seed}")
    if not (data / "dataset.json").is_file():
        from edgefuse.data.synth import write_dataset

        write_dataset(data, args.frames, args.seed, (192, 256), test_fraction=0.5, workers=2)
    dataset = SegmentationDataset(data, "test")
    available = shipped_weights()
    rows = {}
    for name in MODELS:
        if name not in available:
            print(f"skipping {name}: not shipped")
            continue
        rows[name] = evaluate(load_model(name).model, dataset)
        print(f"{name}: mIoU {100 * rows[name]['miou']:.2f}")
    checks = goals(rows)
    info = {"data": f"edgefuse data synth --seed {args.seed} --frames {args.frames} --test-fraction 0.5",
            "frames": len(dataset)}
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "eval_shipped.json").write_text(json.dumps(
        {"machine": machine_info(), "data": info, "results": rows, "goals": checks}, indent=2) + "\n")
    md = markdown(rows, checks, info)
    (RESULTS / "eval_shipped.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
