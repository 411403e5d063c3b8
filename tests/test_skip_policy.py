"""The skip policy (tests/skip_policy.py): a skip not on the allow-list fails the run."""

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from skip_policy import Allowed, disallowed, read_allowlist

TESTS = Path(__file__).resolve().parent


def test_allowlist_parses_and_every_entry_names_a_test_file():
    entries = read_allowlist()
    assert entries
    for e in entries:
        file_glob = e.nodeid.split("::")[0]
        assert list(TESTS.parent.glob(file_glob.rstrip("*") or "*")), f"{e.nodeid} matches no test file"


def test_only_allowed_skips_pass():
    allowed = [Allowed("tests/a.py::*", "*no camera*")]
    skips = [("tests/a.py::test_live", "no camera connected"), ("tests/a.py::test_other", "No module named 'cv2'"),
             ("tests/b.py::test_live", "no camera connected")]
    assert disallowed(skips, allowed) == skips[1:]


def test_a_bad_allowlist_line_is_an_error(tmp_path):
    bad = tmp_path / "allow.txt"
    bad.write_text("# comment\ntests/a.py::test_x without a reason\n")
    with pytest.raises(pytest.UsageError, match="allow.txt:2"):
        read_allowlist(bad)


def test_a_run_with_an_unlisted_skip_fails(tmp_path):
    (tmp_path / "conftest.py").write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(TESTS)!r})
        from skip_policy import pytest_collectreport, pytest_runtest_logreport, pytest_sessionfinish, pytest_terminal_summary
    """))
    (tmp_path / "test_x.py").write_text(textwrap.dedent("""
        import pytest

        def test_passes():
            pass

        def test_skips():
            pytest.importorskip("edgefuse_no_such_module")
    """))
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-ra", str(tmp_path)],
                         cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stdout + run.stderr
    assert "1 passed, 1 skipped" in run.stdout
    assert "skip policy" in run.stdout and "test_x.py::test_skips" in run.stdout
    assert "edgefuse_no_such_module" in run.stdout
