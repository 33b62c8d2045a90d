"""The contract's version rules: the committed files pass, and a breaking change is caught.

The rules themselves (which change needs which bump) are pure functions, tested here on
hand-made changes; the rest runs @asyncapi/diff on a temporary copy of contracts/.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent_service.contract.version import CONTRACT_VERSION
from harness import cli, contract_files, contract_versions
from harness.contract_changes import Bump, bump_for, required_bump, summarise
from harness.contract_node import Change
from harness.contract_versions import Version, bump_between

pytestmark = pytest.mark.contract

CONTRACTS = contract_files.CONTRACTS_DIR
PAYLOAD = "/channels/agentQueue/messages/AgentRequest/payload"
# The released version the tests below change, and the versions a change would take it to.
CURRENT = Version.parse(CONTRACT_VERSION)
PATCH, MINOR, MAJOR = (str(CURRENT.bumped(b)) for b in (Bump.PATCH, Bump.MINOR, Bump.MAJOR))


@pytest.mark.parametrize(
    ("action", "path", "tool_says", "bump"),
    [
        ("remove", "/channels/deadLetterWebhook", "breaking", Bump.MAJOR),
        ("add", "/channels/auditQueue", "non-breaking", Bump.MINOR),
        ("edit", "/channels/agentQueue/description", "non-breaking", Bump.PATCH),
        ("add", f"{PAYLOAD}/required/5", "unclassified", Bump.MAJOR),
        ("remove", f"{PAYLOAD}/required/2", "unclassified", Bump.MAJOR),
        ("add", f"{PAYLOAD}/properties/tenantId", "unclassified", Bump.MINOR),
        ("remove", f"{PAYLOAD}/properties/tenantId", "unclassified", Bump.MAJOR),
        # Property names are not keywords: a field called `description` is an addition.
        ("add", f"{PAYLOAD}/properties/contact/properties/description", "unclassified", Bump.MINOR),
        ("add", f"{PAYLOAD}/properties/contact/properties/name/description", "unclassified", 1),
        ("edit", f"{PAYLOAD}/properties/contact/properties/type/pattern", "unclassified", 3),
        ("add", f"{PAYLOAD}/properties/metadata/properties/priority/enum/3", "unclassified", 3),
        ("edit", f"{PAYLOAD}/properties/timestamp/anyOf/0/type", "unclassified", Bump.MAJOR),
        ("add", f"{PAYLOAD}/properties/message/examples/0", "unclassified", Bump.PATCH),
        ("edit", PAYLOAD, "breaking", Bump.MAJOR),
        ("edit", "/channels/agentQueue/bindings/amqp/x-arguments/x-message-ttl", "unclassified", 3),
        ("remove", "/operations/publishAgentReply/bindings/amqp/mandatory", "unclassified", 3),
        # A new topology profile is opt-in; changing or dropping one breaks its users.
        ("add", "/channels/agentQueue/bindings/amqp/x-arguments-quorum", "breaking", 2),
        ("add", "/operations/x/channel/bindings/amqp/x-arguments-quorum", "breaking", 2),
        ("edit", "/channels/agentQueue/bindings/amqp/x-arguments-quorum", "breaking", 3),
        ("remove", "/channels/agentQueue/bindings/amqp/x-arguments-quorum", "breaking", 3),
        ("add", "/channels/agentQueue/bindings/amqp/x-arguments-quorum/x-overflow", "breaking", 3),
        # An operation's dereferenced channel repeats the channel: the same verdicts.
        ("edit", "/operations/consumeAgentReply/channel/description", "breaking", Bump.PATCH),
        ("add", "/operations/consumeAgentReply/channel/messages/Parked", "breaking", Bump.MINOR),
        ("remove", "/operations/consumeAgentReply/channel/messages/AgentReply", "breaking", 3),
        ("edit", "/operations/consumeAgentReply/channel/bindings/amqp/is", "unclassified", 3),
        ("edit", "/info/version", "breaking", Bump.NONE),
        ("remove", "/components/schemas/Contact", "unclassified", Bump.NONE),
    ],
)
def test_each_change_needs_its_bump(action: str, path: str, tool_says: str, bump: int) -> None:
    assert bump_for(Change(action=action, path=path, type=tool_says)) == bump


def test_one_model_change_repeated_in_every_message_is_reported_once() -> None:
    places = [
        "/channels/agentQueue/messages/AgentRequest",
        "/channels/deadLetterAgent/messages/AgentRequest",
        "/operations/publishAgentRequest/messages/0",
        "/operations/publishAgentRequest/channel/messages/AgentRequest",
    ]
    changes = [Change("add", f"{p}/payload/required/5", "unclassified", None, "x") for p in places]
    changes.append(Change("add", "/channels/auditQueue", "non-breaking", None, {}))
    assert required_bump(changes) is Bump.MAJOR
    assert [str(s) for s in summarise(changes)] == [
        f"breaking: add {places[0]}/payload/required/5 (and 3 more places)",
        "addition: add /channels/auditQueue",
    ]


@pytest.mark.parametrize(
    ("old", "new", "bump"),
    [
        ("1.0.1", "2.0.0", Bump.MAJOR),
        ("1.0.1", "1.1.0", Bump.MINOR),
        ("1.0.1", "1.0.2", Bump.PATCH),
        ("1.9.0", "1.10.0", Bump.MINOR),  # compared as numbers, not text
        ("1.0.1", "1.0.1", None),
        ("1.1.0", "1.0.9", None),
    ],
)
def test_bump_between_versions(old: str, new: str, bump: Bump | None) -> None:
    assert bump_between(Version.parse(old), Version.parse(new)) == bump


def test_changelog_entries_need_text_under_the_heading(tmp_path: Path) -> None:
    (tmp_path / "CHANGELOG.md").write_text(
        "# Changelog\n\n## 2.0.0 (2027-01-05)\n\n- dlx_webhook is gone\n\n## 1.1.0\n\n## 1.0.1\nx\n"
    )
    entries = contract_versions.changelog_entries(tmp_path)
    assert entries == {
        Version(2, 0, 0): "- dlx_webhook is gone",
        Version(1, 1, 0): "",
        Version(1, 0, 1): "x",
    }


def test_committed_contract_is_the_released_current_version() -> None:
    document = contract_versions.document_version(CONTRACTS / "asyncapi.yaml")
    assert str(document) == CONTRACT_VERSION
    assert list(contract_versions.released())[-1] == document


def test_harness_contracts_check_passes_on_the_committed_files(
    node_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The whole check: up to date, the parser's verdict, the version rules.
    code = cli.main(["contracts", "check"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert out == "contracts are up to date, valid AsyncAPI, and released\n"


Edit = Callable[[dict[str, Any]], None]


@pytest.fixture
def contracts_copy(tmp_path: Path) -> Path:
    """The document, the snapshots and the changelog, to change without touching contracts/."""
    shutil.copy(CONTRACTS / "asyncapi.yaml", tmp_path)
    shutil.copy(CONTRACTS / "CHANGELOG.md", tmp_path)
    shutil.copytree(CONTRACTS / "versions", tmp_path / "versions")
    return tmp_path


def _change(directory: Path, version: str, edit: Edit, changelog: str | None = None) -> None:
    path = directory / "asyncapi.yaml"
    doc: dict[str, Any] = yaml.safe_load(path.read_text())
    edit(doc)
    doc["info"]["version"] = version
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    if changelog is not None:
        text = (directory / "CHANGELOG.md").read_text()
        head, first, rest = text.partition("\n## ")
        (directory / "CHANGELOG.md").write_text(
            f"{head}\n## {version}\n\n{changelog}\n{first}{rest}"
        )


def _remove_dead_letter_webhook(doc: dict[str, Any]) -> None:
    del doc["channels"]["deadLetterWebhook"]
    del doc["operations"]["monitorDeadLetterWebhook"]  # it would point at nothing


def _require_tenant_id(doc: dict[str, Any]) -> None:
    schema = doc["components"]["schemas"]["AgentRequest"]
    schema["properties"]["tenantId"] = {"type": "string", "title": "Tenantid"}
    schema["required"].append("tenantId")


def test_a_removed_channel_under_the_released_version_is_reported_as_breaking(
    node_project: Path, contracts_copy: Path
) -> None:
    _change(contracts_copy, str(CURRENT), _remove_dead_letter_webhook)
    [problem] = contract_versions.check(contracts_copy)
    assert f"differs from the released {CURRENT}" in problem
    assert f"set CONTRACT_VERSION to {MAJOR} (a major bump)" in problem
    assert "breaking: remove /channels/deadLetterWebhook" in problem


def test_a_new_required_field_fails_with_a_minor_bump_and_releases_as_major(
    node_project: Path, contracts_copy: Path
) -> None:
    _change(contracts_copy, MINOR, _require_tenant_id)
    bump, changelog, unreleased = contract_versions.check(contracts_copy)
    assert bump.startswith(
        f"VERSION {CURRENT} -> {MINOR} is a minor bump, but the changes need a major one ({MAJOR})"
    ), bump
    assert f"breaking: add {PAYLOAD}/required/5 (and " in bump
    assert f"addition: add {PAYLOAD}/properties/tenantId (and " in bump
    assert (
        changelog
        == f"VERSION CHANGELOG.md has no entry (a `## {MINOR}` heading with text under it) for"
        f" {MINOR}"
    )
    assert unreleased.startswith(f"VERSION {MINOR} is not released: run `harness contracts")

    _change(contracts_copy, MAJOR, lambda doc: None, changelog="- tenantId is required")
    written = contract_versions.release(contracts_copy)
    assert written == contracts_copy / "versions" / f"asyncapi-{MAJOR}.yaml"
    assert written.read_text() == (contracts_copy / "asyncapi.yaml").read_text()
    assert contract_versions.check(contracts_copy) == []


def test_release_refuses_a_bump_too_small_and_writes_nothing(
    node_project: Path, contracts_copy: Path
) -> None:
    _change(contracts_copy, PATCH, _remove_dead_letter_webhook, changelog="- dlx_webhook")
    before = sorted(p.name for p in (contracts_copy / "versions").iterdir())
    with pytest.raises(contract_versions.ReleaseRefused, match=r"a patch bump, but .* major"):
        contract_versions.release(contracts_copy)
    assert sorted(p.name for p in (contracts_copy / "versions").iterdir()) == before
