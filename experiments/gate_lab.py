"""Issue 17, "close the gap to the oracle": try gate recipes offline on a frozen network.

With the network frozen, a gate's training only needs each frame's gate input (the stem
features) and each path's per-frame result (confusion matrices). `collect` stores both for a
split once; `fit` then trains any gate recipe from them in seconds and scores it on the
tuning splits exactly as `edgefuse tune` / `edgefuse eval --oracle` do (bias sweep, best
mIoU at a MAdds target, distance to the oracle curve). It is the trainer's gate stage
(`gate_mode: supervised, freeze_network: true`, loss cache) without the stem passes.

    python experiments/gate_lab.py collect MODEL --data data/synth-s0 --split train --out runs/lab/s0-train.npz
    python experiments/gate_lab.py fit --train runs/lab/s0-train.npz --eval runs/lab/s1.npz,runs/lab/s2.npz \
        --model MODEL --recipe base
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgefuse.eval.oracle import PathScores, oracle_curve, oracle_miou_at, policy_report, score_paths
from edgefuse.eval.tune import Target, choose, strength_curve
from edgefuse.models.losses import gate_regression_loss


# --- collect --------------------------------------------------------------------------------
@torch.no_grad()
def collect(spec: str, data: str, split: str, out: Path, max_frames: int | None = None,
            position: str = "stem") -> None:
    from edgefuse.eval.evaluate import frame_batches, load_for_eval

    model, dataset, costs = load_for_eval(spec, data, split)
    if max_frames:
        dataset = torch.utils.data.Subset(dataset, range(min(max_frames, len(dataset))))
    model.eval()
    feats: list[np.ndarray] = []
    for samples, idx, rgb, depth in frame_batches(dataset, 8, None):
        f = model.stem(rgb, depth)
        if position == "layer1":   # RGB stage 1 runs on every path before the first fusion
            f = {**f, "rgb_feat": model.encoder_rgb.layer1(f["rgb_feat"])}
        x = (model.gate_input(f) if hasattr(model, "gate_input")     # modality-level: pooled frames
             else torch.cat([f[n] for n in model.feature_names], 1))
        feats.append(x.half().numpy())
    scores = score_paths(model, dataset, 8, costs)
    out.parent.mkdir(parents=True, exist_ok=True)
    scores.save(out.with_suffix(".scores.npz"))
    np.save(out.with_suffix(".feats.npy"), np.concatenate(feats))
    print(f"{out}: {scores.frames} frames, features {np.concatenate(feats).shape}")


def load(path: str) -> tuple[PathScores, np.ndarray]:
    p = Path(path)
    return PathScores.load(p.with_suffix(".scores.npz")), np.load(p.with_suffix(".feats.npy"))


# --- gate recipes ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Recipe:
    hidden: int = 8
    epochs: int = 30
    lr: float = 0.02
    lam: float = 0.22            # resource_lambda of the shipped gate configs
    target: str = "regress"      # regress (centred, issue 13) | soft (cross-entropy to a soft target at temperature)
    temperature: float = 0.02
    seed: int = 0
    batch: int = 8
    ensemble: int = 1


RECIPES = {
    "base": Recipe(),
    "h16": Recipe(hidden=16),
    "soft": Recipe(target="soft"),
    "ep60": Recipe(epochs=60),
    "ens3": Recipe(ensemble=3),
}


def build(recipe: Recipe, c_in: int, num_paths: int) -> nn.Module:
    from edgefuse.models.gates import ConvGate

    return ConvGate(c_in, num_paths, recipe.hidden)


def path_errors(scores: PathScores) -> torch.Tensor:
    """F x P per-frame pixel error of every path (what `gate_target: error` learns from)."""
    return torch.tensor(1.0 - np.nan_to_num(scores.pixel_acc(), nan=1.0), dtype=torch.float32)


def fit_one(recipe: Recipe, feats: np.ndarray, scores: PathScores) -> nn.Module:
    torch.manual_seed(recipe.seed)
    x = torch.from_numpy(feats)
    errors = path_errors(scores)
    madds = torch.tensor(scores.costs, dtype=torch.float32)
    temperature = {"regress": None, "soft": recipe.temperature}.get(recipe.target, -1.0)
    if temperature == -1.0:
        raise SystemExit(f"unknown target {recipe.target!r}: regress or soft")
    gate = build(recipe, x.shape[1], scores.num_paths)
    opt = torch.optim.AdamW(gate.parameters(), lr=recipe.lr, weight_decay=1e-4)
    steps = recipe.epochs * math.ceil(len(x) / recipe.batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(recipe.seed)
    gate.train()
    for _ in range(recipe.epochs):
        for idx in torch.randperm(len(x), generator=gen).split(recipe.batch):
            logits = gate(x[idx].float())
            # the trainer's own gate objective (supervised mode, models/losses.py)
            loss = gate_regression_loss(logits, errors[idx], madds, recipe.lam, temperature)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    gate.eval()
    return gate


@torch.no_grad()
def predict(gates: list[nn.Module], feats: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(feats).float()
    out = [torch.cat([g(b) for b in x.split(64)]) for g in gates]
    return torch.stack(out).mean(0).numpy()


def evaluate(scores: PathScores, logits: np.ndarray, target: Target) -> dict:
    s = replace(scores, gate_logits=logits, gate=logits.argmax(1), operating_point=None)
    full = policy_report(s, np.full(s.frames, int(np.argmax(s.costs))))
    curve = strength_curve(s, confidence=target.confidence)   # madds:F@P: the bound on resampled splits
    point, met, _ = choose(curve, target, full)
    oracle = oracle_miou_at(oracle_curve(s), point["mean_madds"])
    plain = policy_report(s, s.gate)
    return {"miou": point["miou"], "madds": point["mean_madds"], "oracle": oracle,
            "gap": None if oracle is None else oracle - point["miou"], "plain": (plain["miou"], plain["mean_madds"]),
            "strength": point["strength"], "path_ratio": point["path_ratio"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("model")
    c.add_argument("--data", required=True)
    c.add_argument("--split", default="test")
    c.add_argument("--out", required=True)
    c.add_argument("--max-frames", type=int)
    c.add_argument("--position", default="stem", choices=["stem", "layer1"])
    f = sub.add_parser("fit")
    f.add_argument("--train", required=True, help="comma-separated collected sets")
    f.add_argument("--eval", required=True, help="comma-separated collected sets, pooled")
    f.add_argument("--recipe", default="base", help=f"comma-separated of {sorted(RECIPES)}")
    f.add_argument("--target", default="madds:0.78")
    f.add_argument("--set", action="append", default=[], help="recipe field=value overrides")
    f.add_argument("--json", help="append results here")
    a = ap.parse_args()
    torch.set_num_threads(1)
    if a.cmd == "collect":
        collect(a.model, a.data, a.split, Path(a.out), a.max_frames, a.position)
        return
    trs = [load(p) for p in a.train.split(",")]
    tr_scores = trs[0][0]
    for s, _ in trs[1:]:
        tr_scores = tr_scores.concat(s)
    tr_feats = np.concatenate([f for _, f in trs])
    evs = [load(p) for p in a.eval.split(",")]
    ev_scores = evs[0][0]
    for s, _ in evs[1:]:
        ev_scores = ev_scores.concat(s)
    ev_feats = np.concatenate([f for _, f in evs])
    target = Target.parse(a.target)
    for name in a.recipe.split(","):
        recipe = RECIPES[name]
        for kv in a.set:
            k, v = kv.split("=")
            recipe = replace(recipe, **{k: type(getattr(recipe, k))(v)})
        gates = [fit_one(replace(recipe, seed=recipe.seed + i), tr_feats, tr_scores) for i in range(recipe.ensemble)]
        res = evaluate(ev_scores, predict(gates, ev_feats), target)
        line = {"recipe": name, "overrides": a.set, "train": a.train, "eval": a.eval, **res}
        print(f"{name} {a.set}: {100 * res['miou']:.2f} @ {res['madds'] / 1e9:.3f}  oracle {100 * (res['oracle'] or 0):.2f}"
              f"  gap {100 * (res['gap'] or 0):.2f}  plain {100 * res['plain'][0]:.2f} @ {res['plain'][1] / 1e9:.3f}"
              f"  ratio {[round(r, 2) for r in res['path_ratio']]}", flush=True)
        if a.json:
            with open(a.json, "a") as fh:
                fh.write(json.dumps(line) + "\n")


if __name__ == "__main__":
    main()
