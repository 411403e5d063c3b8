"""Errors that reach users. Each says what was wrong and how to fix it.

The CLI prints these without a traceback (a user mistake is not a crash); anything else
is a bug and keeps its traceback.
"""

from __future__ import annotations

import importlib
from types import ModuleType


class EdgefuseError(Exception):
    """A problem the user can fix: bad input, a missing file or extra, a bad config."""


class ConfigError(EdgefuseError, ValueError):
    """A configuration (model, training, export) is invalid."""


class MissingExtraError(EdgefuseError, ImportError):
    """An optional dependency is not installed."""

    def __init__(self, module: str, extra: str, hint: str | None = None) -> None:
        msg = (
            f"'{module}' is not installed; it comes with the '{extra}' extra: "
            f"pip install 'edgefuse[{extra}]'"
        )
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)
        self.module = module
        self.extra = extra


def require(module: str, extra: str, hint: str | None = None) -> ModuleType:
    """Import an optional heavy dependency, or raise an error naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no branch - message depends on the environment
        raise MissingExtraError(module, extra, hint) from exc
