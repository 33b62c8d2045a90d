"""The committed pact files: well formed, consistent with the models, and the staleness check.

The tests that write the pacts compare them with contracts/pacts/ themselves
(test_pact_ag_queue_consumer.py, and the Node consumer test run by test_pact_node.py); these
tests check the committed files and the comparison itself.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent_service.contract.codec import decode_reply, decode_request
from agent_service.contract.messages import Priority, ReplyStatus, TaskType
from harness import pacts

pytestmark = pytest.mark.contract

NODE_DIR = pacts.PACTS_DIR.parent / "node"


def load(name: str) -> dict[str, Any]:
    path = pacts.PACTS_DIR / name
    assert path.exists(), f"{path} is missing: {pacts.REGENERATE}"
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def bodies(pact: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    for interaction in pact["interactions"]:
        yield interaction["description"], interaction["contents"]["content"]


@pytest.mark.parametrize(
    ("name", "consumer", "provider"),
    [
        (pacts.AG_QUEUE_PACT, pacts.AGENT_SERVICE, pacts.NODE_SERVICE),
        (pacts.WB_QUEUE_PACT, pacts.NODE_SERVICE, pacts.AGENT_SERVICE),
    ],
)
def test_pact_is_a_v4_message_pact_between_the_two_services(
    name: str, consumer: str, provider: str
) -> None:
    pact = load(name)
    assert pact["consumer"]["name"] == consumer
    assert pact["provider"]["name"] == provider
    assert pact["metadata"]["pactSpecification"]["version"].startswith("4.")
    assert pact["interactions"], "a pact without interactions verifies nothing"
    for interaction in pact["interactions"]:
        assert interaction["type"] == "Asynchronous/Messages"
        assert interaction["metadata"]["contentType"] == "application/json"
        assert interaction["matchingRules"]["body"], f"{interaction['description']}: no matchers"


def test_every_ag_queue_example_is_a_valid_request() -> None:
    pact = load(pacts.AG_QUEUE_PACT)
    requests = [decode_request(json.dumps(body).encode()) for _, body in bodies(pact)]
    assert {r.taskType for r in requests} == set(TaskType)
    assert {r.metadata.priority for r in requests} == set(Priority)
    assert any(r.metadata.retryCount > 0 for r in requests)


def test_every_node_expectation_is_a_reply_the_models_allow() -> None:
    # The Node team's examples must be replies our service may send at all; otherwise the
    # provider verification could never pass.
    pact = load(pacts.WB_QUEUE_PACT)
    replies = {d: decode_reply(json.dumps(body).encode()) for d, body in bodies(pact)}
    assert {r.status for r in replies.values()} == set(ReplyStatus)
    for interaction in pact["interactions"]:
        assert "correlationId" in interaction["metadata"], interaction["description"]


def _values_at(document: Any, path: str) -> list[Any]:
    """The values at a pact body path such as ``$.context.conversationHistory[*].role``."""
    found = [document]
    for part in re.findall(r"\.([^.\[]+)|\[(\*|\d+)\]", path.removeprefix("$")):
        key, index = part
        step: list[Any] = []
        for value in found:
            if key and isinstance(value, dict) and key in value:
                step.append(value[key])
            elif index == "*" and isinstance(value, list):
                step.extend(value)
            elif index.isdigit() and isinstance(value, list) and int(index) < len(value):
                step.append(value[int(index)])
        found = step
    return found


@pytest.mark.parametrize("name", [pacts.AG_QUEUE_PACT, pacts.WB_QUEUE_PACT])
def test_every_regex_matches_its_whole_example(name: str) -> None:
    # Pact regexes must match the whole value: an example outside its own regex is a typo
    # that one side or the other would trip over.
    for interaction in load(name)["interactions"]:
        rules = interaction["matchingRules"]
        content = interaction["contents"]["content"]
        checks = [(path, rule, content) for path, rule in rules["body"].items()]
        checks += [
            (f"$.{key}", rule, interaction["metadata"])
            for key, rule in rules.get("metadata", {}).items()
        ]
        for path, rule, document in checks:
            for matcher in rule["matchers"]:
                if matcher["match"] != "regex":
                    continue
                values = _values_at(document, path)
                assert values, f"{interaction['description']}: nothing at {path}"
                for value in values:
                    assert re.fullmatch(matcher["regex"], str(value)), (path, value)


def test_drift_is_reported_with_a_diff_and_the_fix(tmp_path: Path) -> None:
    committed = tmp_path / "committed"
    committed.mkdir()
    written = tmp_path / pacts.AG_QUEUE_PACT
    shutil.copyfile(pacts.PACTS_DIR / pacts.AG_QUEUE_PACT, written)
    shutil.copyfile(written, committed / written.name)
    assert pacts.pact_drift(written, committed / written.name) is None

    pact = json.loads(written.read_text())
    pact["interactions"][0]["contents"]["content"]["taskType"] = "poetry"
    written.write_text(json.dumps(pact))
    drift = pacts.pact_drift(written, committed / written.name)
    assert drift is not None
    assert "is stale: run `PACT_UPDATE=1" in drift
    assert re.search(r'^\+ +"taskType": "poetry"', drift, re.MULTILINE), drift

    assert "is missing" in (pacts.pact_drift(written, tmp_path / "absent.json") or "")


def test_writer_versions_are_not_drift(tmp_path: Path) -> None:
    pact = load(pacts.WB_QUEUE_PACT)
    newer = {**pact, "metadata": {**pact["metadata"], "pactRust": {"ffi": "9.9.9"}}}
    newer["metadata"]["pact-js"] = {"version": "99.0.0"}
    (tmp_path / "a.json").write_text(json.dumps(pact))
    (tmp_path / "b.json").write_text(json.dumps(newer))
    assert pacts.pact_drift(tmp_path / "b.json", tmp_path / "a.json") is None
    newer["metadata"]["pactSpecification"] = {"version": "3.0.0"}
    (tmp_path / "b.json").write_text(json.dumps(newer))
    assert pacts.pact_drift(tmp_path / "b.json", tmp_path / "a.json") is not None


def test_pact_update_replaces_the_committed_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = tmp_path / "x.json"
    written.write_text('{"interactions": [], "metadata": {}}')
    target = tmp_path / "pacts"
    monkeypatch.setenv(pacts.UPDATE_ENV, "1")
    assert pacts.settle(written, target) is None
    assert (target / "x.json").read_text() == written.read_text()
    monkeypatch.setenv(pacts.UPDATE_ENV, "0")
    (target / "x.json").write_text('{"interactions": [1], "metadata": {}}')
    assert pacts.settle(written, target) is not None


def test_node_project_pins_its_versions_and_commits_the_lock_file() -> None:
    package = json.loads((NODE_DIR / "package.json").read_text())
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    for deps in ("dependencies", "devDependencies"):
        for name, version in package.get(deps, {}).items():
            assert re.fullmatch(r"\d+\.\d+\.\d+", version), f"{name} {version} is not pinned"
            assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert lock["packages"][""].get("devDependencies") == package.get("devDependencies")


def test_node_modules_is_not_committed() -> None:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    result = subprocess.run(
        # A path inside it: `node_modules/` only matches a directory, and before `npm ci`
        # there is none to look at.
        ["git", "check-ignore", "-q", str(NODE_DIR / "node_modules" / "any-package")],
        cwd=NODE_DIR,
        check=False,
    )
    assert result.returncode == 0, "contracts/node/node_modules must be ignored by git"
