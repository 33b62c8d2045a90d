"""Publishing to wb_queue and to the retry wait queues, always with publisher confirms."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel

from agent_service.contract.codec import reply_message, request_message
from agent_service.contract.messages import AgentReply, AgentRequest
from agent_service.contract.topology import Topology
from agent_service.observability.logging import mask_phone

log = logging.getLogger(__name__)


class Publisher:
    """Every publish waits for the broker's confirm and is ``mandatory``: a reply that no queue
    takes (wb_queue deleted, a typo in WEBHOOK_QUEUE) raises instead of vanishing."""

    def __init__(
        self,
        open_channel: Callable[[], Awaitable[AbstractChannel]],
        topology: Topology,
        *,
        timeout: float = 15.0,
    ) -> None:
        self._open_channel = open_channel
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()
        self._topology = topology
        self._timeout = timeout

    async def _current(self) -> AbstractChannel:
        # A robust channel that failed to come back after a reconnect stays closed for good:
        # open a fresh one rather than failing every publish from then on.
        async with self._lock:
            if self._channel is None or self._channel.is_closed:
                self._channel = await self._open_channel()
            return self._channel

    async def _publish(self, message: aio_pika.Message, routing_key: str) -> None:
        channel = await self._current()
        await channel.default_exchange.publish(
            message, routing_key=routing_key, mandatory=True, timeout=self._timeout
        )

    async def publish_response(self, reply: AgentReply) -> None:
        """Publish a reply to wb_queue (success, partial or error)."""
        await self._publish(reply_message(reply), self._topology.webhook_queue)
        log.info(
            "📤 Published to wb_queue",
            extra={
                "message_id": reply.messageId,
                "original_message_id": reply.originalMessageId,
                "status": reply.status.value,
                "contact": mask_phone(reply.contact.phoneNumber),
                "processing_time": reply.agentMetadata.processingTime,
                "tools_used": reply.agentMetadata.toolsUsed,
                "error_code": reply.error.code if reply.error else None,
            },
        )

    async def publish_retry(
        self, request: AgentRequest, raw: dict[str, Any], level: int, reason: str
    ) -> None:
        """Send the request to wait queue ``level``, with metadata.retryCount counted up.

        The raw JSON is edited, not re-serialised from the model, so fields this version does
        not know survive the round trip (tolerant reader, faithful forwarder).
        """
        body = dict(raw)
        metadata = dict(body.get("metadata") or {})
        metadata["retryCount"] = request.metadata.retryCount + 1
        body["metadata"] = metadata
        message = request_message(request, body=json.dumps(body).encode("utf-8"))
        message.headers = {"x-retry-reason": reason, "x-retry-level": level}
        queue = self._topology.agent_retry_queue(
            min(level, len(self._topology.agent_retry_delays_ms))
        )
        await self._publish(message, queue)
