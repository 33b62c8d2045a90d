"""The generated contract files are up to date, and the examples validate against them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from agent_service.contract.messages import FALLBACK_TEXT
from harness import contract_files
from tests.conftest import EXAMPLES, REPO, SHARED_DATA

pytestmark = pytest.mark.contract

SCHEMAS = REPO / "contracts" / "schemas"


def test_committed_contract_files_are_up_to_date() -> None:
    assert contract_files.stale() == [], "run `harness contracts generate` and commit"


def test_stale_file_is_detected(tmp_path: Path) -> None:
    contract_files.generate(tmp_path)
    assert contract_files.stale(tmp_path) == []
    (tmp_path / "asyncapi.yaml").write_text("asyncapi: 3.0.0\n")
    (tmp_path / "schemas" / "wb_queue.reply.schema.json").unlink()
    assert contract_files.stale(tmp_path) == ["schemas/wb_queue.reply.schema.json", "asyncapi.yaml"]


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = json.loads((SCHEMAS / name).read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


@pytest.mark.parametrize(
    ("schema", "example"),
    [
        ("ag_queue.request.schema.json", "ag_queue.request.json"),
        ("wb_queue.reply.schema.json", "wb_queue.reply.json"),
    ],
)
def test_examples_validate_against_the_json_schema(schema: str, example: str) -> None:
    _validator(schema).validate(json.loads((EXAMPLES / example).read_text()))


@pytest.mark.parametrize(
    ("schema", "template"),
    [
        ("ag_queue.request.schema.json", "ag_queue.template.json"),
        ("wb_queue.reply.schema.json", "wb_queue.template.json"),
    ],
)
def test_spec_templates_with_placeholders_are_rejected(schema: str, template: str) -> None:
    path = SHARED_DATA / "spec-examples" / template
    errors = list(_validator(schema).iter_errors(json.loads(path.read_text())))
    assert errors, "the spec's a|b placeholders must not validate"


def test_asyncapi_documents_both_queues_and_dead_letters() -> None:
    doc: dict[str, Any] = yaml.safe_load((REPO / "contracts" / "asyncapi.yaml").read_text())
    assert doc["asyncapi"] == "3.0.0"
    addresses = {c["address"]: c for c in doc["channels"].values()}
    defs = json.loads((REPO / "contracts" / "rabbitmq-definitions.json").read_text())
    # One channel per queue of the definitions file: the wait and parking queues too.
    assert set(addresses) == {q["name"] for q in defs["queues"]}
    assert {"wb_queue.retry.1", "wb_queue.parking", "ag_queue.retry.3"} <= set(addresses)
    parked = doc["components"]["messages"]["ParkedMessage"]["headers"]["properties"]
    assert set(parked) == {"x-park-reason", "x-park-kind", "x-retry-count"}
    assert FALLBACK_TEXT in addresses["dlx_agent"]["description"]
    ag_args = addresses["ag_queue"]["bindings"]["amqp"]["x-arguments"]
    assert ag_args == {"x-message-ttl": 300000, "x-dead-letter-exchange": "dlx_agent"}
    # Every $ref points at something that exists.
    text = json.dumps(doc)
    for ref in {r.split('"')[0] for r in text.split('"$ref": "#/')[1:]}:
        node: Any = doc
        for part in ref.split("/"):
            node = node[part]


def test_definitions_file_loads_the_production_topology() -> None:
    defs = json.loads((REPO / "contracts" / "rabbitmq-definitions.json").read_text())
    queues = {q["name"]: q for q in defs["queues"]}
    assert queues["ag_queue"]["arguments"]["x-message-ttl"] == 300000
    assert queues["wb_queue"]["arguments"]["x-dead-letter-exchange"] == "dlx_webhook"
    assert "users" not in defs and "permissions" not in defs
    assert {(b["source"], b["destination"]) for b in defs["bindings"]} == {
        ("dlx_agent", "dlx_agent"),
        ("dlx_webhook", "dlx_webhook"),
    }


def test_examples_name_only_tools_the_agent_has() -> None:
    from agent_service.agent.tools import BusinessTools

    reply = json.loads((EXAMPLES / "wb_queue.reply.json").read_text())
    used = reply["agentMetadata"]["toolsUsed"]
    tools = BusinessTools(database=None).by_name()  # type: ignore[arg-type]  # names only
    assert used and set(used) <= set(tools), f"{used} not all in {sorted(tools)}"
    assert all(
        step.removeprefix("called ") in tools
        for step in reply["agentMetadata"]["reasoningSteps"][:-1]
    )


def test_example_timestamps_are_what_node_sends() -> None:
    request = json.loads((EXAMPLES / "ag_queue.request.json").read_text())
    # Date.now() milliseconds at the top; WhatsApp's messageTimestamp (seconds) in message.
    assert request["timestamp"] > 10**12 and request["message"]["timestamp"] < 10**11
