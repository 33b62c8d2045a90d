"""The README and docs/ cite only files that are in the repository (found: docs/decisions.md
cited design notes that never were)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.unit

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
_FOLDERS = "agent_service|harness|fakes|contracts|loadtests|tests|docs|deploy|requirements"
# A Markdown file by name, or a path that starts at one of the repository's folders.
_CITED = re.compile(rf"(?<![\w/.-])((?:(?:{_FOLDERS})/[\w./-]*[\w/])|[\w.-]+\.md)(?![\w/-])")


# Cited on purpose although no file has the name: made by npm; a placeholder for each lock.
NOT_FILES = {"contracts/node/node_modules", "requirements/X.txt"}


def cited(text: str) -> set[str]:
    return {c.rstrip(".") for c in _CITED.findall(text)}


def exists(name: str, doc: Path) -> bool:
    if name in NOT_FILES:
        return True
    if "/" in name:
        module, _, attribute = name.rpartition(".")  # agent_service/pipeline/failures.classify
        return (REPO / name).exists() or bool(attribute and (REPO / f"{module}.py").exists())
    return any(p.exists() for p in (doc.parent / name, REPO / name, REPO / "docs" / name))


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_cited_file_exists(doc: Path) -> None:
    missing = sorted(name for name in cited(doc.read_text()) if not exists(name, doc))
    assert missing == [], f"{doc.name} cites files that are not in the repository"


def test_a_missing_file_is_found() -> None:
    text = "See DESIGN.md section 4 and `harness/no_such_module.py`, not docs/reference.md."
    assert cited(text) == {"DESIGN.md", "harness/no_such_module.py", "docs/reference.md"}
    assert not exists("DESIGN.md", REPO / "docs" / "decisions.md")
