"""How much of the per-frame oracle can a gate that sees the frame predict? (issue 13)

    python experiments/gate_ceiling.py --checkpoint CKPT [--train data/synth-s0:train] \
        [--splits data/synth-s0:test,data/synth-eval-s1:test,data/synth-eval-s2:test]

Every path runs on every frame of the training split and of each test split (scores cached
as in experiments/gate_routing.py). Then linear gates are fitted offline (ridge regression of
each path's per-frame pixel accuracy, centred over the paths, from frame features), on the
training frames, and applied to the test frames with a cost weight mu swept from 0 up
(argmax of predicted accuracy - mu x cost share): a trade-off curve per feature set, beside
the forced paths, the per-frame oracle and two gates that know the frame's hard/easy flag
(the benchmark's ground truth; best of every easy-path / hard-path pair at each cost):
  stats: 11 cheap frame statistics (brightness, contrast, colourfulness, edge density, depth
         validity, depth mean / spread / edges);
  stem:  the mean and spread of every stem feature channel (what the conv gate sees, pooled);
  both.
Writes benchmarks/results/gate_ceiling.{md,json,png}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the shared harness
from _harness import RESULTS, harness_parser, load_average, machine_info, write_result  # noqa: E402
from gate_routing import scores_for  # noqa: E402

from edgefuse.eval.oracle import PathScores, oracle_curve, policy_report  # noqa: E402

MUS = tuple(np.round(np.concatenate([np.linspace(0, 0.2, 21), np.linspace(0.25, 1.0, 16)]), 3))


def frame_stats(rgb: torch.Tensor, depth: torch.Tensor) -> np.ndarray:
    """11 statistics of one frame (rgb 3xHxW 0..255, depth 1xHxW mm)."""
    gray = rgb.mean(0) / 255.0
    gx, gy = gray[:, 1:] - gray[:, :-1], gray[1:] - gray[:-1]
    edges = float((gx.abs().mean() + gy.abs().mean()) / 2)
    sat = float((rgb.max(0).values - rgb.min(0).values).mean() / 255.0)
    d = depth[0]
    valid = d > 0
    dv = d[valid] / 1000.0 if valid.any() else torch.zeros(1)
    dx = (d[:, 1:] - d[:, :-1]).abs()[(valid[:, 1:] & valid[:, :-1])] / 1000.0
    return np.array([gray.mean(), gray.std(), sat, edges, *(rgb.mean((1, 2)) / 255.0).tolist(),
                     valid.float().mean(), dv.mean(), dv.std() if dv.numel() > 1 else 0.0,
                     dx.mean() if dx.numel() else 0.0], dtype=np.float64)


@torch.no_grad()
def features(model, dataset) -> dict[str, np.ndarray]:
    stats, stem = [], []
    for i in range(len(dataset)):
        item = dataset[i]
        stats.append(frame_stats(item["rgb"], item["depth"]))
        feats = model.stem(item["rgb"][None], item["depth"][None])
        chans = torch.cat([feats[n] for n in model.feature_names], dim=1)[0]
        stem.append(torch.cat([chans.mean((1, 2)), chans.std((1, 2))]).numpy())
    s, t = np.stack(stats), np.stack(stem)
    return {"stats": s, "stem": t, "both": np.concatenate([s, t], axis=1)}


def fit_ridge(x: np.ndarray, y: np.ndarray, alpha: float = 1.0):
    mu, sd = x.mean(0), x.std(0) + 1e-9
    xs = np.concatenate([(x - mu) / sd, np.ones((len(x), 1))], axis=1)
    reg = alpha * np.eye(xs.shape[1])
    reg[-1, -1] = 0.0
    w = np.linalg.solve(xs.T @ xs + reg, xs.T @ y)
    return lambda z: np.concatenate([(z - mu) / sd, np.ones((len(z), 1))], axis=1) @ w


def centred_acc(scores: PathScores) -> np.ndarray:
    acc = np.nan_to_num(scores.pixel_acc(), nan=0.0)
    return acc - acc.mean(axis=1, keepdims=True)


def curve(scores: PathScores, pred: np.ndarray) -> list[dict]:
    share = scores.costs / scores.costs.max()
    out = []
    for mu in MUS:
        rep = policy_report(scores, np.argmax(pred - mu * share[None, :], axis=1))
        out.append({"mu": float(mu), "miou": rep["miou"], "mean_madds": rep["mean_madds"]})
    return out


def flag_curve(scores: PathScores) -> list[dict]:
    """Upper envelope of 'easy frames -> path a, hard frames -> path b' over all (a, b)."""
    p = scores.num_paths
    pts = []
    for a in range(p):
        for b in range(p):
            rep = policy_report(scores, np.where(scores.hard, b, a))
            pts.append({"easy": a, "hard": b, "miou": rep["miou"], "mean_madds": rep["mean_madds"]})
    return envelope(pts)


def envelope(pts: list[dict]) -> list[dict]:
    out, best = [], -1.0
    for q in sorted(pts, key=lambda q: q["mean_madds"]):
        if q["miou"] > best:
            out.append(q)
            best = q["miou"]
    return out


def at_cost(pts: list[dict], madds: float) -> float | None:
    ok = [q["miou"] for q in pts if q["mean_madds"] <= madds * (1 + 1e-9)]
    return max(ok) if ok else None


def main() -> None:
    from edgefuse.checkpoint import load_model
    from edgefuse.data.dataset import SegmentationDataset

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0], parents=[harness_parser()])
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--name", default="ceiling")
    ap.add_argument("--train", default="data/synth-s0:train")
    ap.add_argument("--splits", default="data/synth-s0:test,data/synth-eval-s1:test,data/synth-eval-s2:test")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.checkpoint).model.eval()
    train_data, train_split = args.train.rsplit(":", 1)
    train_scores = scores_for(args.name, args.checkpoint, train_data, train_split, args.threads)
    train_feats = features(model, SegmentationDataset(train_data, train_split))
    gates = {k: fit_ridge(v, centred_acc(train_scores)) for k, v in train_feats.items()}
    results = []
    for spec in args.splits.split(","):
        data, split = spec.rsplit(":", 1)
        scores = scores_for(args.name, args.checkpoint, data, split, args.threads)
        feats = features(model, SegmentationDataset(data, split))
        full = policy_report(scores, np.full(scores.frames, scores.num_paths - 1))
        row = {"split": f"{Path(data).name}:{split}", "full": {"miou": full["miou"], "mean_madds": full["mean_madds"]},
               "forced": [policy_report(scores, np.full(scores.frames, k))["miou"] for k in range(scores.num_paths)],
               "costs": scores.costs.tolist(), "oracle": envelope(oracle_curve(scores)),
               "flag": flag_curve(scores) if scores.hard is not None else [],
               "linear": {k: curve(scores, g(feats[k])) for k, g in gates.items()}}
        results.append(row)
    target = 0.8
    lines = ["# How much of the per-frame oracle can a gate that sees the frame predict?", "",
             f"Checkpoint `{args.checkpoint}`; linear gates fitted on `{args.train}`. Date "
             f"{machine_info()['date']}, load {load_average()}.", "",
             f"mIoU % at mean MAdds <= {target:.0%} of the full path (issue 13's goal 2 needs >= full - 1):", "",
             "| split | full path | oracle | hard/easy flag | linear: stats | linear: stem | linear: both |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        c = target * r["full"]["mean_madds"]
        cells = [at_cost(r["oracle"], c), at_cost(r["flag"], c)] + [at_cost(envelope(r["linear"][k]), c)
                                                                     for k in ("stats", "stem", "both")]
        lines.append(f"| {r['split']} | {100 * r['full']['miou']:.2f} | " +
                     " | ".join("-" if v is None else f"{100 * v:.2f}" for v in cells) + " |")
    write_result(RESULTS, "gate_ceiling", {"results": results}, "\n".join(lines) + "\n\n![curves](gate_ceiling.png)\n",
                 args)
    plot(results, RESULTS / "gate_ceiling.png")


def plot(results: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(results), figsize=(5 * len(results), 4.2), squeeze=False)
    for ax, r in zip(axes[0], results):
        g = lambda pts: ([q["mean_madds"] / 1e9 for q in pts], [100 * q["miou"] for q in pts])  # noqa: E731
        ax.plot(*g(r["oracle"]), "-", color="tab:green", label="per-frame oracle")
        if r["flag"]:
            ax.plot(*g(r["flag"]), "o-", color="tab:purple", label="knows hard/easy")
        for k, style in (("stats", ":"), ("stem", "--"), ("both", "-.")):
            ax.plot(*g(envelope(r["linear"][k])), style, label=f"linear gate: {k}")
        ax.plot([c / 1e9 for c in r["costs"]], [100 * m for m in r["forced"]], "s", color="tab:blue",
                label="forced paths")
        ax.axvline(0.8 * r["full"]["mean_madds"] / 1e9, color="grey", lw=0.8)
        ax.axhline(100 * r["full"]["miou"] - 1, color="grey", lw=0.8)
        ax.set_title(r["split"], fontsize=9)
        ax.set_xlabel("mean GMAC per frame")
        ax.set_ylabel("mIoU %")
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
