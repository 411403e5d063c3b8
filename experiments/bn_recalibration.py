"""Why a sandwich-trained DynMM's full path falls behind the ESANet it started from (issue 17):
its BatchNorm running statistics are a mix over the paths trained together. Re-estimate them
with one path's forward passes over the training frames (no gradients; "precise BN", as
once-for-all / BigNAS recalibrate each sub-network) and score that path again.

    python experiments/bn_recalibration.py CKPT --path 4 --train data/synth-s0 --eval data/synth-s1
    python experiments/bn_recalibration.py CKPT --routed --out CKPT2   (each frame through its gate's path)

Prints the forced path's mIoU on --eval's test split before and after; nothing is written but
benchmarks/results/bn_recalibration.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # the shared harness
from _harness import machine_info  # noqa: E402

from edgefuse.checkpoint import load_model  # noqa: E402
from edgefuse.data.dataset import SegmentationDataset  # noqa: E402
from edgefuse.eval.evaluate import evaluate  # noqa: E402


@torch.no_grad()
def recalibrate(model, data, path: int, batch_size: int = 8) -> None:
    for m in model.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None          # cumulative average over every batch
    model.train()
    if path is None:               # as deployed: each frame through its gate's argmax path
        model.gate_mode = "routed"
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    for batch in loader:
        model(batch["rgb"], batch["depth"], path)
    model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("--path", type=int, default=4)
    ap.add_argument("--train", default="data/synth-s0")
    ap.add_argument("--eval", default="data/synth-s1")
    ap.add_argument("--routed", action="store_true", help="recalibrate with the gate's paths (scores --path's)")
    ap.add_argument("--out", default=None, help="write the recalibrated checkpoint here")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = load_model(args.checkpoint).model
    test = SegmentationDataset(args.eval, "test")
    before = evaluate(model, test, path=args.path)["miou"]
    recalibrate(model, SegmentationDataset(args.train, "train"), None if args.routed else args.path)
    if args.out:
        from edgefuse.checkpoint import save_checkpoint

        save_checkpoint(args.out, model, {"recalibrated": {"from": args.checkpoint, "routed": args.routed,
                                                           "path": None if args.routed else args.path,
                                                           "data": f"{args.train}/train"}})
    after = evaluate(model, test, path=args.path)["miou"]
    out = {"machine": machine_info(), "checkpoint": args.checkpoint, "path": args.path, "routed": args.routed,
           "train": args.train,
           "eval": f"{args.eval}/test", "miou_before": before, "miou_after": after}
    print(f"path {args.path} on {args.eval}/test: mIoU {100 * before:.2f} -> {100 * after:.2f} after recalibrating BN")
    name = "bn_recalibration" + ("_routed" if args.routed else "")
    Path(__file__).resolve().parents[1].joinpath("benchmarks", "results", f"{name}.json").write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
