"""The dead-letter monitor: fallbacks for dead agent requests, late sends of dead replies.

A dead letter is handled in process: retries wait here (with the webhook retry delays) instead
of going round a retry queue, because a dead-letter queue has no queue to return to. Whatever
happens, the delivery is acked once handled, so a message that can never be sent cannot loop.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractIncomingMessage

from agent_service.contract.amqp import DEAD_LETTER_REASON_HEADER
from agent_service.contract.codec import ContractError, decode_reply
from fakes.node_simulator.reply_consumer import Courier, SendKind, retry_count
from fakes.node_simulator.wasender_client import send_until_verdict
from fakes.phones import mask, to_e164

logger = logging.getLogger("fakes.node_simulator")


@dataclass(frozen=True, slots=True)
class DeadRequest:
    """What a fallback needs from a dead ag_queue request."""

    request_id: str
    phone: str  # E.164


def read_dead_request(body: bytes) -> DeadRequest | None:
    """Tolerant: any JSON object with a contact phone will do (the request may have died for
    breaking the schema). Without a messageId the body's hash stands in, so a redelivery of the
    same dead letter is still recognised."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    phone = _contact_phone(data.get("contact"))
    if phone is None:
        return None
    message_id = data.get("messageId")
    if not isinstance(message_id, str) or not message_id:
        message_id = "body-sha256:" + hashlib.sha256(body).hexdigest()[:32]
    return DeadRequest(message_id, phone)


def _contact_phone(contact: Any) -> str | None:
    if not isinstance(contact, dict):
        return None
    for field in ("phoneNumber", "remoteJid"):
        value = contact.get(field)
        if isinstance(value, str):
            try:
                return to_e164(value)
            except ValueError:
                continue
    return None


def death_reason(message: AbstractIncomingMessage) -> str:
    """Why it died, for the logs: the agent service's reason header (INVALID_MESSAGE,
    MAX_DELIVERIES) on what it dead-lettered, else the broker's ("expired", "rejected")."""
    headers = message.headers or {}
    agent_reason = headers.get(DEAD_LETTER_REASON_HEADER)
    if agent_reason:
        return str(agent_reason.decode() if isinstance(agent_reason, bytes) else agent_reason)
    deaths = headers.get("x-death")
    if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict):
        return str(deaths[0].get("reason", "unknown"))
    return "unknown"


class DeadLetterMonitor:
    """Consumes dlx_agent and dlx_webhook."""

    def __init__(self, courier: Courier, fallback_text: str) -> None:
        self._courier = courier
        self._fallback_text = fallback_text
        self._delays = [ms / 1000 for ms in courier.topology.webhook_retry_delays_ms] or [1.0]

    async def handle_agent(self, message: AbstractIncomingMessage) -> None:
        """A request the agent never answered: send the fallback text to its contact."""
        dead = read_dead_request(message.body)
        reason = death_reason(message)
        if dead is None:
            self._courier.alert(
                "unreadable_dead_letter",
                request_id=message.message_id,
                phone=None,
                detail=f"dlx_agent message without a readable contact ({reason})",
            )
            await message.ack()
            return
        logger.warning(
            "dead agent request %s (%s): sending the fallback to %s",
            dead.request_id,
            reason,
            mask(dead.phone),
        )
        await self._settle(message, dead.request_id, dead.phone, self._fallback_text, "fallback")

    async def handle_webhook(self, message: AbstractIncomingMessage) -> None:
        """A reply that expired in wb_queue or was rejected: send it late if it is valid."""
        try:
            reply = decode_reply(message.body)
        except ContractError as exc:
            self._courier.alert(
                "invalid_reply",
                request_id=message.correlation_id,
                phone=None,
                detail=str(exc)[:500],
            )
            await message.ack()
            return
        logger.warning(
            "dead reply %s (%s): sending it late", reply.originalMessageId, death_reason(message)
        )
        await self._settle(
            message,
            reply.originalMessageId,
            reply.contact.phoneNumber,
            reply.response.text,
            "late_reply",
            attempts=retry_count(message),
        )

    async def _settle(
        self,
        message: AbstractIncomingMessage,
        request_id: str,
        phone: str,
        text: str,
        kind: SendKind,
        *,
        attempts: int = 0,
    ) -> None:
        # A dead reply that already went round our retry ladder is that ladder's continuation.
        ledger = self._courier.ledger
        if not ledger.claim(request_id, continuation=attempts > 0):
            # Already answered (or being answered): one outcome per request.
            source = "dlx_agent" if kind == "fallback" else "dlx_webhook"
            self._courier.metrics.duplicates.labels(source=source).inc()
            await message.ack()
            return
        try:
            await self._send_with_backoff(message, request_id, phone, text, kind, attempts)
        except BaseException:
            ledger.release(request_id)
            raise
        await message.ack()

    async def _send_with_backoff(
        self,
        message: AbstractIncomingMessage,
        request_id: str,
        phone: str,
        text: str,
        kind: SendKind,
        attempts: int,
    ) -> None:
        courier = self._courier
        while True:
            verdict = await send_until_verdict(
                courier.client,
                phone,
                text,
                attempts=attempts,
                max_retries=courier.max_retries,
                on_failure=courier.send_failed,
            )
            attempts = verdict.attempts
            if verdict.action == "sent":
                courier.delivered(request_id, phone, text, kind, verdict.result.msg_id)
                return
            if verdict.action == "park":
                await courier.park(
                    message,
                    request_id=request_id,
                    phone=phone,
                    reason=verdict.reason,
                    kind=kind,
                    attempts=attempts,
                    detail=verdict.result.detail,
                )
                return
            await asyncio.sleep(self._delays[min(attempts, len(self._delays)) - 1])
