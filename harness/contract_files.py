"""The generated files of ``contracts/``: JSON Schema, AsyncAPI 3.0, RabbitMQ definitions.

``generate`` writes them from the models and the topology; ``stale`` lists the committed
files that no longer match (a test runs it, so a contract change cannot go unnoticed).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from agent_service.contract.messages import AgentReply, AgentRequest
from agent_service.contract.topology import Topology
from agent_service.contract.version import CONTRACT_VERSION
from harness import contract_examples
from harness import contract_protocol as protocol
from harness.topology_check import definitions

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
SCHEMA_BASE = "https://contracts.example.invalid/wa-agent-queue"


def json_schema(model: type[BaseModel], name: str) -> dict[str, Any]:
    schema = model.model_json_schema(mode="validation")
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_BASE}/{name}.schema.json",
        **schema,
    }


def _components(model: type[BaseModel]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The model's schema with $defs lifted into AsyncAPI components."""
    schema = copy.deepcopy(model.model_json_schema(mode="validation"))
    defs = schema.pop("$defs", {})
    text = json.dumps([schema, defs]).replace('"#/$defs/', '"#/components/schemas/')
    schema, defs = json.loads(text)
    return schema, defs


def _queue_binding(topology: Topology, name: str) -> dict[str, Any]:
    spec = topology.queue(name)
    quorum = replace(topology, profile="quorum").queue(name)
    return {
        "amqp": {
            "is": "queue",
            "queue": {
                "name": spec.name,
                "durable": spec.durable,
                "exclusive": False,
                "autoDelete": spec.auto_delete,
                "vhost": "/",
            },
            "x-arguments": spec.arguments,
            # TOPOLOGY_PROFILE=quorum (contracts/README.md): the same queue, replicated.
            "x-arguments-quorum": quorum.arguments,
            "bindingVersion": "0.3.0",
        }
    }


def asyncapi(topology: Topology) -> dict[str, Any]:
    request, request_defs = _components(AgentRequest)
    reply, reply_defs = _components(AgentReply)
    schemas = {**request_defs, **reply_defs, "AgentRequest": request, "AgentReply": reply}
    t = topology

    def channel(name: str, description: str, messages: list[str]) -> dict[str, Any]:
        return {
            "address": name,
            "description": description,
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
            "bindings": _queue_binding(t, name),
        }

    document: dict[str, Any] = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "WhatsApp AI agent queues",
            "version": CONTRACT_VERSION,
            "description": (
                "The Node webhook service publishes AI requests to ag_queue; the Python agent "
                "service consumes them and publishes replies to wb_queue. Failed or expired "
                "messages are dead-lettered to dlx_agent and dlx_webhook. Generated from "
                "agent_service.contract by `harness contracts generate`: do not edit by hand. "
                "Retries wait in ag_queue.retry.N (agent side) and wb_queue.retry.N (Node "
                "side); the Node side parks what it cannot send in wb_queue.parking. "
                + protocol.fallback_sentence()
            ),
        },
        "defaultContentType": "application/json",
        "channels": {
            "agentQueue": channel(t.agent_queue, "AI requests (TTL 5 min)", ["AgentRequest"]),
            "webhookQueue": channel(t.webhook_queue, "Agent replies (TTL 1 min)", ["AgentReply"]),
            "deadLetterAgent": channel(
                t.dlx_agent,
                protocol.dead_letter_agent_description(t),
                ["AgentRequest", "DeadLetteredAgentRequest"],
            ),
            "deadLetterWebhook": channel(
                t.dlx_webhook, protocol.dead_letter_webhook_description(t), ["AgentReply"]
            ),
        },
        "operations": {
            # Node publishes without `mandatory` (sendToQueue on a confirm channel); the agent
            # service publishes replies with it (agent_service/queue/publisher.py).
            "publishAgentRequest": _op(
                "send", "agentQueue", "AgentRequest", "Node service", _send_binding()
            ),
            "consumeAgentRequest": _op(
                "receive", "agentQueue", "AgentRequest", "agent service", _RECEIVE_BINDING
            ),
            "publishAgentReply": _op(
                "send", "webhookQueue", "AgentReply", "agent service", _send_binding(mandatory=True)
            ),
            "consumeAgentReply": _op(
                "receive", "webhookQueue", "AgentReply", "Node service", _RECEIVE_BINDING
            ),
            "monitorDeadLetterAgent": _op(
                "receive",
                "deadLetterAgent",
                "AgentRequest",
                "Node service (fallback text)",
                _RECEIVE_BINDING,
            ),
        },
        "components": {
            "messages": {
                "AgentRequest": _message("AgentRequest", "taskType", "message_id = messageId"),
                "AgentReply": _message(
                    "AgentReply",
                    "status",
                    "message_id = messageId, correlation_id = originalMessageId",
                ),
            },
            "schemas": schemas,
        },
    }
    # The rest of the protocol: every wait queue, the parking queue, their headers.
    document["channels"].update(protocol.channels(t, _queue_binding))
    document["operations"].update(protocol.operations(_op, _RECEIVE_BINDING, _send_binding))
    document["components"]["messages"].update(protocol.messages())
    return document


# AMQP bindings 0.3.0 put the publish properties (deliveryMode, timestamp, mandatory, ...) on the
# *operation*; a *message* binding has only contentEncoding and messageType. Version 1.0.0 had
# deliveryMode on the messages and the official parser refused the document (4 errors).
def _send_binding(*, mandatory: bool = False) -> dict[str, Any]:
    amqp: dict[str, Any] = {"deliveryMode": 2, "timestamp": True}
    if mandatory:
        amqp["mandatory"] = True
    return {"amqp": {**amqp, "bindingVersion": "0.3.0"}}


# Both consumers ack by hand, after the message is handled (a crash redelivers it).
_RECEIVE_BINDING: dict[str, Any] = {"amqp": {"ack": True, "bindingVersion": "0.3.0"}}


def _op(
    action: str, channel: str, message: str, actor: str, bindings: dict[str, Any]
) -> dict[str, Any]:
    return {
        "action": action,
        "summary": f"{actor} {action}s {message}",
        "channel": {"$ref": f"#/channels/{channel}"},
        "messages": [{"$ref": f"#/channels/{channel}/messages/{message}"}],
        "bindings": copy.deepcopy(bindings),
    }


def _message(name: str, type_field: str, ids: str) -> dict[str, Any]:
    return {
        "name": name,
        "contentType": "application/json",
        "payload": {"$ref": f"#/components/schemas/{name}"},
        "description": (
            f"AMQP properties: content_type application/json, delivery_mode 2 (persistent), "
            f"{ids}, timestamp, type = {type_field}."
        ),
    }


def _json(data: Any) -> str:
    return json.dumps(data, indent=2, ensure_ascii=False) + "\n"


def _yaml(data: Any) -> str:
    return "# Generated by `harness contracts generate`: do not edit by hand.\n" + yaml.safe_dump(
        data, sort_keys=False, allow_unicode=True, width=100
    )


def rendered(topology: Topology | None = None) -> dict[str, str]:
    """Relative path under contracts/ → the file's expected text."""
    t = topology or Topology()
    files: dict[str, Callable[[], str]] = {
        "schemas/ag_queue.request.schema.json": lambda: _json(
            json_schema(AgentRequest, "ag_queue.request")
        ),
        "schemas/wb_queue.reply.schema.json": lambda: _json(
            json_schema(AgentReply, "wb_queue.reply")
        ),
        "asyncapi.yaml": lambda: _yaml(asyncapi(t)),
        "rabbitmq-definitions.json": lambda: _json(definitions(t)),
        "rabbitmq-definitions.quorum.json": lambda: _json(
            definitions(replace(t, profile="quorum"))
        ),
        "examples/ag_queue.request.json": lambda: _json(contract_examples.request()),
        "examples/wb_queue.reply.json": lambda: _json(contract_examples.reply()),
    }
    return {path: make() for path, make in files.items()}


def generate(directory: Path = CONTRACTS_DIR) -> list[Path]:
    written = []
    for rel, text in rendered().items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            written.append(path)
    return written


def stale(directory: Path = CONTRACTS_DIR) -> list[str]:
    """Committed files that differ from what ``generate`` would write (or are missing)."""
    out = []
    for rel, text in rendered().items():
        path = directory / rel
        if not path.exists() or path.read_text() != text:
            out.append(rel)
    return out
