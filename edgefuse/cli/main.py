"""Entry point of the `edgefuse` command.

Each command lives in its own module under edgefuse/cli/ exposing `register(app)`; this
file only composes them and turns user errors into a clean message (no traceback) and
exit code 2. Heavy imports happen inside the commands, so `edgefuse --help` is fast.
"""

from __future__ import annotations

import importlib
import sys

import typer
from rich.console import Console
from rich.markup import escape

from edgefuse.errors import EdgefuseError

app = typer.Typer(
    name="edgefuse",
    help="Dynamic multimodal (RGB-D) fusion networks, from research to robots.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

# One module per command (group). A module listed here must define `register(app)`.
COMMAND_MODULES: tuple[str, ...] = (
    "edgefuse.cli.info",
    "edgefuse.cli.demo",
    "edgefuse.cli.run",
    "edgefuse.cli.bench",
    "edgefuse.cli.data",
    "edgefuse.cli.train",
    "edgefuse.cli.eval",
    "edgefuse.cli.export",
    "edgefuse.cli.ros",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)

err_console = Console(stderr=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one clear message and return 2."""
    try:
        app(args=argv, standalone_mode=False)
    except EdgefuseError as exc:
        # escape: messages contain brackets ("pip install 'edgefuse[tensorrt]'") that rich
        # would otherwise swallow as markup
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        err_console.print("interrupted")
        return 130
    except SystemExit as exc:  # typer/click exit paths (--help, usage errors)
        return int(exc.code or 0)
    except Exception as exc:  # click usage errors arrive as click exceptions
        import click

        if isinstance(exc, click.exceptions.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            err_console.print("aborted")
            return 1
        raise
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
