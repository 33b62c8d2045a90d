"""Publishing to wb_queue, the retry wait queues and the dead-letter exchange, with aio-pika.

Every publish is persistent, ``mandatory`` and waits for the broker's confirm, on a channel
opened with ``on_return_raises=True``: with aiormq 7 a returned mandatory message otherwise
completes the publish as if it had been confirmed (found in a review: with wb_queue deleted a
reply counted as sent while the request was acked and lost). A return raises ``Unroutable``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import aio_pika
import aiormq
from aio_pika.abc import AbstractExchange

from agent_service.contract.amqp import (
    RETRY_LEVEL_HEADER,
    RETRY_REASON_HEADER,
    reply_message,
    request_message,
)
from agent_service.contract.messages import AgentReply
from agent_service.contract.topology import Topology
from agent_service.observability.logging import mask_phone
from agent_service.observability.tracing import inject, publishing
from agent_service.pipeline.decisions import Retry
from agent_service.transport.channels import OpenChannel, PublishChannel
from agent_service.transport.settle import Properties, Unroutable

log = logging.getLogger(__name__)

# Written by the broker when it dead-letters (here: the retry wait queues' expiries); a copy
# must not carry them, or the reader takes this dead letter for an expired one.
_BROKER_HEADERS = ("x-death", "x-first-death-", "x-last-death-")


class AmqpOutlet:
    """The ``Outlet`` of ``transport.settle`` on an aio-pika connection."""

    def __init__(self, open_channel: OpenChannel, topology: Topology, *, timeout: float = 15.0):
        self._channel = PublishChannel(open_channel, close_timeout=timeout)
        self._topology = topology
        self._timeout = timeout

    async def _publish(
        self, message: aio_pika.Message, routing_key: str, exchange: str = ""
    ) -> None:
        try:
            async with self._channel.using() as channel:
                target: AbstractExchange = (
                    await channel.get_exchange(exchange, ensure=False)
                    if exchange
                    else channel.default_exchange
                )
                # A nack drops the channel: the next attempt goes out on a fresh one
                # (transport/channels.py says why).
                await target.publish(
                    message, routing_key=routing_key, mandatory=True, timeout=self._timeout
                )
        except (aiormq.exceptions.PublishError, aiormq.exceptions.ChannelNotFoundEntity):
            # Returned (no queue bound) or, for an exchange, not there at all.
            raise Unroutable(exchange or routing_key) from None

    async def publish_reply(self, reply: AgentReply) -> None:
        queue = self._topology.webhook_queue
        with publishing(f"{queue} send"):
            message = reply_message(reply)
            headers: dict[str, Any] = {}
            inject(headers)  # the trace goes on to the Node side's send
            if headers:
                message.headers = headers
            await self._publish(message, queue)
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

    async def publish_retry(self, retry: Retry) -> None:
        message = request_message(retry.request, body=retry.body)
        headers: dict[str, Any] = {
            RETRY_REASON_HEADER: retry.reason,
            RETRY_LEVEL_HEADER: retry.level,
        }
        inject(headers)  # the retried request continues the same trace
        message.headers = headers
        await self._publish(message, self._topology.agent_retry_queue(retry.level))

    async def publish_dead_letter(
        self, body: bytes, properties: Properties, headers: Mapping[str, str]
    ) -> None:
        # aiormq matches a returned message to its publish by message_id: a body without one
        # gets its hash, which also lets the Node side recognise a second copy.
        message_id = properties.message_id or "sha256:" + hashlib.sha256(body).hexdigest()[:32]
        kept = {k: v for k, v in properties.headers.items() if not k.startswith(_BROKER_HEADERS)}
        message = aio_pika.Message(
            body=body,
            headers={**kept, **headers},
            content_type=properties.content_type,
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            correlation_id=properties.correlation_id,
            type=properties.type,
            timestamp=properties.timestamp,
        )
        await self._publish(message, "", exchange=self._topology.dlx_agent)
