"""The retry, parking and dead-letter protocol in the AsyncAPI document (both sides' part).

``contract_files.asyncapi`` describes the two main queues and the two dead-letter queues; this
module adds the rest of the topology (every wait queue and the parking queue, so the document
has a channel for each queue of the definitions file), the operations that use them, and the
messages whose AMQP headers carry the protocol: the agent's retry copies, its dead letters, the
Node side's retry copies and what it parks. Kept apart so the two stay readable.
"""

from __future__ import annotations

from typing import Any

from agent_service.contract.amqp import (
    DEAD_LETTER_DETAIL_HEADER,
    DEAD_LETTER_REASON_HEADER,
    NODE_RETRY_HEADER,
    PARK_KIND_HEADER,
    PARK_KINDS,
    PARK_REASON_HEADER,
    RETRY_LEVEL_HEADER,
    RETRY_REASON_HEADER,
)
from agent_service.contract.messages import FALLBACK_TEXT
from agent_service.contract.topology import Topology

Binding = Any  # a channel's bindings object, built by contract_files


def fallback_sentence() -> str:
    return f'The fallback text is "{FALLBACK_TEXT}" (FALLBACK_TEXT in agent_service.contract).'


def channels(t: Topology, queue_binding: Any) -> dict[str, Any]:
    """One channel per wait queue and the parking queue."""

    def channel(name: str, description: str, messages: list[str]) -> dict[str, Any]:
        return {
            "address": name,
            "description": description,
            "messages": {m: {"$ref": f"#/components/messages/{m}"} for m in messages},
            "bindings": queue_binding(t, name),
        }

    out: dict[str, Any] = {}
    for level, delay in enumerate(t.agent_retry_delays_ms, start=1):
        out[f"agentRetry{level}"] = channel(
            t.agent_retry_queue(level),
            f"Retry {level} of a request after a transient failure: the agent service publishes"
            f" the request here (metadata.retryCount counted up); after {delay} ms the queue's"
            f" TTL dead-letters it back to {t.agent_queue}. The Node side never touches it.",
            ["RetriedAgentRequest"],
        )
    for level, delay in enumerate(t.webhook_retry_delays_ms, start=1):
        out[f"webhookRetry{level}"] = channel(
            t.webhook_retry_queue(level),
            f"Retry {level} of sending a reply: after a transient Wasender failure (5xx,"
            f" timeout, connection) the Node side publishes a copy of the reply here with"
            f" {NODE_RETRY_HEADER} = failed attempts so far, then acks the original; after"
            f" {delay} ms it returns to {t.webhook_queue}. Attempts past the last level use it.",
            ["RetriedAgentReply"],
        )
    out["webhookParking"] = channel(
        t.webhook_parking,
        "What the Node side gave up sending (a permanent Wasender error such as an invalid"
        f" number, or more failed attempts than its MAX_RETRIES): a copy with {PARK_REASON_HEADER},"
        f" {PARK_KIND_HEADER} and {NODE_RETRY_HEADER}, published before the original is acked,"
        " with an admin alert. Nobody consumes it automatically: people read and replay it.",
        ["ParkedMessage"],
    )
    return out


def dead_letter_agent_description(t: Topology) -> str:
    return (
        f"Requests the agent service will never answer: expired in {t.agent_queue} (TTL), or"
        f" dead-lettered by the agent service with {DEAD_LETTER_REASON_HEADER} (INVALID_MESSAGE,"
        f" MAX_DELIVERIES) and {DEAD_LETTER_DETAIL_HEADER}; the broker's x-death says why"
        " otherwise. The Node side sends the fallback text to the request's contact, once per"
        f" messageId. {fallback_sentence()}"
    )


def dead_letter_webhook_description(t: Topology) -> str:
    return (
        f"Replies that expired in {t.webhook_queue} (TTL) before the Node side sent them, or"
        " that it rejected as invalid (nack without requeue). The Node side sends a valid one"
        " late (its send retries wait in process here, since a dead-letter queue has nothing to"
        " return to) and alerts on an invalid one; then it acks."
    )


def operations(op: Any, receive: Any, send: Any) -> dict[str, Any]:
    """The protocol's operations; ``op(action, channel, message, actor, bindings)``."""
    out = {
        "monitorDeadLetterWebhook": op(
            "receive", "deadLetterWebhook", "AgentReply", "Node service (late send)", receive
        ),
        "retryAgentRequest": op(
            "send", "agentRetry1", "RetriedAgentRequest", "agent service", send(mandatory=True)
        ),
        "retryAgentReply": op(
            "send", "webhookRetry1", "RetriedAgentReply", "Node service", send(mandatory=True)
        ),
        "parkMessage": op(
            "send", "webhookParking", "ParkedMessage", "Node service", send(mandatory=True)
        ),
    }
    for key, description in (
        ("retryAgentRequest", "to ag_queue.retry.N, N = min(retryCount, number of levels)"),
        ("retryAgentReply", "to wb_queue.retry.N, N = min(attempts, number of levels)"),
    ):
        out[key]["description"] = f"Published {description} through the default exchange."
    return out


def _string(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _attempts() -> dict[str, Any]:
    return {
        "type": "integer",
        "minimum": 0,
        "description": "Failed send attempts so far (the Node side's counter; the broker's"
        " x-death is not reliable for client republishes)",
    }


def messages() -> dict[str, Any]:
    """The protocol's messages: the same payloads, with the headers that carry the protocol."""

    def message(name: str, payload: dict[str, Any], headers: dict[str, Any], what: str) -> Any:
        return {
            "name": name,
            "contentType": "application/json",
            "payload": payload,
            "headers": {"type": "object", "properties": headers},
            "description": what,
        }

    request = {"$ref": "#/components/schemas/AgentRequest"}
    reply = {"$ref": "#/components/schemas/AgentReply"}
    return {
        "RetriedAgentRequest": message(
            "RetriedAgentRequest",
            request,
            {
                RETRY_REASON_HEADER: _string("The transient ErrorCode that caused the retry"),
                RETRY_LEVEL_HEADER: {"type": "integer", "minimum": 1},
            },
            "The request as it came, metadata.retryCount counted up; same AMQP properties.",
        ),
        "DeadLetteredAgentRequest": message(
            "DeadLetteredAgentRequest",
            {"description": "The request's body as it came: possibly not a valid AgentRequest"},
            {
                DEAD_LETTER_REASON_HEADER: _string("INVALID_MESSAGE or MAX_DELIVERIES"),
                DEAD_LETTER_DETAIL_HEADER: _string("What was wrong, for people (<= 1000 chars)"),
            },
            "A request the agent service dead-lettered itself (published to dlx_agent).",
        ),
        "RetriedAgentReply": message(
            "RetriedAgentReply",
            reply,
            {NODE_RETRY_HEADER: _attempts()},
            "A copy of the reply: same body and AMQP properties, persistent.",
        ),
        "ParkedMessage": message(
            "ParkedMessage",
            {
                "oneOf": [reply, request],
                "description": "An AgentReply (kinds reply, late_reply) or, for kind fallback,"
                " the dead AgentRequest whose fallback text could not be sent",
            },
            {
                PARK_REASON_HEADER: _string(
                    "invalid_number, client_error or retries_exhausted (the send-failure reason)"
                ),
                PARK_KIND_HEADER: {"type": "string", "enum": list(PARK_KINDS)},
                NODE_RETRY_HEADER: _attempts(),
            },
            "A copy of what could not be sent; same body and AMQP properties, persistent.",
        ),
    }
