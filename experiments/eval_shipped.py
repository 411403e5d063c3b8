"""Evaluate the shipped weights on a freshly generated synthetic test split and write the table.

    python experiments/eval_shipped.py [--seed 4242] [--data data/synth-eval-s4242] [--threads 2]

The split is rendered like `edgefuse data synth --out DIR --seed SEED` with its defaults (1000
frames, 20% test: 200 test frames) and a seed the models never saw and the recipe was never
tuned on (training used seed 0; tuning seeds 1 and 2; benchmarks/results/gate_routing_protocol.md).
Static models are scored by `edgefuse.eval.evaluate`; dynamic ones by every path on every frame
(`edgefuse eval --oracle`): the gate as deployed (identical to `edgefuse eval`), each forced
path, the per-frame oracle and its curve (PNG and Markdown per model). Writes
benchmarks/results/eval_shipped.{json,md} and eval_shipped_oracle_<model>.{md,png} (another
--seed than 4242: eval_shipped_s<SEED>*), with goals:
  1. static fusion beats RGB-only by >= 5 mIoU on hard frames;
  2. DynMM within 1 mIoU of static fusion with >= 30% fewer mean MAdds (an earlier issue);
  3. DynMM takes fusing paths on hard frames at least twice as often as on easy frames;
  issue 13, for each dynamic model: its mIoU >= the best forced single path costing no more;
  within 1 mIoU of its own full path (forced) with >= 20% fewer MAdds; distance to the oracle.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the shared harness
from _harness import RESULTS, harness_parser, load_average, machine_info, write_result  # noqa: E402
from _routing import routing_goals  # noqa: E402

from edgefuse.checkpoint import load_model, shipped_weights  # noqa: E402
from edgefuse.data.dataset import SegmentationDataset  # noqa: E402
from edgefuse.eval.evaluate import evaluate  # noqa: E402
from edgefuse.eval.oracle import oracle_report, path_unit, score_paths  # noqa: E402
from edgefuse.eval.oracle_report import markdown as oracle_markdown, plot as oracle_plot  # noqa: E402

MODELS = ("rgb-tiny-synth", "esanet-tiny-synth", "dynmm-tiny-synth", "dynmm-modality-tiny-synth")
# Issue 17's second baselines (an ESANet trained as long as ESANet + DynMM's stages), scored
# when their runs are here: configs/experiments/esanet-tiny-synth-19ep.yaml (the earlier
# from-ESANet recipe's 16 + 3) and esanet-tiny-synth-24ep.yaml (the shipped dynmm-tiny-synth's
# 16 + 8 sandwich epochs).
EXTRA = {"esanet-tiny-synth-19ep": "runs/esanet-tiny-synth-19ep/model.safetensors",
         "esanet-tiny-synth-24ep": "runs/esanet-tiny-synth-24ep/model.safetensors"}
FRAMES, TEST_FRACTION = 1000, 0.2     # `edgefuse data synth` defaults


def fusing_share(sub: dict) -> float | None:
    r = sub.get("path_ratio")
    return None if r is None else 1.0 - r[0]


def goals(rows: dict[str, dict], oracles: dict[str, dict]) -> list[dict]:
    out = []
    rgb, esa, dyn = (rows.get(m) for m in MODELS[:3])
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
    for name, rep in oracles.items():
        out += [{**g, "goal": f"{name}: {g['goal']}"} for g in routing_goals(rep)]
    out += static_goals(rows, oracles)
    return out


def static_goals(rows: dict[str, dict], oracles: dict[str, dict]) -> list[dict]:
    """Issue 17: each dynamic model against the static ESANet a user would deploy instead,
    and each gate against its oracle curve."""
    esa = rows.get("esanet-tiny-synth")
    out = []
    if not esa:
        return out
    for name, within in (("dynmm-modality-tiny-synth", 0.0), ("dynmm-tiny-synth", 0.01)):
        dyn = rows.get(name)
        if not dyn:
            continue
        gap = 100 * (dyn["miou"] - esa["miou"])
        share = dyn["mean_madds"] / esa["mean_madds"]
        want = ">= the static ESANet's mIoU" if within == 0 else "within 1 mIoU of the static ESANet"
        out.append({"goal": f"{name}: {want} at <= 80% of its MAdds (issue 17)",
                    "value": f"{gap:+.2f} mIoU at {100 * share:.1f}% of its MAdds",
                    "met": gap >= -100 * within - 1e-9 and share <= 0.80 + 1e-9})
    for name, rep in oracles.items():
        d = rep["distance"]
        if d["gap"] is not None:
            out.append({"goal": f"{name}: within 2 mIoU of its oracle curve at its cost (issue 17)",
                        "value": f"{100 * d['gap']:.2f} mIoU below", "met": d["gap"] <= 0.02 + 1e-9})
    return out


def markdown(rows: dict[str, dict], oracles: dict[str, dict], checks: list[dict], info: dict,
             stem: str = "eval_shipped") -> str:
    lines = [f"# Shipped weights on a fresh synthetic test split ({info['data']}, {info['frames']} frames)", "",
             f"Date {info['machine']['date']}, load {info['load']}, command `{info['machine']['command']}`.", "",
             "| model | mIoU | easy mIoU | hard mIoU | pixel acc | mean GMAC/frame | path ratio (all) | "
             "fusing share easy / hard |", "|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        e, h = r["subsets"]["easy"], r["subsets"]["hard"]
        ratio = "-" if r["path_ratio"] is None else " ".join(f"{v:.2f}" for v in r["path_ratio"])
        fs = "-" if r["path_ratio"] is None else f"{100 * fusing_share(e):.1f}% / {100 * fusing_share(h):.1f}%"
        lines.append(f"| {name} | {100 * r['miou']:.2f} | {100 * e['miou']:.2f} | {100 * h['miou']:.2f} | "
                     f"{100 * r['pixel_acc']:.2f} | {r['mean_madds'] / 1e9:.4f} | {ratio} | {fs} |")
    for name, rep in oracles.items():
        unit = rep.get("unit", "path")
        lines += ["", f"{name}, every {unit} forced on every frame, and the per-frame oracle "
                      f"([details and curve]({stem}_oracle_{name}.md)):", "",
                  "| policy | mIoU | mean GMAC |", "|---|---|---|"]
        lines += [f"| forced {unit} {k} | {100 * f['miou']:.2f} | {f['mean_madds'] / 1e9:.4f} |"
                  for k, f in enumerate(rep["forced"])]
        lines += [f"| the gate | {100 * rep['gate']['miou']:.2f} | {rep['gate']['mean_madds'] / 1e9:.4f} |",
                  f"| oracle (within {rep['tolerance']:g} points) | {100 * rep['oracle']['miou']:.2f} | "
                  f"{rep['oracle']['mean_madds'] / 1e9:.4f} |"]
    lines += ["", "| goal | measured | met |", "|---|---|---|"]
    lines += [f"| {c['goal']} | {c['value']} | {'-' if c['met'] is None else ('yes' if c['met'] else 'NO')} |"
              for c in checks]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--seed", type=int, default=4242)
    ap.add_argument("--data", default=None, help="folder for the split (default data/synth-eval-s<seed>)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS), type=lambda s: tuple(s.split(",")),
                    help="score only these (the others from runs/eval_shipped_cache when there)")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    data = Path(args.data or f"data/synth-eval-s{args.seed}")
    if not (data / "dataset.json").is_file():
        from edgefuse.data.synth import write_dataset

        write_dataset(data, FRAMES, args.seed, (192, 256), test_fraction=TEST_FRACTION, workers=2)
    dataset = SegmentationDataset(data, "test")
    available = shipped_weights()
    rows, oracles = {}, {}
    RESULTS.mkdir(exist_ok=True)
    # the README's split keeps the plain names; any other seed its own (issue 17: seed 5151)
    stem = "eval_shipped" if args.seed == 4242 else f"eval_shipped_s{args.seed}"
    cache = Path("runs/eval_shipped_cache")
    for name in MODELS:
        if name not in available:
            print(f"skipping {name}: not shipped")
            continue
        loaded = load_model(name)
        model = loaded.model
        # one file per (weights, operating point, split): a rerun scores only what changed
        op = json.dumps(model.operating_point.to_dict() if model.operating_point else None, sort_keys=True)
        key = cache / f"{name}-{loaded.weights_sha256[:12]}-{hashlib.sha256(op.encode()).hexdigest()[:8]}-{data.name}.json"
        if key.is_file():
            hit = json.loads(key.read_text())
            rows[name] = hit["row"]
            if hit.get("oracle"):
                oracles[name] = hit["oracle"]
            print(f"{name}: mIoU {100 * rows[name]['miou']:.2f} (cached: {key})", flush=True)
            continue
        if name not in args.models:
            print(f"skipping {name}: not in --models and not cached")
            continue
        if model.is_dynamic:
            rep = {"model": name, "data": f"{data}/test", "unit": path_unit(model),
                   **oracle_report(score_paths(model, dataset))}
            oracles[name], rows[name] = rep, rep["gate"]
            title = f"{name} on {data.name} (test): gate vs per-frame oracle"
            (RESULTS / f"{stem}_oracle_{name}.md").write_text(
                oracle_markdown(rep, title) + f"\n![oracle curve]({stem}_oracle_{name}.png)\n")
            oracle_plot(rep, RESULTS / f"{stem}_oracle_{name}.png", title)
        else:
            rows[name] = evaluate(model, dataset)
        key.parent.mkdir(parents=True, exist_ok=True)
        key.write_text(json.dumps({"row": rows[name], "oracle": oracles.get(name)}))
        print(f"{name}: mIoU {100 * rows[name]['miou']:.2f}", flush=True)
    for name, ckpt in EXTRA.items():
        if Path(ckpt).is_file():
            rows[name] = evaluate(load_model(ckpt).model, dataset)
            print(f"{name}: mIoU {100 * rows[name]['miou']:.2f}", flush=True)
    checks = goals(rows, oracles)
    info = {"data": f"edgefuse data synth --out {data} --seed {args.seed} (defaults: {FRAMES} frames, "
                    f"test fraction {TEST_FRACTION})", "frames": len(dataset),
            "machine": machine_info(), "load": load_average()}
    md = markdown(rows, oracles, checks, info, stem)
    write_result(RESULTS, stem, {**info, "results": rows, "oracle": oracles, "goals": checks}, md, args)


if __name__ == "__main__":
    main()
