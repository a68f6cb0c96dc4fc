"""Issue 14: the documentation points only inside the repository, at files that exist.

A clone has nothing beside it: a doc, docstring or comment that names a path on the machine it
was written on (``/work/…``), a sibling checkout (``../shared/…``) or a design note that is not
in ``docs/`` sends its reader nowhere. Checked here, for every Markdown file and every Python,
TOML, shell (``scripts/``, ``.ci/``), Lua, JavaScript, YAML and systemd file of the repository:

- no absolute path into the author's machine and no path to a sibling directory;
- every relative Markdown link ``[text](path)`` resolves to a file or directory of the
  repository (an ``#anchor`` is ignored; ``http(s):`` and ``mailto:`` links are not checked);
- every ``docs/NAME.md`` mentioned anywhere, and every upper-case ``NAME.md`` (the project's
  docs and design notes: ``PERFORMANCE.md``, ``SECURITY-CASES.md`` …), exists in the repository.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_SKIP_DIRS = {
    ".git",
    ".venv",
    "node_modules",
    "test-artifacts",
    "var",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
}
_SUFFIXES = {
    ".md",
    ".py",
    ".toml",
    ".sh",
    ".service",
    ".timer",
    ".cfg",
    ".txt",
    ".lua",
    ".js",
    ".yml",
    ".yaml",
    ".ini",
}
_OUTSIDE = re.compile(r"(?<![\w.])/work/|\.\./shared\b|\bshared/design\b")
_LINK = re.compile(r"\[[^\]\n]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
_DOCS_PATH = re.compile(r"(?<![\w/.-])docs/([A-Za-z0-9_.-]+\.md)\b")
_CAPS_DOC = re.compile(r"(?<![\w/.-])([A-Z][A-Z0-9]*(?:-[A-Z0-9]+)*\.md)\b")
THIS = Path(__file__).resolve()


def _files() -> Iterator[Path]:
    for path in sorted(REPO.rglob("*")):
        relative = path.relative_to(REPO)
        if any(part in _SKIP_DIRS or part.endswith(".egg-info") for part in relative.parts):
            continue
        if relative.parts[:2] == ("keys", "demo"):
            continue
        if not path.is_file() or path.resolve() == THIS:
            continue
        if path.suffix in _SUFFIXES or (
            relative.parts[0] in ("scripts", ".ci")
            and not path.suffix
            and path.stat().st_size < 1 << 20
        ):
            yield path


def _known_doc_names() -> set[str]:
    names = {p.name for p in (REPO / "docs").glob("*.md")}
    names |= {p.name for p in REPO.glob("*.md")}
    names |= {p.name for p in REPO.glob("*/README.md")}
    return names


def _problems(path: Path, text: str, known: set[str]) -> list[str]:
    where = path.relative_to(REPO)
    problems: list[str] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if match := _OUTSIDE.search(line):
            problems.append(f"{where}:{number}: points outside the repository ({match.group(0)})")
        for name in _DOCS_PATH.findall(line):
            if not (REPO / "docs" / name).is_file():
                problems.append(f"{where}:{number}: docs/{name} does not exist")
        for name in _CAPS_DOC.findall(line):
            if name not in known and not (path.parent / name).is_file():
                problems.append(f"{where}:{number}: {name} is no document of the repository")
        if path.suffix != ".md":
            continue
        for target in _LINK.findall(line):
            if re.match(r"[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            relative = target.split("#", 1)[0]
            resolved = (path.parent / relative).resolve()
            if not resolved.is_relative_to(REPO):
                problems.append(f"{where}:{number}: link {target} leaves the repository")
            elif not resolved.exists():
                problems.append(f"{where}:{number}: link {target} names no file")
    return problems


def test_docs_and_comments_point_only_at_files_of_the_repository() -> None:
    known = _known_doc_names()
    problems: list[str] = []
    checked = 0
    for path in _files():
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        checked += 1
        problems.extend(_problems(path, text, known))
    assert checked > 100, f"only {checked} files checked: the walk is broken"
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_are_for(tmp_path: Path) -> None:
    """Each rule fires on a line made to break it (so an always-passing check cannot hide)."""
    known = _known_doc_names()
    doc = REPO / "docs" / "EXAMPLE-NOT-A-FILE.md"  # only its directory is used
    text = "\n".join(
        [
            "See /work/shared/design/PERFORMANCE.md.",
            "See ../shared/design/ for the notes.",
            "[deploying](DEPLOYING-NOT-THERE.md) and [ok](POLICY.md#limits)",
            "[escape](../../etc/passwd)",
            "docs/NOT-A-DOC.md and MISSING-NOTE.md",
            "[web](https://example.com/x.md) and `docs/POLICY.md`",
        ]
    )
    found = _problems(doc, text, known)
    joined = "\n".join(found)
    assert "docs/EXAMPLE-NOT-A-FILE.md:1: points outside the repository (/work/)" in joined
    assert ":2: points outside the repository (../shared)" in joined
    assert ":3: link DEPLOYING-NOT-THERE.md names no file" in joined
    assert "POLICY.md#limits" not in joined
    assert ":4: link ../../etc/passwd leaves the repository" in joined
    assert ":5: docs/NOT-A-DOC.md does not exist" in joined
    assert ":5: MISSING-NOTE.md is no document of the repository" in joined
    assert ":6:" not in joined
