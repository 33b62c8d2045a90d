"""Consuming ag_queue: ``CONCURRENT_TASKS`` requests at most in flight, prefetch per consumer.

Each delivery runs as its own task through ``transport.settle.process``: the handler decides,
the settler carries the decision out, and the handler hears how it went.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math

from aio_pika.abc import AbstractIncomingMessage, AbstractQueue, AbstractRobustConnection

from agent_service.observability.metrics import ServiceMetrics
from agent_service.observability.tracing import consuming
from agent_service.pipeline.handler import Incoming, RequestHandler
from agent_service.transport.settle import Properties, Settler, process

log = logging.getLogger(__name__)


class AmqpDelivery:
    """The ``Delivery`` of ``transport.settle`` for an aio-pika message."""

    def __init__(self, message: AbstractIncomingMessage) -> None:
        self._message = message
        self.settled = False

    @property
    def message(self) -> AbstractIncomingMessage:
        return self._message

    @property
    def body(self) -> bytes:
        return self._message.body

    @property
    def properties(self) -> Properties:
        m = self._message
        return Properties(
            message_id=m.message_id,
            content_type=m.content_type,
            correlation_id=m.correlation_id,
            type=m.type,
            timestamp=m.timestamp,
            headers=dict(m.headers or {}),
        )

    async def ack(self) -> None:
        self.settled = True
        await self._message.ack()

    async def hand_back(self) -> None:
        self.settled = True
        await self._message.nack(requeue=True)


class Consumer:
    """ceil(CONCURRENT_TASKS / AGENT_QUEUE_PREFETCH) consumers, each on its own channel with
    prefetch AGENT_QUEUE_PREFETCH, so the broker never hands out more than the service can
    work on; one task per delivery, bounded again by a semaphore."""

    def __init__(
        self,
        connection: AbstractRobustConnection,
        queue_name: str,
        handler: RequestHandler,
        settler: Settler,
        metrics: ServiceMetrics,
        *,
        concurrent_tasks: int,
        prefetch: int,
    ) -> None:
        self._connection = connection
        self._queue_name = queue_name
        self._handler = handler
        self._settler = settler
        self._metrics = metrics
        self._slots = asyncio.Semaphore(concurrent_tasks)
        self._consumers = max(1, math.ceil(concurrent_tasks / prefetch))
        self._prefetch = prefetch
        self._queues: list[tuple[AbstractQueue, str]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    @property
    def consuming(self) -> bool:
        return bool(self._queues)

    async def start(self) -> None:
        for _ in range(self._consumers):
            channel = await self._connection.channel()
            await channel.set_qos(prefetch_count=self._prefetch)
            queue = await channel.get_queue(self._queue_name, ensure=True)
            tag = await queue.consume(self._on_message)
            self._queues.append((queue, tag))

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        # Return at once so aio-pika keeps delivering; the work runs as its own task.
        task = asyncio.create_task(self._run(message))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, message: AbstractIncomingMessage) -> None:
        async with self._slots:
            self._metrics.in_flight.inc()
            try:
                incoming = Incoming(message.body, bool(message.redelivered), message.message_id)
                with consuming(f"{self._queue_name} receive", message.headers):
                    await process(
                        self._handler,
                        self._settler,
                        incoming,
                        AmqpDelivery(message),
                        stopping=lambda: self._stopping,
                    )
            finally:
                self._metrics.in_flight.dec()

    async def stop(self, grace: float) -> None:
        """Stop consuming, give in-flight work ``grace`` seconds, then cancel the rest."""
        self._stopping = True
        for queue, tag in self._queues:
            # Bounded: with the broker unreachable a cancel would wait for a reconnect.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(queue.cancel(tag), 5)
        self._queues.clear()
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=grace)
            for task in pending:
                task.cancel()
            if pending:
                log.warning(
                    "cancelled unfinished requests at shutdown", extra={"count": len(pending)}
                )
                await asyncio.wait(pending, timeout=5)
