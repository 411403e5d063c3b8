"""Machine description written beside every benchmark result."""

from __future__ import annotations

import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path


def machine_info() -> dict:
    info = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([os.path.basename(sys.executable)] + sys.argv),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return info


def write_result(out_dir: str | Path, name: str, data: dict, markdown: str) -> None:
    """benchmarks/results/<name>.json and .md, and the Markdown on stdout."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / f"{name}.md").write_text(markdown)
    print(markdown)


def bundle_or_export(bundle: str | None, model: str, size: tuple[int, int] | None, tmp: str | Path,
                     verify_frames: int = 1) -> str:
    """`bundle` when given, else `model` exported into `tmp` at `size` (None: the model's
    own input size). A registry name is randomly initialised from seed 0, so every run (and
    the caller's own build_model after torch.manual_seed(0)) gets the same weights."""
    if bundle is not None:
        return bundle
    import torch

    from edgefuse.export.exporter import export_bundle

    torch.manual_seed(0)
    out = str(Path(tmp) / "bundle")
    print(f"exporting {model}" + (f" at {size[0]}x{size[1]}" if size else "") + " ...", file=sys.stderr, flush=True)
    export_bundle(model, out, input_size=size, force=True, verify_frames=verify_frames)
    return out
