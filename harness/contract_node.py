"""The official AsyncAPI tools, run through the scripts in ``contracts/node/scripts``.

The parser (``@asyncapi/parser``, with the AsyncAPI ruleset) and ``@asyncapi/diff`` exist only
for Node.js, so the checks call the same scripts the Node team runs (``npm run
asyncapi:validate``) and read their ``--json`` output.
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


class InvalidDocument(RuntimeError):
    """A file given to the diff is not a valid AsyncAPI document (the message has the errors)."""


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
    return [
        Validation(
            file=report["file"],
            valid=report["valid"],
            diagnostics=tuple(Diagnostic(**d) for d in report["diagnostics"]),
        )
        for report in json.loads(done.stdout)
    ]


def diff_chain(files: list[Path]) -> list[list[Change]]:
    """The changes from each file to the next (one list per consecutive pair)."""
    if len(files) < 2:
        return []
    done = _run("asyncapi-diff.mjs", ["--json", *(str(f.resolve()) for f in files)])
    if done.returncode == 1:
        raise InvalidDocument(done.stderr.strip())
    if done.returncode != 0:
        raise RuntimeError(f"asyncapi-diff.mjs failed:\n{done.stderr}")
    return [[_change(c) for c in pair["changes"]] for pair in json.loads(done.stdout)]


def _change(data: dict[str, Any]) -> Change:
    # Only the fields the rules use: the tool adds others (isArrayIndex) as it sees fit.
    return Change(
        action=data["action"],
        path=data["path"],
        type=data["type"],
        before=data.get("before"),
        after=data.get("after"),
    )
