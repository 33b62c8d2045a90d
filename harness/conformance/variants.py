"""Deliberately broken Node simulators, one per check, to prove each check can fail.

A variant breaks the simulator from outside, at a seam, so the simulator's code stays the
reference: an HTTP proxy in front of its webhook (``webhook``: rewrites or delays what Wasender
posts), a relay between its queues and the agent's (``requests``: rewrites what it publishes to
ag_queue; ``replies``: what it consumes from wb_queue), or one of its own settings (``config``).
``harness conformance --broken NAME`` runs the checks against one.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiohttp
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from aiohttp import web

from agent_service.http_server import HttpServer

# (body, headers, count of posts so far) -> (body, headers, seconds to hold the post)
WebhookRewrite = Callable[[bytes, dict[str, str], int], tuple[bytes, dict[str, str], float]]
# An AMQP message -> the message to pass on, or None to drop it
Relay = Callable[[AbstractIncomingMessage], aio_pika.Message | None]


@dataclass(frozen=True)
class Variant:
    name: str
    breaks: str  # the check it must fail
    how: str
    config: dict[str, Any] = field(default_factory=dict)
    webhook: WebhookRewrite | None = None
    requests: Relay | None = None
    replies: Relay | None = None


class WebhookProxy(HttpServer):
    """POST /webhook forwarded to ``upstream`` after ``rewrite``."""

    def __init__(self, upstream: str, rewrite: WebhookRewrite) -> None:
        super().__init__("127.0.0.1", 0)
        self._upstream = upstream
        self._rewrite = rewrite
        self._count = 0
        self._session: aiohttp.ClientSession | None = None

    def _routes(self, app: web.Application) -> None:
        app.router.add_post("/webhook", self._forward)

    async def _forward(self, request: web.Request) -> web.Response:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        headers = {k: v for k, v in request.headers.items() if k.lower().startswith("x-")}
        headers["Content-Type"] = "application/json"
        body, headers, hold = self._rewrite(await request.read(), headers, self._count)
        self._count += 1
        if hold:
            await asyncio.sleep(hold)
        async with self._session.post(self._upstream, data=body, headers=headers) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(), content_type="application/json"
            )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        await super().stop()


class QueueRelay:
    """Moves every message from one queue to another through ``relay``."""

    def __init__(
        self, connection: AbstractRobustConnection, source: str, target: str, relay: Relay
    ) -> None:
        self._connection = connection
        self._source, self._target, self._relay = source, target, relay

    async def start(self) -> Callable[[], Awaitable[None]]:
        channel = await self._connection.channel(publisher_confirms=True)
        queue = await channel.declare_queue(self._source, passive=True)

        async def move(message: AbstractIncomingMessage) -> None:
            passed = self._relay(message)
            if passed is not None:
                await channel.default_exchange.publish(passed, routing_key=self._target)
            await message.ack()

        await queue.consume(move)
        return channel.close


def _copy(
    message: AbstractIncomingMessage, body: bytes | None = None, **props: Any
) -> aio_pika.Message:
    kept: dict[str, Any] = {
        "content_type": message.content_type,
        "delivery_mode": aio_pika.DeliveryMode.PERSISTENT,
        "message_id": message.message_id,
        "correlation_id": message.correlation_id,
        "timestamp": message.timestamp,
        "type": message.type,
        "headers": dict(message.headers or {}),
    }
    return aio_pika.Message(body=message.body if body is None else body, **(kept | props))


def _rewrite_json(
    message: AbstractIncomingMessage, change: Callable[[Any], None]
) -> aio_pika.Message:
    data = json.loads(message.body)
    change(data)
    return _copy(message, json.dumps(data).encode())


def _event(body: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if isinstance(data, dict):
        change(data)
    return json.dumps(data).encode()


def _messages(event: dict[str, Any]) -> list[dict[str, Any]]:
    raw = (event.get("data") or {}).get("messages") if isinstance(event.get("data"), dict) else None
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    return [m for m in items if isinstance(m, dict) and isinstance(m.get("key"), dict)]


def _slow_webhook(
    body: bytes, headers: dict[str, str], n: int
) -> tuple[bytes, dict[str, str], float]:
    return body, headers, 1.1 if n % 10 == 9 else 0.0  # two of the check's twenty posts


def _id_per_event(
    body: bytes, headers: dict[str, str], n: int
) -> tuple[bytes, dict[str, str], float]:
    def change(event: dict[str, Any]) -> None:
        if event.get("event") == "messages.received":
            for message in _messages(event):
                message["key"]["id"] += "-received"  # deduplicates on (event, id), not on id

    return _event(body, change), headers, 0.0


def _answer_from_me(
    body: bytes, headers: dict[str, str], n: int
) -> tuple[bytes, dict[str, str], float]:
    def change(event: dict[str, Any]) -> None:
        for message in _messages(event):
            message["key"]["fromMe"] = False

    return _event(body, change), headers, 0.0


def _no_signature_check(secret: str) -> WebhookRewrite:
    def rewrite(
        body: bytes, headers: dict[str, str], n: int
    ) -> tuple[bytes, dict[str, str], float]:
        return body, {**headers, "X-Webhook-Signature": secret}, 0.0

    return rewrite


def _no_properties(message: AbstractIncomingMessage) -> aio_pika.Message:
    return _copy(message, message_id=None, type=None)


def _no_history(message: AbstractIncomingMessage) -> aio_pika.Message:
    return _rewrite_json(message, lambda d: d["context"].update(conversationHistory=[]))


def _wrong_number(message: AbstractIncomingMessage) -> aio_pika.Message:
    def change(data: Any) -> None:
        data["contact"] = {
            "remoteJid": "256700000009@s.whatsapp.net",
            "phoneNumber": "+256700000009",
        }

    return _rewrite_json(message, change)


def _drop_errors(message: AbstractIncomingMessage) -> aio_pika.Message | None:
    return None if json.loads(message.body).get("status") == "error" else _copy(message)


def variants(secret: str) -> list[Variant]:
    """One broken simulator per check (``secret``: the one the proxy forges)."""
    return [
        Variant("slow-webhook", "webhook-answers-at-once", "holds every tenth webhook 1.1 s",
                webhook=_slow_webhook),
        Variant("bare-requests", "request-conforms", "publishes without message_id and type",
                requests=_no_properties),
        Variant("no-history", "history-grows", "sends an empty conversationHistory",
                requests=_no_history),
        Variant("dedup-per-event", "duplicate-event-once", "deduplicates per event name",
                webhook=_id_per_event),
        Variant("answers-from-me", "ignores-from-me-and-non-text", "treats fromMe as inbound",
                webhook=_answer_from_me),
        Variant("wrong-number", "reply-sent", "sends replies to another number",
                replies=_wrong_number),
        Variant("drops-error-replies", "error-reply-fallback", "acks error replies unsent",
                replies=_drop_errors),
        Variant("own-fallback", "dead-letter-fallback", "sends another text for dead letters",
                config={"fallback_text": "Sorry, no."}),
        Variant("no-retries", "wasender-5xx-retried", "parks at the first 5xx",
                config={"max_retries": 0}),
        Variant("no-alerts", "invalid-number-parked", "parks without alerting the admin",
                config={"alert_url": None}),
        Variant("ignores-retry-after", "rate-limit-waits", "sends again at once after a 429",
                config={"rate_limit_max_wait": 0.0}),
        Variant("no-signature-check", "wrong-signature-refused", "accepts any signature",
                webhook=_no_signature_check(secret)),
    ]  # fmt: skip
