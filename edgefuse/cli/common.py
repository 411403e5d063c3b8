"""Small helpers shared by CLI commands (argument parsing, consoles)."""

from __future__ import annotations

import re
from typing import Any, Iterator

from rich.console import Console, Group
from rich.table import Table

from edgefuse.errors import EdgefuseError


def _tables(renderable: Any) -> Iterator[Table]:
    """The tables in what is printed (also inside a Group, as the eval report is)."""
    if isinstance(renderable, Table):
        yield renderable
    elif isinstance(renderable, Group):
        for child in renderable.renderables:
            yield from _tables(child)


class CliConsole(Console):
    """The console every command prints its human output with (issue 9).

    Two rules, so that the names a user copies (models, weights, graphs, files, hashes,
    paths) always come out whole, whatever the command and whoever wrote its table:
    - no table cell is cut with "…": a cell too wide for its column folds onto the next line;
    - off a terminal (piped, redirected, in CI) nothing is fitted to 80 columns ($COLUMNS
      sizes terminals): a table is printed at its natural width and a line of text is as
      long as its content, so `edgefuse info | grep` sees whole names and whole rows.
    Everything else is rich's usual behaviour (no colour off a terminal, NO_COLOR honoured).
    """

    def natural_width(self, renderable: Any, minimum: bool = False) -> int:
        """The width `renderable` takes when nothing limits it (its minimum: when every
        column is as narrow as its longest word)."""
        measured = self.measure(renderable, options=self.options.update_width(1 << 16))
        return measured.minimum if minimum else measured.maximum

    def print(self, *objects: Any, **kwargs: Any) -> None:
        tables = [t for o in objects for t in _tables(o)]
        for table in tables:
            # A no_wrap column that cannot fit is cropped whatever its overflow; when even
            # the table's minimum does not fit, let every column fold instead.
            crop = self.is_terminal and self.natural_width(table, minimum=True) > self.width
            for column in table.columns:
                if column.overflow == "ellipsis":
                    column.overflow = "fold"
                if crop:
                    column.no_wrap = False
        if self.is_terminal or kwargs.get("width") is not None:
            super().print(*objects, **kwargs)
            return
        if not tables:
            kwargs.setdefault("soft_wrap", True)
        natural = max(map(self.natural_width, tables), default=0)
        if natural <= self.width:
            super().print(*objects, **kwargs)
            return
        # rich lays out and crops at the console's width, so widen it for this print only
        # (None, rich's "ask the terminal / $COLUMNS", is restored after)
        saved = self._width
        self._width = natural
        try:
            super().print(*objects, **kwargs)
        finally:
            self._width = saved


console = CliConsole()


def parse_size(text: str | None, flag: str = "--input-size") -> tuple[int, int] | None:
    """'480x640' -> (480, 640) (height x width, as ESANet and the issues write it); `flag`
    names the option in the error."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not m:
        raise EdgefuseError(f"{flag} {text!r} is not HxW, e.g. 480x640 (height x width)")
    return int(m.group(1)), int(m.group(2))


def gmac(madds: float) -> str:
    return f"{madds / 1e9:.2f}"


def progress_bar():
    """A rich progress bar for long work: description, bar, done/total, elapsed, ETA."""
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TimeRemainingColumn(), console=console, transient=True)
