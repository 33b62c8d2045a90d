"""The supply chain (docs/supply-chain.md): the locks in requirements/ are the ones pyproject.toml
asks for and are what make and the Dockerfile install; no secret is in the repository.

Nothing here needs the network: the locks are checked against a digest they record, and the
secrets scan is detect-secrets' pre-commit hook run over the files on disk.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.secret_plugins import PassVariableDetector

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
PYPROJECT = REPO / "pyproject.toml"
BASELINE = REPO / ".secrets.baseline"
HOOK = (sys.executable, "-m", "detect_secrets.pre_commit_hook")  # detect-secrets-hook
# Written in pieces so that this file does not hold it either.
SPEC_SAMPLE_PASSWORD = "_".join(("wasp", "rabbit", "2024"))


def _load_lock_module() -> ModuleType:
    """requirements/lock.py is a script, not a package: load it by path."""
    spec = importlib.util.spec_from_file_location("lock", REPO / "requirements" / "lock.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


lock = _load_lock_module()


def pyproject() -> dict[str, Any]:
    return tomllib.loads(PYPROJECT.read_text())


def pins(path: Path) -> dict[str, tuple[str, list[str]]]:
    """{canonical name: (version, sha256 hashes)}; ValueError on a line that is neither."""
    found: dict[str, tuple[str, list[str]]] = {}
    for entry in path.read_text().replace("\\\n", " ").splitlines():
        words = entry.split("#", 1)[0].split()
        if not words:
            continue
        name, pinned, version = words[0].partition("==")
        hashes = [word.removeprefix("--hash=sha256:") for word in words[1:]]
        if not pinned or not hashes or not all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes):
            raise ValueError(f"{path.name}: not a pin with hashes: {entry.strip()!r}")
        found[canonicalize_name(name)] = (version, hashes)
    return found


# -- the locks ------------------------------------------------------------------------------


def test_each_lock_was_made_from_pyproject_as_it_is() -> None:
    digest = lock.inputs_digest(pyproject())
    stale = [
        str(path.relative_to(REPO))
        for path in lock.LOCKS
        if lock.recorded_digest(path.read_text()) != digest
    ]
    assert not stale, (
        f"{', '.join(stale)}: made from other dependency lists than pyproject.toml has now; "
        "run `make lock` and commit requirements/ with pyproject.toml"
    )


def test_the_digest_follows_the_lists_not_their_layout() -> None:
    base = pyproject()
    digest = lock.inputs_digest(base)
    relaid = copy.deepcopy(base)
    spaced = [r.replace(",", ", ").replace(">=", " >= ") for r in base["project"]["dependencies"]]
    relaid["project"]["dependencies"] = spaced[::-1]
    assert lock.inputs_digest(relaid) == digest
    for section in ("dependencies", "test extra", "build-system"):
        changed = copy.deepcopy(base)
        target = {
            "dependencies": changed["project"]["dependencies"],
            "test extra": changed["project"]["optional-dependencies"]["test"],
            "build-system": changed["build-system"]["requires"],
        }[section]
        target.append("psycopg[binary]>=3.2")
        assert lock.inputs_digest(changed) != digest, section


def test_the_locks_hold_only_pins_with_hashes() -> None:
    """No index URL (which could carry a token), no editable or URL requirement: this is why the
    secrets scan can leave the locks out."""
    for path in lock.LOCKS:
        assert pins(path), path.name


@pytest.mark.parametrize(
    ("path", "sections"),
    [
        (lock.BUILD, ["build-system"]),
        (lock.SERVICE, ["dependencies"]),
        (lock.TEST, ["dependencies", "test"]),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else "+".join(value),
)
def test_every_direct_requirement_is_pinned_at_a_version_it_allows(
    path: Path, sections: list[str]
) -> None:
    data = pyproject()
    lists = {
        "build-system": [*data["build-system"]["requires"], lock.INSTALLER],
        "dependencies": data["project"]["dependencies"],
        "test": data["project"]["optional-dependencies"]["test"],
    }
    pinned = pins(path)
    wrong = []
    for text in (item for section in sections for item in lists[section]):
        requirement = Requirement(text)
        if requirement.marker is not None and not requirement.marker.evaluate():
            continue
        version = pinned.get(canonicalize_name(requirement.name), ("missing", []))[0]
        if not requirement.specifier.contains(version, prereleases=True):
            wrong.append(f"{text} (locked: {version})")
    assert not wrong, f"{path.name} does not satisfy {wrong}: run `make lock`"


def test_the_service_lock_pins_what_the_test_lock_pins() -> None:
    test = {name: version for name, (version, _) in pins(lock.TEST).items()}
    differ = {
        name: (version, test.get(name))
        for name, (version, _) in pins(lock.SERVICE).items()
        if test.get(name) != version
    }
    assert not differ, f"service.txt and test.txt disagree (service, test): {differ}"


def test_make_and_the_dockerfile_install_only_from_the_locks() -> None:
    for name in ("Makefile", "Dockerfile"):
        for number, line in enumerate((REPO / name).read_text().splitlines(), start=1):
            if "pip install" in line:
                assert "--require-hashes" in line or "--no-deps" in line, f"{name}:{number}"
    makefile = (REPO / "Makefile").read_text()
    venv_rule = re.search(r"^\$\(STAMP\):(.*)$", makefile, re.M)
    assert venv_rule and {"requirements/build.txt", "requirements/test.txt"} <= set(
        venv_rule.group(1).split()
    ), "the venv must be rebuilt when a lock changes"
    dockerfile = (REPO / "Dockerfile").read_text()
    for used in ("build.txt", "service.txt", "test.txt"):
        assert f"-r requirements/{used}" in dockerfile


# -- secrets --------------------------------------------------------------------------------


def repo_files() -> list[str]:
    """What git tracks or would add (not what .gitignore leaves out): a new file is scanned
    before it is committed."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted({name for name in listed.split("\0") if name and (REPO / name).is_file()})


def new_secrets(files: Sequence[str], tmp_path: Path) -> list[str]:
    """``file:line type`` of each secret in ``files`` that .secrets.baseline does not hold.

    The hook matches by file, secret and type, not by line, so edits that move a known test
    value do not fail; it rewrites the baseline it is given to update line numbers, so it gets
    a copy. Two halves in parallel: the scan costs about 0.4 ms a line on one core."""

    def run(part: int) -> list[str]:
        baseline = tmp_path / f"baseline-{part}.json"
        shutil.copy(BASELINE, baseline)
        done = subprocess.run(
            [*HOOK, "--json", "--baseline", str(baseline), *files[part::2]],
            cwd=REPO,  # the baseline names tests/secret_plugins.py relative to the repository
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode in (0, 3):  # 3: nothing new, line numbers updated in the copy
            return []
        assert done.returncode == 1, done.stdout + done.stderr
        results: dict[str, list[dict[str, Any]]] = json.loads(done.stdout)["results"]
        return [
            f"{file}:{r['line_number']} {r['type']}" for file, rs in results.items() for r in rs
        ]

    with ThreadPoolExecutor(max_workers=2) as pool:
        return sorted(found for part in pool.map(run, range(2)) for found in part)


def test_no_secret_is_in_the_repository_beyond_the_audited_baseline(tmp_path: Path) -> None:
    found = new_secrets(repo_files(), tmp_path)
    assert not found, (
        "possible secrets not in .secrets.baseline:\n  " + "\n  ".join(found) + "\nA real one: "
        "take it out and rotate it. A false positive: docs/supply-chain.md, 'Secrets scan'."
    )


def test_the_scan_reports_a_new_secret_by_file_and_line(tmp_path: Path) -> None:
    leak = tmp_path / "deploy.env"
    leak.write_text(
        "# written by the test\n"
        f"RABBITMQ_PASS={SPEC_SAMPLE_PASSWORD}\n"
        f"RABBITMQ_URL=amqp://agent:{SPEC_SAMPLE_PASSWORD}@rabbit.internal:5672/\n"
        f"AWS_ACCESS_KEY_ID={'AKIA' + 'Q3EGRSXM4TZ7JWBN'}\n"
        "RABBITMQ_USER=agent\n"
    )
    found = new_secrets([str(leak)], tmp_path)
    assert found == [
        f"{leak}:2 Value of a *_PASS variable",
        f"{leak}:3 Basic Auth Credentials",
        f"{leak}:4 AWS Access Key",
    ]


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        (f"RABBITMQ_PASS={SPEC_SAMPLE_PASSWORD}", SPEC_SAMPLE_PASSWORD),
        (f"      RABBITMQ_PASS: {SPEC_SAMPLE_PASSWORD}  # compose", SPEC_SAMPLE_PASSWORD),
        (f"export RABBITMQ_PASS='{SPEC_SAMPLE_PASSWORD}'", SPEC_SAMPLE_PASSWORD),
        ('rabbitmq_pass = "hunter2x"', "hunter2x"),
        ('{"SMTP_PASS": "hunter2x"}', "hunter2x"),
        ('rabbitmq_pass: SecretStr = Field(SecretStr("guest"), validation_alias="X")', None),
        ("connect(rabbitmq_pass=settings.rabbitmq_pass)", None),
        ("bypass = compute(x)", None),
        ("--rabbitmq-pass value", None),
    ],
)
def test_the_pass_variable_plugin(line: str, secret: str | None) -> None:
    """The built-in plugins miss the spec's variable (tests/secret_plugins.py); code that only
    passes a value on is not a finding."""
    assert list(PassVariableDetector().analyze_string(line)) == ([secret] if secret else [])


def test_every_baseline_entry_was_audited_as_a_false_positive() -> None:
    results: dict[str, list[dict[str, Any]]] = json.loads(BASELINE.read_text())["results"]
    unaudited = [
        f"{file}:{r['line_number']} {r['type']}"
        for file, rs in results.items()
        for r in rs
        if r.get("is_secret") is not False
    ]
    assert not unaudited, (
        "audit these with `.venv/bin/detect-secrets audit .secrets.baseline`; a real secret "
        f"is removed and rotated, never kept in the baseline: {unaudited}"
    )


def test_the_spec_sample_password_is_in_no_file() -> None:
    needle = SPEC_SAMPLE_PASSWORD.encode()
    found = [
        f"{name}:{number}"
        for name in repo_files()
        for number, line in enumerate((REPO / name).read_bytes().splitlines(), start=1)
        if needle in line
    ]
    assert not found, f"the spec's sample RabbitMQ password is in {found}"
