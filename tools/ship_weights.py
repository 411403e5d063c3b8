"""Copy a finished training run into the shipped weights with its card.

    python tools/ship_weights.py NAME CONFIG.yaml [--notes TEXT]

Reads CONFIG's out_dir/model.safetensors, stores it as float16 and evaluates the stored file on
CONFIG's eval split; the card's
command is the data generation command plus `edgefuse train CONFIG`.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgefuse.train.config import load_config
from edgefuse.train.ship import ship_weights

DATA_COMMAND = "edgefuse data synth --out data/synth-s0 --frames 800 --seed 0 --size 192x256"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("name")
    ap.add_argument("config")
    ap.add_argument("--notes", default="")
    ap.add_argument("--pre", default="", help="commands that must run before training (e.g. the run it starts from)")
    args = ap.parse_args()
    cfg = load_config(args.config)
    run = Path(cfg.out_dir)
    steps = [DATA_COMMAND] + ([args.pre] if args.pre else []) + [f"edgefuse train {args.config}"]
    data = (f"edgefuse synthetic benchmark, seed 0, 800 frames at 192x256 ({DATA_COMMAND}); "
            f"eval on its {cfg.data.eval_split} split")
    weights, card = ship_weights(run / "model.safetensors", args.name, " && ".join(steps), data,
                                 cfg.data.root, cfg.data.eval_split or "test", cfg.to_dict(), args.notes)
    report = json.loads(card.read_text())["eval"]
    print(f"{args.name}: mIoU {100 * report['miou']:.2f} on {report['frames']} frames")
    print(f"wrote {weights} ({weights.stat().st_size / 1e6:.1f} MB) and {card}")


if __name__ == "__main__":
    main()
