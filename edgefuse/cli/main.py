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
    "edgefuse.cli.tune",
    "edgefuse.cli.export",
    "edgefuse.cli.import_",
    "edgefuse.cli.calibrate",
    "edgefuse.cli.ros",
)

for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(app)

err_console = Console(stderr=True)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; user errors print one clear message and return 2.

    Typer runs in standalone mode, so usage errors (unknown command or option, missing
    argument, bad value) are caught and shown by typer itself with its usage message and
    exit code 2. Catching click's exception classes here instead broke when typer 0.26
    started vendoring click as `typer._click` (issue 9): typer's own handling works for
    every release. Only EdgefuseError, which typer lets through, is ours to print.
    """
    try:
        app(args=argv, prog_name="edgefuse")
    except SystemExit as exc:   # typer exits here on success, --help and usage errors
        return _exit_code(exc.code)
    except EdgefuseError as exc:
        # escape: messages contain brackets ("pip install 'edgefuse[tensorrt]'") that rich
        # would otherwise swallow as markup
        err_console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
        return 2
    except KeyboardInterrupt:   # typer turns Ctrl-C into its own exit; this is a fallback
        err_console.print("interrupted")
        return 130
    return 0


def _exit_code(code: object) -> int:
    """SystemExit.code as a process exit status (None is success, a message is failure)."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    err_console.print(str(code), highlight=False, markup=False)
    return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
