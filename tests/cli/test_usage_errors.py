"""A new user's first mistakes, the way a user meets them (issue 9): the INSTALLED `edgefuse`
entry point in a subprocess, for every registered command (enumerated from the app, so a
command added later is covered without touching this file). An unknown command, an unknown
option, a missing required argument and a bad value each end with typer's usage message
(or the project's one-line error), exit code 2 and no traceback.

The subprocesses run a few at a time; a usage error must not import torch (that is what
keeps each one well under a second, and `edgefuse --help` fast)."""

from __future__ import annotations

import enum
import inspect
import os
import shutil
import subprocess
import sys
import typing
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import typer

from edgefuse.cli.main import app


def _entry_point() -> str | None:
    """The console script pip installed next to this interpreter (else the one on PATH)."""
    here = Path(sys.executable).parent / ("edgefuse.exe" if os.name == "nt" else "edgefuse")
    return str(here) if here.is_file() else shutil.which("edgefuse")


def _commands(group=None, path: tuple[str, ...] = ()):
    """(path, click command, is_group) for every command and group under the app."""
    group = group if group is not None else typer.main.get_command(app)
    for name, cmd in sorted(getattr(group, "commands", {}).items()):
        sub = (*path, name)
        is_group = bool(getattr(cmd, "commands", None))
        yield sub, cmd, is_group
        if is_group:
            yield from _commands(cmd, sub)


def _bad_value(cmd) -> list[str] | None:
    """An option typed int / float / enum / Literal, given a value it cannot take (the types
    come from the command function's annotations: typer's own param types differ by release)."""
    func = inspect.unwrap(cmd.callback) if cmd.callback else None
    hints = typing.get_type_hints(func) if func else {}
    for param in cmd.params:
        if param.param_type_name != "option" or getattr(param, "is_flag", False):
            continue
        hint = hints.get(param.name)
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        hint = args[0] if typing.get_origin(hint) is typing.Union and len(args) == 1 else hint
        if hint in (int, float):
            return [param.opts[0], "not-a-number"]
        if typing.get_origin(hint) is typing.Literal or (inspect.isclass(hint) and issubclass(hint, enum.Enum)):
            return [param.opts[0], "no-such-choice"]
    return None


def _cases() -> list[tuple[str, list[str], str]]:
    """(id, argv, what the message must say) for every mistake on every command."""
    cases = [("unknown-command", ["no-such-command"], "no such command")]
    for path, cmd, is_group in _commands():
        name = " ".join(path)
        if is_group:
            cases.append((f"{name}: unknown command", [*path, "no-such-command"], "no such command"))
            continue
        cases.append((f"{name}: unknown option", [*path, "--no-such-option"], "no such option"))
        # (a command that shows its help when called bare has no "missing" case: its exit
        # code there is click's choice, 0 or 2 depending on the release)
        if any(p.required for p in cmd.params) and not getattr(cmd, "no_args_is_help", False):
            cases.append((f"{name}: missing argument", list(path), "missing"))
        bad = _bad_value(cmd)
        if bad:
            cases.append((f"{name}: bad value", [*path, *bad], "invalid value"))
    return cases


CASES = _cases()


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    exe = _entry_point()
    assert exe, "the edgefuse entry point is not installed next to this Python (pip install -e .)"
    return subprocess.run([exe, *argv], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                          env={**os.environ, "COLUMNS": "80", **(env or {})})


@pytest.fixture(scope="module")
def results() -> dict[str, subprocess.CompletedProcess]:
    with ThreadPoolExecutor(max_workers=4) as pool:
        done = pool.map(lambda case: _run(case[1]), CASES)
        return {case[0]: proc for case, proc in zip(CASES, done)}


def test_every_command_is_covered():
    paths = {path for path, _, _ in _commands()}
    assert {("info",), ("run",), ("bench",), ("export",), ("inspect",), ("data",), ("data", "synth")} <= paths
    covered = {path for path in paths for _, argv, _ in CASES if tuple(argv[:len(path)]) == path}
    assert covered == paths


@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_usage_error_exits_2_without_traceback(results, case):
    name, argv, says = case
    proc = results[name]
    text = proc.stdout + proc.stderr
    assert proc.returncode == 2, text
    assert "Traceback" not in text
    assert says in text.lower(), text
    command = " ".join(a for a in argv if not a.startswith("-") and a not in ("no-such-command", "not-a-number",
                                                                              "no-such-choice"))
    assert f"Usage: edgefuse {command}".rstrip() in text, text


def test_usage_error_does_not_import_torch():
    """`edgefuse run --bogus` answers before any heavy import (PYTHONPROFILEIMPORTTIME lists
    every module the process imported on stderr)."""
    proc = _run(["run", "--no-such-option"], env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert proc.returncode == 2
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "typer" in imported   # the profile is there
    assert not imported & {"torch", "numpy", "onnxruntime", "onnx", "cv2", "open3d"}, sorted(imported)


def test_help_exits_0():
    proc = _run(["--help"])
    assert proc.returncode == 0 and "Usage: edgefuse" in proc.stdout and "Traceback" not in proc.stderr


@pytest.mark.parametrize("path", [p for p, _, _ in _commands()], ids=" ".join)
def test_every_command_has_help(capsys, path):
    """Help renders for every command with the installed typer / click (typer < 0.16 cannot
    render help with click >= 8.2: why pyproject asks for typer >= 0.16)."""
    from edgefuse.cli.main import main

    assert main([*path, "--help"]) == 0
    out = capsys.readouterr().out
    assert f"Usage: edgefuse {' '.join(path)}" in out
