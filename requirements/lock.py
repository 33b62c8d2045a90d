"""Refresh the lock files in this folder from pyproject.toml (`make lock`).

Three locks, each of exact versions with the sha256 of every file pip may download:

- ``build.txt``: pip and the build backend (``[build-system] requires``), installed first so
  that installing this package itself (``--no-build-isolation``) fetches nothing unpinned;
- ``test.txt``: the service's dependencies and the ``test`` extra, for ``make`` and CI;
- ``service.txt``: the service's dependencies alone, for the Docker runtime image. It is
  compiled under ``test.txt`` as a constraint, so a package in both has the same version.

They are resolved for CPython 3.11 on Linux x86_64 (the Docker image and the machines), by uv
from PyPI; pip.conf does not apply, so a machine's local mirror cannot leak into a lock. An
existing lock is uv's preference: a refresh keeps every pin that still fits and adds only what
a change needs. ``make lock LOCK_ARGS='--upgrade-package NAME'`` moves one package to its
newest version, ``LOCK_ARGS=--upgrade`` all of them.

Each lock records a digest of the pyproject.toml lists it was made from; a test compares it
with pyproject.toml as it is, so a dependency added without ``make lock`` fails the tests
without asking the network.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYPROJECT = ROOT / "pyproject.toml"
BUILD, TEST, SERVICE = HERE / "build.txt", HERE / "test.txt", HERE / "service.txt"
LOCKS = (BUILD, TEST, SERVICE)
TARGET = ("--python-version", "3.11", "--python-platform", "x86_64-manylinux_2_28")
DIGEST_PREFIX = "# pyproject.toml inputs sha256: "
# The installer is locked with the build backend: the Makefile upgraded it unpinned before.
INSTALLER = "pip"


def lock_inputs(pyproject: dict[str, Any]) -> dict[str, list[str]]:
    """The lists of pyproject.toml that the locks are made from, each sorted and with its
    whitespace removed, so that reordering or reformatting them is not a change."""
    project = pyproject["project"]

    def norm(items: Sequence[str]) -> list[str]:
        return sorted("".join(item.split()).lower() for item in items)

    return {
        "build-system.requires": norm([*pyproject["build-system"]["requires"], INSTALLER]),
        "project.requires-python": norm([project.get("requires-python", "")]),
        "project.dependencies": norm(project.get("dependencies", [])),
        "project.optional-dependencies.test": norm(project["optional-dependencies"]["test"]),
        "target": list(TARGET),
    }


def inputs_digest(pyproject: dict[str, Any]) -> str:
    text = json.dumps(lock_inputs(pyproject), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def recorded_digest(lock_text: str) -> str | None:
    """The digest a lock was made with, or None when it has no such line (not `make lock`'s)."""
    for line in lock_text.splitlines():
        if line.startswith(DIGEST_PREFIX):
            return line.removeprefix(DIGEST_PREFIX).split()[0]
    return None


def compile_lock(output: Path, sources: Sequence[str], extra: Sequence[str], stdin: str) -> None:
    command = [
        *(sys.executable, "-m", "uv", "pip", "compile", "--quiet"),
        *sources,
        *("--generate-hashes", *TARGET, "--custom-compile-command", "make lock"),
        # One line of "# via" per package: service.txt names its constraint file on each.
        *("--annotation-style", "line"),
        *("--output-file", str(output.relative_to(ROOT))),
        *extra,
    ]
    subprocess.run(command, cwd=ROOT, input=stdin, text=True, check=True)


def record_digest(output: Path, digest: str) -> None:
    """Put the digest line under uv's header, where a reader of the lock sees it."""
    lines = [line for line in output.read_text().splitlines() if not line.startswith(DIGEST_PREFIX)]
    header_end = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    lines.insert(header_end, f"{DIGEST_PREFIX}{digest} (see requirements/lock.py)")
    output.write_text("\n".join(lines) + "\n")


def main(argv: Sequence[str]) -> int:
    """argv: extra uv options for every lock, e.g. ``--upgrade-package aiohttp``."""
    pyproject = tomllib.loads(PYPROJECT.read_text())
    build_requirements = "\n".join(lock_inputs(pyproject)["build-system.requires"]) + "\n"
    compile_lock(BUILD, ["-"], argv, stdin=build_requirements)
    compile_lock(TEST, ["pyproject.toml", "--extra", "test"], argv, stdin="")
    constrained = ["pyproject.toml", "--constraint", str(TEST.relative_to(ROOT))]
    compile_lock(SERVICE, constrained, argv, stdin="")
    digest = inputs_digest(pyproject)
    for lock in LOCKS:
        record_digest(lock, digest)
    print(f"refreshed {', '.join(str(lock.relative_to(ROOT)) for lock in LOCKS)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
