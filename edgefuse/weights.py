"""Shipped pretrained weights (edgefuse/resources/weights): listing for `edgefuse info --weights`."""

from __future__ import annotations

import json
from typing import Any

from edgefuse.checkpoint import WEIGHTS_DIR, shipped_weights


def list_weights() -> list[dict[str, Any]]:
    """One row per shipped checkpoint, from the JSON card beside it (NAME.json)."""
    rows = []
    for name, path in shipped_weights().items():
        card_path = WEIGHTS_DIR / f"{name}.json"
        card = json.loads(card_path.read_text()) if card_path.is_file() else {}
        rows.append({"name": name, "file": path.name, "size_bytes": path.stat().st_size,
                     "model": card.get("model", ""), "data": card.get("data", ""),
                     "miou": card.get("eval", {}).get("miou"), "command": card.get("command", ""),
                     # the card's full record, for tools (`edgefuse info --weights --json`)
                     "eval": card.get("eval", {}), "model_config": card.get("model_config", {}),
                     "weights_sha256": card.get("weights_sha256")})
    return rows
