"""Issue 13's goals for a dynamic model, read off an oracle report (edgefuse.eval.oracle):
shared by experiments/gate_routing.py and experiments/eval_shipped.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

SAVING = 0.20          # goal 2: at least 20% fewer mean MAdds than the full path
WITHIN = 0.01          # goal 2: within 1 mIoU of the full path


def best_forced_at_cost(report: dict[str, Any], madds: float) -> tuple[int, float] | None:
    """(path, mIoU) of the best forced single path whose MAdds are no greater than `madds`."""
    ok = [(k, r["miou"]) for k, r in enumerate(report["forced"]) if r["mean_madds"] <= madds * (1 + 1e-9)]
    return max(ok, key=lambda x: x[1]) if ok else None


def routing_goals(report: dict[str, Any], policy: str = "gate") -> list[dict[str, Any]]:
    """Issue 13's goals for `policy` ('gate' or 'oracle') of an oracle report."""
    unit = report.get("unit", "path")
    dyn, full = report[policy], report["forced"][-1]
    out = []
    best = best_forced_at_cost(report, dyn["mean_madds"])
    if best is not None:
        k, miou = best
        out.append({"goal": f"mIoU >= the best forced single {unit} costing no more",
                    "value": f"{100 * dyn['miou']:.2f} vs {unit} {k} {100 * miou:.2f} ({100 * (dyn['miou'] - miou):+.2f})",
                    "met": dyn["miou"] >= miou})
    saving = 1 - dyn["mean_madds"] / full["mean_madds"]
    gap = dyn["miou"] - full["miou"]
    out.append({"goal": f"within 1 mIoU of the full {unit} (forced) with >= 20% fewer mean MAdds",
                "value": f"{100 * gap:+.2f} mIoU at {100 * saving:.1f}% fewer", "met": gap >= -WITHIN and saving >= SAVING})
    if policy == "gate":
        d = report["distance"]
        out.append({"goal": "distance to the oracle curve at the gate's cost (reported)",
                    "value": f"{100 * d['gap']:.2f} mIoU below (oracle {100 * d['oracle_miou_at_gate_cost']:.2f})",
                    "met": None})
    return out


def split_tag(data: str | Path, split: str) -> str:
    return f"{Path(data).name}:{split}"
