"""Small helpers shared by CLI commands (argument parsing, consoles)."""

from __future__ import annotations

import re

from rich.console import Console

from edgefuse.errors import EdgefuseError

console = Console()


def parse_size(text: str | None) -> tuple[int, int] | None:
    """'480x640' -> (480, 640) (height x width, as ESANet and the issues write it)."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise EdgefuseError(f"input size {text!r} is not HxW, e.g. 480x640 (height x width)")
    return int(m.group(1)), int(m.group(2))


def gmac(madds: float) -> str:
    return f"{madds / 1e9:.2f}"


def progress_bar():
    """A rich progress bar for long work: description, bar, done/total, elapsed, ETA."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)
