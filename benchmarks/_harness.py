"""The harness every script in benchmarks/ and experiments/ shares: one argparse parent
(`--json FILE`, `--md FILE`: extra copies of the result), and `write_result`, which records the
command, the machine, the load average and the date with every result and writes it to
benchmarks/results/<name>.{json,md}.

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from _harness import RESULTS, harness_parser, write_result

    ap = argparse.ArgumentParser(description=..., parents=[harness_parser()])
    ...
    write_result(RESULTS, name, data, markdown, args)
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import sys
from pathlib import Path
from typing import Any

#: Where every result lands (benchmarks/results), whichever folder the script is in.
RESULTS = Path(__file__).resolve().parent / "results"


def harness_parser() -> argparse.ArgumentParser:
    """The options every benchmark and experiment takes (use as `parents=[harness_parser()]`)."""
    p = argparse.ArgumentParser(add_help=False)
    g = p.add_argument_group("result files (always written to benchmarks/results/ as well)")
    g.add_argument("--json", metavar="FILE", default=None, help="also write the result's JSON here")
    g.add_argument("--md", metavar="FILE", default=None, help="also write the result's Markdown here")
    return p


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages (what else ran on the machine during the result)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:   # not available on this platform
        return []


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


def write_result(out_dir: str | Path, name: str, data: dict, markdown: str, args: Any = None) -> None:
    """Write <out_dir>/<name>.json and .md (and the --json / --md copies in `args`), and print
    the Markdown. The JSON always records `command`, `machine` (with the date) and
    `load_average` at the time of writing (a script's own load fields stay as it set them);
    the Markdown ends with the same line, so a result read alone says where it came from."""
    info = machine_info()
    data = {"command": info["command"], **data}
    data["machine"] = {**info, **data.get("machine", {})} if isinstance(data.get("machine"), dict) else info
    data.setdefault("load_average", load_average())
    footer = (f"\n_Recorded by `{data['command']}` on {data['machine'].get('cpu_model', data['machine']['processor'])} "
              f"({data['machine']['cpu_count']} cores), load {data['load_average']}, "
              f"{data['machine']['date']}._\n")
    text = markdown.rstrip("\n") + "\n" + footer
    payload = json.dumps(data, indent=2) + "\n"
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    targets = [(out / f"{name}.json", payload), (out / f"{name}.md", text)]
    if args is not None and getattr(args, "json", None):
        targets.append((Path(args.json), payload))
    if args is not None and getattr(args, "md", None):
        targets.append((Path(args.md), text))
    for path, content in targets:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    print(text)


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
