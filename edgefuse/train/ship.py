"""Package trained weights as shipped weights: NAME.safetensors + NAME.json card in
edgefuse/resources/weights (the contract: {"model", "data", "command", "eval"})."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgefuse.checkpoint import WEIGHTS_DIR, load_model, save_checkpoint


def ship_weights(checkpoint: str | Path, name: str, command: str, data: str, data_root: str | Path,
                 eval_split: str = "test", train_config: dict[str, Any] | None = None, notes: str = "",
                 out_dir: Path = WEIGHTS_DIR, half: bool = True) -> tuple[Path, Path]:
    """Re-save `checkpoint` as shipped weights `name` and write its card: model config, the data
    it was trained on, the exact command, the training config, and the eval report of the
    *shipped* file (JSON contract of edgefuse.eval.evaluate) on DATA/eval_split.

    `half` stores floating tensors as float16 (half the package size); load_model copies them
    into the float32 model, so the model still runs in float32."""
    from edgefuse.data.dataset import SegmentationDataset
    from edgefuse.eval.evaluate import evaluate

    loaded = load_model(checkpoint)
    model = loaded.model.half() if half else loaded.model
    meta = {"command": command, "data": data, "train_config": train_config}
    weights = save_checkpoint(out_dir / f"{name}.safetensors", model, meta)
    weights.chmod(0o644)
    shipped = load_model(weights)
    report = evaluate(shipped.model, SegmentationDataset(data_root, eval_split))
    card = {"name": name, "model": shipped.config.name, "model_config": shipped.config.to_dict(),
            "data": data, "command": command, "train_config": train_config,
            "weights_sha256": shipped.weights_sha256, "storage": "float16" if half else "float32",
            "eval": report, "notes": notes}
    card_path = out_dir / f"{name}.json"
    card_path.write_text(json.dumps(card, indent=2) + "\n")
    return weights, card_path
