"""`edgefuse demo`: the main job on the embedded default (what `make demo` runs)."""

from __future__ import annotations

import typer

from edgefuse.cli.common import console


def demo() -> None:
    """Show the model registry and the per-path costs of the DynMM models."""
    from edgefuse.cli.info import info

    info(name=None, input_size=None, as_json=False, weights=False)
    for name in ("dynmm-r50", "dynmm-tiny"):
        info(name=name, input_size=None, as_json=False, weights=False)
    console.print("[green]demo done[/]")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)
