"""The wb_queue consumer: decode a reply, send it through Wasender, and settle its outcome.

`Courier` holds what every sending path shares (the wb_queue consumer here, the dead-letter
monitor in dead_letters.py): recording a delivery, parking with an alert, the retry counter.
Retries of wb_queue replies go through the topology's wait queues, one per delay level, so a
reply waiting for its retry holds no consumer slot (DESIGN.md section 5).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Literal

import aio_pika
from aio_pika.abc import AbstractIncomingMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from agent_service.contract.amqp import NODE_RETRY_HEADER, PARK_KIND_HEADER, PARK_REASON_HEADER
from agent_service.contract.codec import ContractError, decode_reply
from agent_service.contract.messages import AgentReply, epoch_seconds
from agent_service.contract.topology import Topology
from agent_service.observability.tracing import consuming
from agent_service.transport.channels import PublishChannel
from fakes.node_simulator.metrics import AlertSink, NodeMetrics
from fakes.node_simulator.store import OutcomeLedger, Store
from fakes.node_simulator.wasender_client import SendResult, WasenderClient, send_until_verdict
from fakes.phones import mask

_tracer = trace.get_tracer("fakes.node_simulator")

logger = logging.getLogger("fakes.node_simulator")

# The contract's names (agent_service/contract/amqp.py), documented for the Node team.
RETRY_HEADER = NODE_RETRY_HEADER

SendKind = Literal["reply", "fallback", "late_reply"]
Publish = Callable[[str, aio_pika.Message], Awaitable[None]]

# Headers the broker writes when it dead-letters; a copy we publish must not carry them over.
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-")


def retry_count(message: AbstractIncomingMessage) -> int:
    """How many send attempts earlier deliveries of this message used (our own header)."""
    value = (message.headers or {}).get(RETRY_HEADER, 0)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    try:
        return max(0, int(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0


def copy_message(
    message: AbstractIncomingMessage, headers: Mapping[str, str | int]
) -> aio_pika.Message:
    """The same body and properties, persistent, with `headers` set on top of the old ones."""
    kept = {k: v for k, v in (message.headers or {}).items() if not k.startswith(_BROKER_HEADERS)}
    return aio_pika.Message(
        body=message.body,
        headers={**kept, **headers},
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        correlation_id=message.correlation_id,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )


class Publisher:
    """Publishes on one confirm channel; raises unless the broker confirmed the message."""

    def __init__(self, channel: PublishChannel, timeout: float) -> None:
        self._channel = channel
        self._timeout = timeout

    async def publish(self, routing_key: str, message: aio_pika.Message) -> None:
        # mandatory + on_return_raises: a message no queue takes is an error, not a silent drop.
        # The whole call is bounded, not only the wait for the confirm: on a robust channel
        # that is reconnecting it first waits for the channel (found by the network-cut
        # scenario: a webhook hung past its client's timeout).
        async with asyncio.timeout(self._timeout):
            # A nack drops the channel: the next attempt goes out on a fresh one, as the agent
            # service's do (agent_service/transport/channels.py says why).
            async with self._channel.using() as channel:
                await channel.default_exchange.publish(
                    message, routing_key=routing_key, mandatory=True, timeout=self._timeout
                )


@dataclass(frozen=True)
class SeenReply:
    original_message_id: str
    phone: str
    text: str
    built_at: int
    """The reply's own timestamp: a reply built again (the agent run twice) differs here even
    when its text is the same; a stored reply republished does not."""


@dataclass
class Courier:
    """Sends to users and settles each request's one outcome."""

    client: WasenderClient
    store: Store
    ledger: OutcomeLedger
    metrics: NodeMetrics
    alerts: AlertSink
    publish: Publish
    topology: Topology
    max_retries: int
    seen: list[SeenReply] = field(default_factory=list)
    """Every reply the agent service published, in the order wb_queue delivered them (the
    copies this side republished to its wait queues are not counted again)."""

    def send_failed(self, result: SendResult) -> None:
        self.metrics.send_failures.labels(reason=result.reason).inc()

    def delivered(
        self, request_id: str, phone: str, text: str, kind: SendKind, msg_id: object = None
    ) -> None:
        # The history gets what the user actually read, so the next request's context is true.
        self.store.add_assistant(phone, text, request_id)
        if msg_id is not None:
            self.store.record_send(str(msg_id), request_id)
        self.ledger.finish(request_id, "fallback" if kind == "fallback" else "reply")
        self.metrics.sends.labels(kind=kind).inc()
        logger.info("✅ Sent %s to %s", kind, mask(phone), extra={"requestId": request_id})

    async def park(
        self,
        message: AbstractIncomingMessage,
        *,
        request_id: str,
        phone: str | None,
        reason: str,
        kind: SendKind,
        attempts: int,
        detail: str = "",
    ) -> None:
        """Keep the message in the parking queue (confirmed), then alert and record it."""
        parked = copy_message(
            message,
            {PARK_REASON_HEADER: reason, PARK_KIND_HEADER: kind, RETRY_HEADER: attempts},
        )
        await self.publish(self.topology.webhook_parking, parked)
        self.metrics.parked.labels(reason=reason).inc()
        self.ledger.finish(request_id, "parked")
        self.alert(reason, request_id=request_id, phone=phone, detail=detail or kind)

    def alert(
        self, reason: str, *, request_id: str | None, phone: str | None, detail: str = ""
    ) -> None:
        whatsapp_id = self.store.whatsapp_id_for(request_id) if request_id else None
        self.alerts.raise_alert(
            reason,
            original_message_id=request_id,
            whatsapp_message_id=whatsapp_id,
            phone=phone,
            detail=detail,
        )


class ReplyConsumer:
    """Handles one wb_queue delivery at a time per call; the caller acks nothing itself."""

    def __init__(self, courier: Courier) -> None:
        self._courier = courier

    async def handle(self, message: AbstractIncomingMessage) -> None:
        queue = self._courier.topology.webhook_queue
        with consuming(f"{queue} receive", message.headers):
            await self._handle(message)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        reply = await self._decode(message)
        if reply is None:
            return
        attempts = retry_count(message)
        self._observe(reply, first_delivery=attempts == 0)
        if attempts == 0:
            seen = SeenReply(
                reply.originalMessageId,
                reply.contact.phoneNumber,
                reply.response.text,
                reply.timestamp,
            )
            self._courier.seen.append(seen)
        ledger = self._courier.ledger
        if not ledger.claim(reply.originalMessageId, continuation=attempts > 0):
            self._courier.metrics.duplicates.labels(source="wb_queue").inc()
            logger.info("duplicate reply dropped", extra={"requestId": reply.originalMessageId})
            await message.ack()
            return
        try:
            await self._deliver(message, reply, attempts)
        except BaseException:
            ledger.release(reply.originalMessageId)
            raise

    async def _decode(self, message: AbstractIncomingMessage) -> AgentReply | None:
        try:
            return decode_reply(message.body)
        except ContractError as exc:
            # Not ours to fix: dead-letter it (to dlx_webhook, whose monitor alerts).
            self._courier.metrics.consumed.labels(status="invalid").inc()
            logger.warning("invalid reply rejected: %s", exc, extra={"amqpId": message.message_id})
            await message.reject(requeue=False)
            return None

    def _observe(self, reply: AgentReply, *, first_delivery: bool) -> None:
        metrics = self._courier.metrics
        metrics.consumed.labels(status=reply.status.value).inc()
        if first_delivery:
            # Retried copies would add our own retry waits to the queue latency.
            metrics.latency.observe(max(0.0, time.time() - epoch_seconds(reply.timestamp)))
        logger.info(
            "📥 Consumed from wb_queue: %s",
            reply.messageId,
            extra={
                "messageId": reply.messageId,
                "contact": mask(reply.contact.phoneNumber),
                "processingTime": f"{reply.agentMetadata.processingTime}s",
                "status": reply.status.value,
            },
        )

    async def _deliver(
        self, message: AbstractIncomingMessage, reply: AgentReply, attempts: int
    ) -> None:
        courier = self._courier
        request_id, phone = reply.originalMessageId, reply.contact.phoneNumber
        # Every status is sent: an error reply carries the fallback text in response.text.
        # The trace of the message ends with the send (the consume span is its parent).
        with _tracer.start_as_current_span("wasender send", kind=SpanKind.CLIENT):
            verdict = await send_until_verdict(
                courier.client,
                phone,
                reply.response.text,
                attempts=attempts,
                max_retries=courier.max_retries,
                on_failure=courier.send_failed,
            )
        if verdict.action == "sent":
            courier.delivered(
                request_id, phone, reply.response.text, "reply", verdict.result.msg_id
            )
        elif verdict.action == "park":
            await courier.park(
                message,
                request_id=request_id,
                phone=phone,
                reason=verdict.reason,
                kind="reply",
                attempts=verdict.attempts,
                detail=verdict.result.detail,
            )
        else:
            await self._schedule_retry(message, request_id, verdict.attempts)
        await message.ack()

    async def _schedule_retry(
        self, message: AbstractIncomingMessage, request_id: str, attempt: int
    ) -> None:
        topology = self._courier.topology
        # More retries than wait queues: the last (longest) wait serves the rest.
        level = min(attempt, len(topology.webhook_retry_delays_ms))
        retry = copy_message(message, {RETRY_HEADER: attempt})
        await self._courier.publish(topology.webhook_retry_queue(level), retry)
        self._courier.ledger.wait(request_id)
        logger.info(
            "reply %s scheduled for retry %d", request_id, attempt, extra={"retryLevel": level}
        )
