"""Released contract versions: the snapshots in ``contracts/versions/`` and the changelog.

Releasing version X (``harness contracts release``) copies ``contracts/asyncapi.yaml`` to
``contracts/versions/asyncapi-X.yaml``; a snapshot is never edited afterwards. Everything the
check needs is in committed files, so it gives the same answer on a clean clone of main as in a
working tree (no git history, no "previous commit", which on main is the commit itself):

- the document equals the snapshot of its own ``info.version`` (CONTRACT_VERSION), or that
  version is new and greater than every released one;
- the newest version's bump (from the release before it) is at least what its changes need
  (``contract_changes``: breaking → major, an addition → minor, documentation → patch);
- ``contracts/CHANGELOG.md`` has an entry for every released version and the current one.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import yaml

from harness import contract_node
from harness.contract_changes import Bump, required_bump, summarise
from harness.contract_files import CONTRACTS_DIR
from harness.contract_node import Change, Validation

DOCUMENT = "asyncapi.yaml"
VERSIONS = "versions"
CHANGELOG = "CHANGELOG.md"
_SNAPSHOT = re.compile(r"^asyncapi-(\d+\.\d+\.\d+)\.yaml$")
_ENTRY = re.compile(r"^## (\d+\.\d+\.\d+)\b.*$", re.MULTILINE)


class Version(NamedTuple):
    major: int
    minor: int
    patch: int

    @classmethod
    def parse(cls, text: str) -> Version:
        match = re.fullmatch(r"(\d+)\.(\d+)\.(\d+)", text)
        if match is None:
            raise ValueError(f"{text!r} is not a MAJOR.MINOR.PATCH version")
        major, minor, patch = (int(g) for g in match.groups())
        return cls(major, minor, patch)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def bumped(self, bump: Bump) -> Version:
        if bump is Bump.MAJOR:
            return Version(self.major + 1, 0, 0)
        if bump is Bump.MINOR:
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)


def bump_between(old: Version, new: Version) -> Bump | None:
    """Which part ``new`` increases over ``old``; None when it is not greater."""
    if new <= old:
        return None
    if new.major > old.major:
        return Bump.MAJOR
    return Bump.MINOR if new.minor > old.minor else Bump.PATCH


class ReleaseRefused(RuntimeError):
    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = problems


def document_version(path: Path) -> Version:
    return Version.parse(str(yaml.safe_load(path.read_text())["info"]["version"]))


def released(directory: Path = CONTRACTS_DIR) -> dict[Version, Path]:
    """Every snapshot, oldest first."""
    found = {}
    for path in (directory / VERSIONS).glob("asyncapi-*.yaml"):
        match = _SNAPSHOT.match(path.name)
        if match:
            found[Version.parse(match.group(1))] = path
    return dict(sorted(found.items()))


def changelog_entries(directory: Path = CONTRACTS_DIR) -> dict[Version, str]:
    """``## X.Y.Z ...`` headings of CHANGELOG.md → the text under each."""
    path = directory / CHANGELOG
    text = path.read_text() if path.exists() else ""
    heads = list(_ENTRY.finditer(text))
    ends = [h.start() for h in heads[1:]] + [len(text)]
    return {
        Version.parse(h.group(1)): text[h.end() : end].strip()
        for h, end in zip(heads, ends, strict=True)
    }


def _step_problem(old: Version, new: Version, changes: list[Change]) -> str | None:
    """What is wrong with releasing ``changes`` as ``new`` after ``old`` (None: nothing),
    followed by every change, most serious first."""
    needed = required_bump(changes)
    made = bump_between(old, new)
    if made is not None and made >= needed:
        return None
    details = [f"\n    {s}" for s in summarise(changes)]
    if made is None:  # new == old: the steps judged never go down
        # Any edit of a released document needs a new version, if only a patch.
        bump = max(needed, Bump.PATCH)
        head = (
            f"contracts/{DOCUMENT} differs from the released {old}, and released versions do "
            f"not change: set CONTRACT_VERSION to {old.bumped(bump)} (a {bump.name.lower()} "
            "bump), add a CHANGELOG entry, run `harness contracts release`"
        )
    else:
        head = (
            f"{old} -> {new} is a {made.name.lower()} bump, but the changes need a "
            f"{needed.name.lower()} one ({old.bumped(needed)})"
        )
    return head + "".join(details)


@dataclass(frozen=True)
class Assessment:
    version: Version  # the document's info.version
    pending: bool  # a new version, not yet released
    validation: Validation  # the official parser's verdict on the document
    problems: list[str]  # of the version rules


def _newest_step(
    directory: Path, version: Version, snapshots: dict[Version, Path]
) -> tuple[Version, Path, Version] | None:
    """The step the rules judge, as (old version, its file, new version); the new side is
    always the document. It is the latest release to the document when they differ (a change in
    progress), else the release before it to the latest (what the last release changed; the
    document is that release). Older steps were judged when they were released, and snapshots
    do not change, so the check costs two parses however long the history grows."""
    history = list(snapshots.items())
    if history and (directory / DOCUMENT).read_text() == history[-1][1].read_text():
        new = history.pop()[0]
    else:
        new = version
    return (*history[-1], new) if history else None


def assess(directory: Path = CONTRACTS_DIR) -> Assessment:
    """Every rule of the module docstring, except that a new version must be released."""
    current = directory / DOCUMENT
    version = document_version(current)
    snapshots = released(directory)
    problems = [
        f"{path.relative_to(directory)} says info.version {document_version(path)}"
        for v, path in snapshots.items()
        if document_version(path) != v
    ]
    latest = max(snapshots, default=None)
    step = _newest_step(directory, version, snapshots)
    if latest is not None and version < latest:
        problems.append(f"CONTRACT_VERSION {version} is older than the latest release {latest}")
        step = None
    comparison = contract_node.compare(*([step[1]] if step else []), current)
    if step and comparison.changes is None:
        refused = [
            d.file
            for d in comparison.documents
            if any(x.severity == "error" for x in d.diagnostics)
        ]
        problems.append(f"versions not compared: the AsyncAPI parser refuses {', '.join(refused)}")
    elif step and comparison.changes is not None:
        problem = _step_problem(step[0], step[2], list(comparison.changes[0]))
        if problem:
            problems.append(problem)
    entries = changelog_entries(directory)
    problems += [
        f"{CHANGELOG} has no entry (a `## {v}` heading with text under it) for {v}"
        for v in sorted({*snapshots, version})
        if not entries.get(v)
    ]
    return Assessment(version, version not in snapshots, comparison.documents[-1], problems)


def _failing(validation: Validation) -> list[str]:
    return [str(d) for d in validation.diagnostics if d.severity in ("error", "warning")]


def check(directory: Path = CONTRACTS_DIR) -> list[str]:
    """What stops the document from being valid AsyncAPI and a consistent, released version:
    the parser's errors and warnings (ASYNCAPI), then the version rules (VERSION)."""
    result = assess(directory)
    problems = [f"ASYNCAPI {d}" for d in _failing(result.validation)]
    problems += [f"VERSION {p}" for p in result.problems]
    if result.pending:
        problems.append(
            f"VERSION {result.version} is not released: run `harness contracts release` and "
            f"commit contracts/{VERSIONS}/"
        )
    return problems


def release(directory: Path = CONTRACTS_DIR) -> Path | None:
    """Write the snapshot of the current version; None when it is already released.

    Refused when a version rule fails, or when the parser reports an error or a warning: a
    snapshot is never fixed afterwards."""
    result = assess(directory)
    problems = _failing(result.validation) + result.problems
    if problems:
        raise ReleaseRefused(problems)
    if not result.pending:
        return None
    target = directory / VERSIONS / f"asyncapi-{result.version}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(directory / DOCUMENT, target)
    return target
