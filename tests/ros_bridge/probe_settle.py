"""What both probes do after their frames: keep listening until the node's /diagnostics has
caught up with its frame_info. The node counts a drop when it happens and publishes its totals
every diagnostics_period, while frame_info goes out per frame as inference ends; on a loaded
machine the last frame_info can arrive after the last /diagnostics the probe would otherwise
see, and a total compared with it would be stale (CI saw 13 counted vs 15 reported)."""

from __future__ import annotations

import time

MAX_EXTRA_S = 15.0


def settle(seen: dict[str, list], gap_s: float) -> None:
    """Return once a /diagnostics message was received `gap_s` after the newest frame_info
    (0: at once); give up after MAX_EXTRA_S (the test's own assertions then say what is wrong)."""
    if gap_s <= 0:
        return
    end = time.monotonic() + MAX_EXTRA_S
    while time.monotonic() < end:
        last_info = max((i["received_ns"] for i in seen["frame_info"]), default=0)
        if any(d["received_ns"] >= last_info + gap_s * 1e9 for d in seen["diagnostics"]):
            return
        time.sleep(0.05)
