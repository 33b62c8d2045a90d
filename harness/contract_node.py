"""The official AsyncAPI tools, run through the scripts in ``contracts/node/scripts``.

The parser (``@asyncapi/parser``, with the AsyncAPI ruleset) and ``@asyncapi/diff`` exist only
for Node.js, so the checks call the same scripts the Node team runs (``npm run
asyncapi:validate``, ``npm run asyncapi:diff``) and read their ``--json`` output.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.contract_files import CONTRACTS_DIR

NODE_DIR = CONTRACTS_DIR / "node"
SCRIPTS = NODE_DIR / "scripts"
INSTALL_HINT = "run `npm ci` in contracts/node (or `make test`, which does)"


class NodeToolsMissing(RuntimeError):
    """Node.js or contracts/node's packages are not installed."""


@dataclass(frozen=True)
class Diagnostic:
    """One finding of the parser or its ruleset."""

    file: str
    severity: str  # error | warning | info | hint
    code: str
    path: str  # a JSON pointer into the document
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line or '?'}"
        return f"{where}: {self.severity} {self.code} {self.path}: {self.message}"


@dataclass(frozen=True)
class Validation:
    file: str
    valid: bool  # no errors and no warnings (asyncapi-validate.mjs says why warnings count)
    diagnostics: tuple[Diagnostic, ...]


@dataclass(frozen=True)
class Change:
    """One change @asyncapi/diff found between two documents."""

    action: str  # add | remove | edit
    path: str  # a JSON pointer into the dereferenced document
    type: str  # @asyncapi/diff's verdict: breaking | non-breaking | unclassified
    before: Any = None
    after: Any = None


def _node() -> str:
    node = shutil.which("node")
    if node is None:
        raise NodeToolsMissing(
            f"Node.js is not installed (it runs the AsyncAPI tools); {INSTALL_HINT}"
        )
    if not (NODE_DIR / "node_modules" / "@asyncapi" / "parser").is_dir():
        raise NodeToolsMissing(f"@asyncapi/parser is not installed: {INSTALL_HINT}")
    return node


def _run(script: str, args: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_node(), str(SCRIPTS / script), *args],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def validate(*files: Path) -> list[Validation]:
    """Every diagnostic of the official parser for each file."""
    done = _run("asyncapi-validate.mjs", ["--json", *(str(f.resolve()) for f in files)])
    if done.returncode not in (0, 1):
        raise RuntimeError(f"asyncapi-validate.mjs failed:\n{done.stderr}")
    return [_validation(report) for report in json.loads(done.stdout)]


def _validation(data: dict[str, Any]) -> Validation:
    return Validation(
        file=data["file"],
        valid=data["valid"],
        diagnostics=tuple(Diagnostic(**d) for d in data["diagnostics"]),
    )


@dataclass(frozen=True)
class Comparison:
    documents: tuple[Validation, ...]  # one per file, in order
    # The changes from each file to the next; None when a file has errors (nothing to compare).
    changes: tuple[tuple[Change, ...], ...] | None


def compare(*files: Path) -> Comparison:
    """Validate each file and diff it with the next, in one Node process (parsing is the slow
    part, and the diff needs every file parsed anyway)."""
    done = _run("asyncapi-diff.mjs", ["--json", *(str(f.resolve()) for f in files)])
    if done.returncode not in (0, 1):
        raise RuntimeError(f"asyncapi-diff.mjs failed:\n{done.stderr}")
    data = json.loads(done.stdout)
    pairs = data["pairs"]
    return Comparison(
        documents=tuple(_validation(d) for d in data["documents"]),
        changes=None if pairs is None else tuple(tuple(map(_change, p["changes"])) for p in pairs),
    )


def _change(data: dict[str, Any]) -> Change:
    # Only the fields the rules use: the tool adds others (isArrayIndex) as it sees fit.
    return Change(
        action=data["action"],
        path=data["path"],
        type=data["type"],
        before=data.get("before"),
        after=data.get("after"),
    )
