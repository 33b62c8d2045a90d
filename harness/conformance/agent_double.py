"""The agent side as the conformance checks need it: it takes every request off ag_queue and
answers only when a check says so (so the agent is as slow as a check wants), rejects the
requests of chosen contacts (they dead-letter to dlx_agent), and publishes replies to wb_queue.

A check sees each request as it arrived (body and AMQP properties), by contact. Run the
conformance checks with no agent service consuming the same queue.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractIncomingMessage, AbstractRobustConnection

from agent_service.contract.amqp import reply_message
from agent_service.contract.codec import now_ms
from agent_service.contract.messages import AgentReply, reply_id_for
from agent_service.contract.topology import Topology
from harness.waiting import wait_until


@dataclass(frozen=True)
class SeenRequest:
    """One delivery from ag_queue, as it was."""

    body: bytes
    properties: dict[str, Any]
    received_at: float  # time.monotonic()

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def phone(self) -> str | None:
        try:
            return str(self.json()["contact"]["phoneNumber"])
        except (ValueError, KeyError, TypeError):
            return None


def _properties(message: AbstractIncomingMessage) -> dict[str, Any]:
    return {
        "content_type": message.content_type,
        "delivery_mode": int(message.delivery_mode or 0),
        "message_id": message.message_id,
        "timestamp": message.timestamp,
        "type": message.type,
        "headers": dict(message.headers or {}),
    }


class AgentDouble:
    """Consumes ``topology.agent_queue``; see the module docstring."""

    def __init__(self, connection: AbstractRobustConnection, topology: Topology) -> None:
        self._connection = connection
        self.topology = topology
        self.requests: dict[str, list[SeenRequest]] = defaultdict(list)
        self.reject_from: set[str] = set()  # phones whose requests are rejected (dead-lettered)
        self._changed = asyncio.Event()
        self._channel: AbstractChannel | None = None
        self._publisher: AbstractChannel | None = None

    async def start(self) -> None:
        self._channel = await self._connection.channel()
        await self._channel.set_qos(prefetch_count=50)
        queue = await self._channel.declare_queue(self.topology.agent_queue, passive=True)
        await queue.consume(self._on_request)
        self._publisher = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )

    async def stop(self) -> None:
        for channel in (self._channel, self._publisher):
            if channel is not None and not channel.is_closed:
                await channel.close()

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        seen = SeenRequest(message.body, _properties(message), time.monotonic())
        phone = seen.phone or "<unreadable>"
        if phone in self.reject_from:
            await message.reject(requeue=False)
        else:
            await message.ack()
        self.requests[phone].append(seen)
        self._changed.set()

    async def wait_requests(self, phone: str, count: int, timeout: float) -> list[SeenRequest]:
        """At least ``count`` requests of this contact, within ``timeout`` (else WaitTimeout)."""
        await wait_until(
            lambda: len(self.requests[phone]) >= count,
            timeout=timeout,
            what=f"{count} request(s) on {self.topology.agent_queue}",
            state=lambda: f"{len(self.requests[phone])} request(s)",
            changed=self._changed,
        )
        return list(self.requests[phone])

    async def reply(self, request: SeenRequest, text: str, *, error: bool = False) -> AgentReply:
        """Publish the reply to ``request`` (status success, or error with its code)."""
        body = request.json()
        contact = body["contact"]
        data: dict[str, Any] = {
            "messageId": reply_id_for(body["messageId"]),
            "originalMessageId": body["messageId"],
            "timestamp": now_ms(),
            "status": "error" if error else "success",
            "contact": {k: contact[k] for k in ("remoteJid", "phoneNumber") if k in contact},
            "response": {"text": text, "type": "text", "attachments": []},
            "agentMetadata": {"processingTime": 0.1},
        }
        if error:
            data["error"] = {"code": "AGENT_ERROR", "message": "the conformance check's error"}
        reply = AgentReply.model_validate(data)
        assert self._publisher is not None, "start() first"
        await self._publisher.default_exchange.publish(
            reply_message(reply), routing_key=self.topology.webhook_queue, mandatory=True
        )
        return reply


def new_phone() -> str:
    """A contact no other check (or earlier run against a real service) has used."""
    return "+2567" + str(uuid.uuid4().int % 10**8).zfill(8)
