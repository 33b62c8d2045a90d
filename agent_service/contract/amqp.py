"""Envelopes as AMQP messages with the contract's properties (DESIGN.md section 3)."""

from __future__ import annotations

from datetime import UTC, datetime

import aio_pika

from agent_service.contract.codec import to_json_bytes
from agent_service.contract.messages import AgentReply, AgentRequest, epoch_seconds

CONTENT_TYPE = "application/json"
# On a request the agent service dead-letters to dlx_agent (the broker's x-death is absent):
# why (an ErrorCode: INVALID_MESSAGE, MAX_DELIVERIES) and what was wrong, for people.
DEAD_LETTER_REASON_HEADER = "x-agent-dead-letter-reason"
DEAD_LETTER_DETAIL_HEADER = "x-agent-dead-letter-detail"
# The agent service's copy of a request in an ag_queue.retry.N wait queue: why it is retried
# (a transient ErrorCode) and the level (1-based); the body's metadata.retryCount is counted up.
RETRY_REASON_HEADER = "x-retry-reason"
RETRY_LEVEL_HEADER = "x-retry-level"
# The Node side's own headers (contracts/README.md, "The Node side's retry, parking and dead
# letters"): failed send attempts so far on a reply in wb_queue.retry.N or wb_queue.parking, and
# why a message was parked (a send-failure reason or retries_exhausted) and what it was to send.
NODE_RETRY_HEADER = "x-retry-count"
PARK_REASON_HEADER = "x-park-reason"
PARK_KIND_HEADER = "x-park-kind"
PARK_KINDS = ("reply", "fallback", "late_reply")


def _timestamp(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds(epoch), tz=UTC)


def request_message(request: AgentRequest, body: bytes | None = None) -> aio_pika.Message:
    """An ag_queue request as a persistent AMQP message with the contract's properties."""
    return aio_pika.Message(
        body=body if body is not None else to_json_bytes(request),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=request.messageId,
        timestamp=_timestamp(request.timestamp),
        type=request.taskType.value,
    )


def reply_message(reply: AgentReply) -> aio_pika.Message:
    """A wb_queue reply as a persistent AMQP message; correlation_id is the request's id."""
    return aio_pika.Message(
        body=to_json_bytes(reply),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        message_id=reply.messageId,
        correlation_id=reply.originalMessageId,
        timestamp=_timestamp(reply.timestamp),
        type=reply.status.value,
    )
