"""The webhook side: Wasender's POST /webhook in, an AgentRequest on ag_queue out.

As the spec's server.js does: validate, store, check the contact's AI switch, build the context
from stored history, publish, and answer 200 without waiting for the agent. The publish itself
is awaited (with publisher confirms): when the broker cannot take the request the answer is 503,
so Wasender delivers the webhook again instead of the message being lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any, Literal

from aiohttp import web
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import ValidationError

from agent_service.contract.amqp import request_message
from agent_service.contract.codec import now_ms
from agent_service.contract.messages import (
    AgentRequest,
    Contact,
    Context,
    HistoryTurn,
    RequestMetadata,
    Role,
    UserMessage,
)
from agent_service.http_server import HttpServer
from agent_service.observability.tracing import inject, publishing
from fakes.node_simulator.metrics import NodeMetrics
from fakes.node_simulator.reply_consumer import Publish
from fakes.node_simulator.store import ContactRow, Store
from fakes.node_simulator.task_router import route_task
from fakes.phones import PN_JID_SUFFIX, mask
from fakes.webhooks import InboundMessage, WebhookPayloadError, parse_webhook_event
from fakes.webhooks import verify_signature as signature_ok

logger = logging.getLogger("fakes.node_simulator")

SIGNATURE_HEADER = "X-Webhook-Signature"
IntakeResult = Literal["queued", "stored", "duplicate", "skipped"]

# Calling codes the demo contacts use (North America, UK, East Africa, Nigeria, South Africa,
# India and a few neighbours); enough to fill countryCode, which the agent only uses as a hint.
CALLING_CODES = frozenset(
    {"1", "7", "20", "27", "30", "31", "33", "34", "39", "44", "49", "52", "55", "61", "81",
     "86", "91", "211", "233", "234", "243", "250", "251", "252", "253", "254", "255", "256",
     "257", "260", "263", "971"}
)  # fmt: skip


def country_code(digits: str) -> str | None:
    """The calling code at the start of an international number (longest match), or None."""
    for length in (3, 2, 1):
        if digits[:length] in CALLING_CODES:
            return digits[:length]
    return None


_tracer = trace.get_tracer("fakes.node_simulator")


# A request's id is uuid5 of the contact and the WhatsApp message id: a publish whose confirm
# was lost (the link broke after the broker took it) and that is published again when Wasender
# redelivers the webhook is the same request, which the agent service answers once. With a
# random id it was two requests and two answers (found by the network-cut and node-loss
# scenarios). Per contact, since a WhatsApp id is unique in its chat only.
REQUEST_ID_NAMESPACE = uuid.UUID("0c9f6d3e-2b71-4d8a-9a55-7e3f1c2b8d40")


def request_id_for(phone: str, whatsapp_message_id: str) -> str:
    """The ``messageId`` of the AI request for one WhatsApp message of a contact."""
    return str(uuid.uuid5(REQUEST_ID_NAMESPACE, f"{phone}/{whatsapp_message_id}"))


class PublishFailed(RuntimeError):
    """The broker did not take (confirm) the request."""


class InvalidInbound(ValueError):
    """A message that parses but cannot become a valid AgentRequest."""


class Intake:
    """One inbound message: store, deduplicate, AI check, context, route, publish."""

    def __init__(
        self,
        store: Store,
        publish: Publish,
        agent_queue: str,
        metrics: NodeMetrics,
        history_turns: int,
    ) -> None:
        self._store = store
        self._publish = publish
        self._agent_queue = agent_queue
        self._metrics = metrics
        self._history_turns = history_turns
        # The last request published (or being published) per contact: the next one names it
        # as metadata.previousMessageId, so the agent service keeps the contact's replies in
        # this order across its replicas. Set before any await, so concurrent webhooks of one
        # contact chain up in the order they were built, which is the order they are published.
        self._last_request: dict[str, str] = {}
        # WhatsApp ids whose first delivery is being stored and published right now.
        self._queueing: dict[str, asyncio.Event] = {}

    async def accept(self, inbound: InboundMessage) -> IntakeResult:
        if inbound.text is None:
            return "skipped"  # media without a caption: nothing for the agent to read
        while True:
            # Nothing awaits between this insert and the check, so a concurrent twin sees the row.
            row_id = self._store.insert_inbound(inbound, inbound.phone)
            if row_id is not None:
                break
            first = self._queueing.get(inbound.message_id)
            if first is None:
                self._metrics.duplicates.labels(source="webhook").inc()
                return "duplicate"
            # Its first delivery is still being published and may yet fail: answering
            # "duplicate" now would lose the message if it did (found by the network-cut
            # scenario). Wait for it: published, this is a duplicate; failed (its row undone),
            # this delivery takes the message on.
            await first.wait()
        done = self._queueing[inbound.message_id] = asyncio.Event()
        try:
            return await self._accept_new(inbound, row_id)
        finally:
            del self._queueing[inbound.message_id]
            done.set()

    async def _accept_new(self, inbound: InboundMessage, row_id: int) -> IntakeResult:
        self._store.ensure_contact(inbound.phone, inbound.name)
        contact = self._store.contact(inbound.phone)
        if contact is None or not contact.ai_enabled:
            return "stored"
        try:
            request = self._build(inbound, contact, row_id)
        except ValidationError as exc:
            self._store.forget_inbound(row_id)
            raise InvalidInbound(
                f"message {inbound.message_id}: {exc.errors()[0]['msg']}"
            ) from None
        previous = request.metadata.previousMessageId
        self._last_request[inbound.phone] = request.messageId
        try:
            await self._publish_request(request, row_id)
        except PublishFailed:
            if self._last_request.get(inbound.phone) == request.messageId:
                # Never reached ag_queue: the next message follows the one before this.
                if previous is None:
                    del self._last_request[inbound.phone]
                else:
                    self._last_request[inbound.phone] = previous
            raise
        return "queued"

    def _build(self, inbound: InboundMessage, contact: ContactRow, row_id: int) -> AgentRequest:
        history = self._store.history(inbound.phone, self._history_turns, before_id=row_id)
        digits = inbound.phone[1:]
        name = inbound.name or contact.name
        return AgentRequest(
            messageId=request_id_for(inbound.phone, inbound.message_id),
            timestamp=now_ms(),
            taskType=route_task(inbound.text or ""),
            contact=Contact(
                remoteJid=digits + PN_JID_SUFFIX,
                phoneNumber=inbound.phone,
                name=name[:256] if name else None,
                countryCode=country_code(digits),
            ),
            message=UserMessage(
                text=inbound.text or "", messageId=inbound.message_id, timestamp=inbound.timestamp
            ),
            context=Context(
                conversationHistory=[
                    HistoryTurn(role=Role(turn.role), content=turn.text) for turn in history
                ],
                userNotes=contact.user_notes,
            ),
            metadata=RequestMetadata(previousMessageId=self._last_request.get(inbound.phone)),
        )

    async def _publish_request(self, request: AgentRequest, row_id: int) -> None:
        try:
            with publishing(f"{self._agent_queue} send"):
                message = request_message(request)
                headers: dict[str, Any] = {}
                inject(headers)  # W3C traceparent: the agent service continues this trace
                if headers:
                    message.headers = headers
                await self._publish(self._agent_queue, message)
        except BaseException as exc:
            # Undo the store so Wasender's retry of this webhook is processed, not deduplicated;
            # also when the webhook's handler is cancelled because its client gave up (found
            # by the network-cut scenario: the row stayed, every retry was a "duplicate").
            self._store.forget_inbound(row_id)
            if not isinstance(exc, Exception):
                raise
            self._metrics.publish_failures.inc()
            logger.error(
                "could not publish to %s for %s: %r",
                self._agent_queue,
                mask(request.contact.phoneNumber),
                exc,
            )
            raise PublishFailed(str(exc)) from exc
        self._store.set_request_id(row_id, request.messageId)
        self._metrics.published.inc()
        logger.info(
            "📤 Published to ag_queue: %s",
            request.messageId,
            extra={
                "messageId": request.messageId,
                "contact": mask(request.contact.phoneNumber),
                "taskType": request.taskType.value,
                "timestamp": request.timestamp,
            },
        )


class WebhookServer(HttpServer):
    """aiohttp on `host`: POST /webhook, GET /health, GET /metrics."""

    def __init__(
        self,
        intake: Intake,
        metrics: NodeMetrics,
        secret: str,
        broker_up: Callable[[], bool],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host, port)
        self._intake = intake
        self._metrics = metrics
        self._secret = secret
        self._broker_up = broker_up

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/webhook", self._webhook)
        app.router.add_get("/health", self._health)
        app.router.add_get("/metrics", self._metrics_page)

    async def _webhook(self, request: web.Request) -> web.Response:
        if not signature_ok(request.headers.get(SIGNATURE_HEADER), self._secret):
            return _error(401, f"missing or wrong {SIGNATURE_HEADER}")
        try:
            event = json.loads(await request.read())
            inbound = parse_webhook_event(event)
        except (ValueError, UnicodeDecodeError) as exc:  # WebhookPayloadError is a ValueError
            reason = str(exc) if isinstance(exc, WebhookPayloadError) else "body is not JSON"
            return _error(400, reason)
        results: list[IntakeResult] = []
        try:
            for message in inbound:
                # A trace per message starts here; the publish to ag_queue carries it on in
                # the AMQP headers (W3C traceparent), a no-op unless tracing is on.
                with _tracer.start_as_current_span("webhook message", kind=SpanKind.SERVER):
                    results.append(await self._intake.accept(message))
        except InvalidInbound as exc:
            return _error(400, str(exc))
        except PublishFailed:
            return _error(503, "could not queue the message for the agent; retry later")
        processed = any(r in ("queued", "stored") for r in results)
        return web.json_response({"status": "received", "processed": processed})

    async def _health(self, _: web.Request) -> web.Response:
        up = self._broker_up()
        body = {"status": "ok" if up else "degraded", "broker": "up" if up else "down"}
        return web.json_response(body, status=200 if up else 503)

    async def _metrics_page(self, _: web.Request) -> web.Response:
        return web.Response(
            body=self._metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"status": "error", "error": message}, status=status)
