"""Small broker helpers for tests and scenarios: publish requests, read replies, count depth,
and wait for a condition instead of sleeping."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Iterable

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage

from agent_service.contract.amqp import request_message
from agent_service.contract.codec import decode_reply
from agent_service.contract.messages import AgentReply, AgentRequest
from agent_service.contract.topology import Topology
from harness.waiting import wait_until


async def publish_requests(
    channel: AbstractChannel,
    topology: Topology,
    requests: Iterable[AgentRequest],
    *,
    retry_for: float = 0.0,
) -> None:
    """Publish with confirms (the channel must have publisher_confirms on). With ``retry_for``,
    a publish that fails while a robust connection reconnects is tried again until then."""
    deadline = time.monotonic() + retry_for

    async def one(request: AgentRequest) -> None:
        while True:
            try:
                await channel.default_exchange.publish(
                    request_message(request), routing_key=topology.agent_queue
                )
                return
            except (aio_pika.exceptions.AMQPError, ConnectionError, RuntimeError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    await asyncio.gather(*(one(r) for r in requests))


async def queue_depth(connection: AbstractConnection, queue: str) -> int:
    channel = await connection.channel()
    try:
        declared = await channel.declare_queue(queue, passive=True)
        return int(declared.declaration_result.message_count or 0)
    finally:
        await channel.close()


async def queue_depths(connection: AbstractConnection, queues: Iterable[str]) -> dict[str, int]:
    """Messages ready in each queue, read on one channel. Deliveries a consumer holds unacked
    are not counted (AMQP does not report them): pair a zero with a condition on the consumers
    before concluding that the work is done."""
    channel = await connection.channel()
    try:
        depths = {}
        for name in queues:
            declared = await channel.declare_queue(name, passive=True)
            depths[name] = int(declared.declaration_result.message_count or 0)
        return depths
    finally:
        if not channel.is_closed:
            await channel.close()


async def drain(
    connection: AbstractConnection, queue: str, *, ack: bool = True
) -> list[AbstractIncomingMessage]:
    """Every message in the queue now (acked, so removed, unless ``ack`` is False).

    Each message is acked only once it is in the list: if the link drops half way, what was
    not acked goes back to the queue instead of being lost with the broken connection."""
    channel = await connection.channel()
    q = await channel.get_queue(queue, ensure=False)
    got = []
    try:
        while (message := await q.get(no_ack=False, fail=False)) is not None:
            got.append(message)
            if ack:
                await message.ack()
    finally:
        if not channel.is_closed:
            await channel.close()  # unacked messages go back to the queue
    return got


class ReplyCollector:
    """Consumes a reply queue and groups what arrives by ``originalMessageId``; ``arrived``
    notes when each request's first reply came (``time.monotonic()``), and ``on_first_reply``
    is called when the very first one does (the bench reads the service's CPU then)."""

    def __init__(self, connection: AbstractConnection, queue: str) -> None:
        self._connection = connection
        self._queue = queue
        self.replies: dict[str, list[AgentReply]] = defaultdict(list)
        self.messages: list[AbstractIncomingMessage] = []
        self.arrived: dict[str, float] = {}
        self.on_first_reply: Callable[[], object] | None = None
        self._changed = asyncio.Event()
        self._channel: AbstractChannel | None = None

    async def __aenter__(self) -> ReplyCollector:
        self._channel = await self._connection.channel()
        queue = await self._channel.get_queue(self._queue, ensure=False)
        await queue.consume(self._on_message, no_ack=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        now = time.monotonic()
        reply = decode_reply(message.body)
        if not self.arrived and self.on_first_reply is not None:
            self.on_first_reply()
        self.arrived.setdefault(reply.originalMessageId, now)
        self.replies[reply.originalMessageId].append(reply)
        self.messages.append(message)
        self._changed.set()

    def first_replies(self) -> dict[str, tuple[float, AgentReply]]:
        """Each request's first reply and when it came."""
        return {i: (t, self.replies[i][0]) for i, t in self.arrived.items()}

    async def wait_for_count(self, count: int, timeout: float) -> None:
        """Until ``count`` distinct requests have a reply."""
        await wait_until(
            lambda: len(self.arrived) >= count,
            timeout=timeout,
            what=f"replies to {count} requests",
            state=lambda: f"{len(self.arrived)} answered",
            changed=self._changed,
        )

    async def wait_for(self, ids: Iterable[str], timeout: float) -> dict[str, list[AgentReply]]:
        """Wait until every id has at least one reply; raise TimeoutError naming the missing."""
        wanted = set(ids)
        await wait_until(
            lambda: wanted <= set(self.replies),
            timeout=timeout,
            what=f"a reply to each of {len(wanted)} requests",
            state=lambda: f"{len(wanted - set(self.replies))} without a reply",
            changed=self._changed,
        )
        return {i: self.replies[i] for i in wanted}
