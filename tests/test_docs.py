"""The repository documents itself: code cites docs/ (a clone has nothing above the repository
root), and every relative link in the README and docs/ resolves."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ("edgefuse", "export", "calibration", "ros_bridge", "tests", "benchmarks", "experiments", "tools")
# Design notes outside the repository that code once cited; a clone does not have them.
OUTSIDE = re.compile(r"DESIGN\.md|REFERENCE\.md|\.\./shared|\bshared/(data|papers)")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _code_files():
    for d in CODE_DIRS:
        yield from (ROOT / d).rglob("*.py") if (ROOT / d).is_dir() else ()


def test_code_cites_docs_not_files_outside_the_repository():
    offenders = [f"{p.relative_to(ROOT)}:{i}" for p in _code_files() if p.name != "test_docs.py"
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if OUTSIDE.search(line)]
    assert offenders == [], f"cite docs/... instead: {offenders}"


@pytest.mark.parametrize("doc", ["README.md", *sorted(str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md"))])
def test_relative_links_resolve(doc):
    path = ROOT / doc
    broken = []
    for target in LINK.findall(path.read_text(encoding="utf-8")):
        if "://" in target or target.startswith("mailto:"):
            continue
        resolved = (path.parent / target).resolve()
        if not resolved.exists():
            broken.append(target)
    assert broken == [], f"{doc}: links to missing files {broken}"


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: move detail to docs/"
    text = "\n".join(lines)
    for command in ("make demo", "make test"):
        assert command in text
