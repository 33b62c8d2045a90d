"""Fuzzing the running agent service with envelopes on ag_queue, and checking every outcome.

A valid envelope must get exactly one conforming reply on wb_queue and no dead letter; an
invalid one must land in dlx_agent exactly once, unchanged, with its reason, and get no reply;
and the service must keep consuming. Hypothesis drives the examples (and shrinks a failure);
the broker side runs on an event loop in a thread of its own, since Hypothesis calls the test
synchronously.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aio_pika
import aiohttp
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

from agent_service.contract.amqp import DEAD_LETTER_REASON_HEADER
from agent_service.contract.codec import ContractError, decode_reply
from agent_service.contract.topology import Topology
from agent_service.errors import ErrorCode
from harness.fuzzing.envelopes import Envelope
from harness.waiting import wait_until

T = TypeVar("T")


class LoopThread:
    """An event loop in a daemon thread; ``run`` waits for a coroutine from plain code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 600) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)
        self.loop.close()


@dataclass
class Tally:
    """What the run saw: envelopes per kind and outcome, and the failures."""

    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    envelopes: int = 0
    examples: int = 0
    failures: list[str] = field(default_factory=list)

    def by_outcome(self) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (_, outcome), n in self.outcomes.items():
            counts[outcome] += n
        return counts


class LiveTarget:
    """The queues a running service answers on, consumed by the fuzzer."""

    def __init__(self, amqp_url: str, topology: Topology, metrics_url: str) -> None:
        self._url = amqp_url
        self.topology = topology
        self._metrics_url = metrics_url
        self._connection: AbstractRobustConnection | None = None
        self.replies: dict[str, list[AbstractIncomingMessage]] = defaultdict(list)
        self.dead: dict[str, list[AbstractIncomingMessage]] = defaultdict(list)

    async def start(self) -> None:
        self._connection = await aio_pika.connect_robust(self._url, timeout=15)
        channel = await self._connection.channel()
        replies = await channel.get_queue(self.topology.webhook_queue, ensure=True)
        dead = await channel.get_queue(self.topology.dlx_agent, ensure=True)
        await replies.consume(self._on_reply, no_ack=True)
        await dead.consume(self._on_dead, no_ack=True)
        self._publisher = await self._connection.channel(publisher_confirms=True)
        self._inspector = await self._connection.channel()

    async def close(self) -> None:
        if self._connection is not None:
            await self._connection.close()

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        self.replies[message.correlation_id or "?"].append(message)

    async def _on_dead(self, message: AbstractIncomingMessage) -> None:
        self.dead[message.message_id or "?"].append(message)

    async def exchange(self, batch: list[Envelope], timeout: float = 60) -> list[tuple[str, str]]:
        """Publish the batch; once the service is idle again, each envelope's outcome."""
        ids = [f"fuzz-{uuid.uuid4()}" for _ in batch]
        for envelope, amqp_id in zip(batch, ids, strict=True):
            message_id = envelope.request_id if envelope.valid else amqp_id
            await self._publisher.default_exchange.publish(
                aio_pika.Message(
                    envelope.body, message_id=message_id, content_type="application/json"
                ),
                routing_key=self.topology.agent_queue,
            )

        def key(envelope: Envelope, amqp_id: str) -> str:
            return envelope.request_id or "" if envelope.valid else amqp_id

        def answered() -> bool:
            return all(
                self.replies.get(key(e, i)) or self.dead.get(key(e, i))
                for e, i in zip(batch, ids, strict=True)
            )

        await wait_until(
            answered, timeout=timeout, what="an outcome for every envelope", interval=0.005
        )
        await wait_until(self._idle, timeout=timeout, what="the service idle", interval=0.01)
        return [self._verdict(e, key(e, i)) for e, i in zip(batch, ids, strict=True)]

    async def _idle(self) -> bool:
        """Nothing waiting in the three queues and nothing in the service's hands: every
        delivery settled, so every reply or dead letter it made is published."""
        t = self.topology
        for name in (t.agent_queue, t.webhook_queue, t.dlx_agent):
            declared = await self._inspector.declare_queue(name, passive=True)
            if declared.declaration_result.message_count:
                return False
        return await self.in_flight() == 0

    async def in_flight(self) -> float:
        async with aiohttp.ClientSession() as http, http.get(self._metrics_url) as response:
            for line in (await response.text()).splitlines():
                if line.startswith("agent_in_flight "):
                    return float(line.split()[1])
        raise AssertionError("the service exports no agent_in_flight")

    def _verdict(self, envelope: Envelope, key: str) -> tuple[str, str]:
        replies, dead = self.replies.get(key, []), self.dead.get(key, [])
        problem = _problem(envelope, replies, dead)
        if problem:
            raise AssertionError(f"{envelope.describe()}: {problem}")
        if envelope.valid:
            return envelope.kind, f"reply:{decode_reply(replies[0].body).status.value}"
        return envelope.kind, "dead-letter"


def _problem(
    envelope: Envelope, replies: list[AbstractIncomingMessage], dead: list[AbstractIncomingMessage]
) -> str | None:
    if envelope.valid:
        if dead:
            reason = (dead[0].headers or {}).get(DEAD_LETTER_REASON_HEADER)
            return f"a valid request was dead-lettered ({reason!r})"
        if len(replies) != 1:
            return f"{len(replies)} replies instead of one"
        try:
            reply = decode_reply(replies[0].body)
        except ContractError as exc:
            return f"the reply breaks the contract: {exc}"
        if reply.originalMessageId != envelope.request_id:
            return "the reply names another request"
        return None
    if replies:
        return f"an invalid request got {len(replies)} replies"
    if len(dead) != 1:
        return f"{len(dead)} dead letters instead of one"
    if dead[0].body != envelope.body:
        return "the dead letter's body was changed"
    if (dead[0].headers or {}).get(DEAD_LETTER_REASON_HEADER) != ErrorCode.INVALID_MESSAGE:
        return f"dead letter without reason {ErrorCode.INVALID_MESSAGE}"
    return None
