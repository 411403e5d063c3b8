"""A test run fails on any skip that is not on tests/skip_allowlist.txt (issue 18).

`pytest.importorskip` and skip marks turn a broken install into a green run of "skipped"
tests. Here every skip is collected (test and collection reports alike); at the end pytest's
skip summary is printed (`-ra`) and, if any skip matches no allow-list line, the run's exit
status becomes 1 and the offending tests are listed with their reasons. Imported by
tests/conftest.py, so `make test`, `.ci/run` and a plain `pytest tests` all apply it.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

import pytest

ALLOWLIST = Path(__file__).with_name("skip_allowlist.txt")


@dataclass(frozen=True)
class Allowed:
    nodeid: str
    reason: str

    def matches(self, nodeid: str, reason: str) -> bool:
        return fnmatch.fnmatchcase(nodeid, self.nodeid) and fnmatch.fnmatchcase(reason, self.reason)


def read_allowlist(path: Path = ALLOWLIST) -> list[Allowed]:
    """The allow-list's entries; a line that is not `NODEID-GLOB | REASON-GLOB` is an error."""
    entries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        nodeid, sep, reason = line.partition("|")
        if not sep or not nodeid.strip() or not reason.strip():
            raise pytest.UsageError(f"{path}:{number}: expected 'NODEID-GLOB | REASON-GLOB', got {line!r}")
        entries.append(Allowed(nodeid.strip(), reason.strip()))
    return entries


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    """The reason pytest prints for a skip (longrepr is (path, line, 'Skipped: reason'))."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


_skips: list[tuple[str, str]] = []


def _record(report) -> None:
    if report.skipped and not hasattr(report, "wasxfail"):
        _skips.append((report.nodeid, skip_reason(report)))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    _record(report)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    _record(report)


def disallowed(skips: list[tuple[str, str]], allowed: list[Allowed]) -> list[tuple[str, str]]:
    return [(nodeid, reason) for nodeid, reason in skips if not any(a.matches(nodeid, reason) for a in allowed)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    bad = disallowed(_skips, read_allowlist())
    session.config.stash[_BAD] = bad
    if bad and exitstatus in (pytest.ExitCode.OK, pytest.ExitCode.NO_TESTS_COLLECTED):
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    bad = config.stash.get(_BAD, [])
    if not _skips:
        return
    terminalreporter.section("skip policy")
    if not bad:
        terminalreporter.write_line(f"{len(_skips)} skip(s), all on {ALLOWLIST.name}")
        return
    terminalreporter.write_line(f"{len(bad)} skip(s) not on tests/{ALLOWLIST.name}: the run FAILS "
                                "(install what is missing, or fix the test):", red=True)
    for nodeid, reason in bad:
        terminalreporter.write_line(f"  {nodeid}: {reason}")


_BAD = pytest.StashKey[list]()
