"""Fusion-level DynMM from a trained ESANet with no network training (issue 17): per-path
BatchNorm (model option per_path_bn, edgefuse/models/path_bn.py), every set copied from the
ESANet, then each sub-path's set re-estimated by forward passes of the training frames
through that path ("precise BN", no gradients). Scores every forced path on the tuning
splits before (ESANet's statistics on every path, as init_from gives) and after.

    python experiments/per_path_bn.py --init esanet-tiny-synth --train data/synth-s0 \
        --tune data/synth-s1:test,data/synth-s2:test --out runs/dynmm-ppbn/recal.safetensors
    (--tune '' only recalibrates and writes --out; --recalibrated CKPT scores it later)

The written checkpoint has an untrained gate: train it with the network frozen
(configs/experiments/dynmm-tiny-synth-ppbn-gate.yaml), then choose its operating point with
`edgefuse tune`. Writes benchmarks/results/per_path_bn.json. The final split is never read.
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
import torch  # noqa: E402

from edgefuse.checkpoint import load_model, save_checkpoint  # noqa: E402
from edgefuse.data.dataset import SegmentationDataset  # noqa: E402
from edgefuse.eval.oracle import policy_report, score_paths  # noqa: E402
from edgefuse.models.path_bn import expand_shared_bn, recalibrate_paths  # noqa: E402
from edgefuse.models.registry import build_model  # noqa: E402

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def forced(model, splits) -> dict:
    pooled = None
    for root, split in splits:
        s = score_paths(model, SegmentationDataset(root, split), batch_size=8)
        pooled = s if pooled is None else pooled.concat(s)
    assert pooled is not None
    out = {}
    for k in range(model.num_paths):
        r = policy_report(pooled, np.full(pooled.frames, k, dtype=np.int64))
        out[k] = {"miou": round(100 * r["miou"], 2), "mean_gmac": round(r["mean_madds"] / 1e9, 4)}
    return out


def _from_esanet(init: str, name: str):
    """`name` with per-path BN, every weight and every BN set from the static ESANet `init`."""
    src = load_model(init)
    cfg = src.model.config
    model = build_model(name, num_classes=cfg.num_classes, class_names=cfg.class_names,
                        input_size=cfg.input_size, depth_mean=cfg.depth_mean, depth_std=cfg.depth_std,
                        per_path_bn=True)
    own = model.state_dict()
    state = expand_shared_bn(src.model.state_dict(), own)
    missing = sorted({k.split(".")[0] for k in own if k not in state})
    assert missing == ["gate_net"], missing   # only the gate is left at its initialisation
    model.load_state_dict(state, strict=False)
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--init", default="esanet-tiny-synth", help="the trained static ESANet")
    ap.add_argument("--model", default="dynmm-tiny", help="registered fusion-level DynMM of the same size")
    ap.add_argument("--train", default="data/synth-s0")
    ap.add_argument("--tune", default="data/synth-s1:test,data/synth-s2:test",
                    type=lambda s: [tuple(x.split(":")) for x in s.split(",") if x],
                    help="splits to score every forced path on, before and after ('': only recalibrate)")
    ap.add_argument("--recal", default="0,1,2,3", type=lambda s: [int(x) for x in s.split(",") if x],
                    help="paths whose BN is re-estimated (the full path keeps the ESANet's)")
    ap.add_argument("--out", default="runs/dynmm-ppbn/recal.safetensors")
    ap.add_argument("--from", dest="start", default=None,
                    help="recalibrate this per-path-BN checkpoint (e.g. after a sandwich stage) instead of "
                         "building one from --init")
    ap.add_argument("--result", default="per_path_bn.json", help="file name under benchmarks/results")
    ap.add_argument("--max-frames", type=int, default=None, help="precise BN on the first N training frames")
    ap.add_argument("--recalibrated", default=None,
                    help="score this checkpoint of an earlier run (written with --tune '') instead of recalibrating")
    args = ap.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)

    if args.start is not None:
        model = load_model(args.start).model.eval()
    else:
        model = _from_esanet(args.init, args.model)

    result = {"machine": machine_info(), "load": [round(x, 2) for x in os.getloadavg()],
              "command": "python " + " ".join(sys.argv), "init": args.start or args.init, "train": f"{args.train}/train",
              "tuning_data": " + ".join(f"{r}/{s}" for r, s in args.tune), "recalibrated_paths": args.recal}
    if args.tune:
        result["forced_before"] = forced(model, args.tune)
        print("before (as built or loaded):", result["forced_before"], flush=True)
    if args.recalibrated is None:
        data = SegmentationDataset(args.train, "train")
        if args.max_frames is not None:
            data = torch.utils.data.Subset(data, range(min(args.max_frames, len(data))))
        result["precise_bn_frames"] = len(data)
        loader = torch.utils.data.DataLoader(data, batch_size=8, shuffle=False)
        recalibrate_paths(model, loader, args.recal)
        save_checkpoint(args.out, model, {"per_path_bn_recalibrated": {
            "init_from": args.start or args.init, "paths": args.recal, "data": f"{args.train}/train", "frames": len(data)}})
    else:
        args.out = args.recalibrated
        model = load_model(args.recalibrated).model.eval()
    if not args.tune:
        return
    result["forced_after"] = forced(model, args.tune)
    print("after (per-path precise BN):", result["forced_after"], flush=True)
    result["checkpoint"] = args.out
    RESULTS.joinpath(args.result).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
