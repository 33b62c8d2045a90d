"""The broker topology as data (DESIGN.md section 4), and declaring it with aio-pika.

Both services declare exactly this; the harness verifies a live broker against it and exports
it as a RabbitMQ definitions file. Tests build a renamed copy with short TTLs and delays.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import aio_pika
from aio_pika.abc import AbstractChannel


@dataclass(frozen=True)
class QueueSpec:
    name: str
    purpose: str
    arguments: dict[str, Any] = field(default_factory=dict)
    durable: bool = True
    auto_delete: bool = False


@dataclass(frozen=True)
class ExchangeSpec:
    name: str
    purpose: str
    type: str = "fanout"
    durable: bool = True
    auto_delete: bool = False


@dataclass(frozen=True)
class BindingSpec:
    exchange: str
    queue: str
    routing_key: str = ""


@dataclass(frozen=True)
class Topology:
    """Names and settings of every queue and exchange. Defaults are the production values."""

    agent_queue: str = "ag_queue"
    webhook_queue: str = "wb_queue"
    dlx_agent: str = "dlx_agent"
    dlx_webhook: str = "dlx_webhook"
    agent_ttl_ms: int = 300_000
    webhook_ttl_ms: int = 60_000
    # One wait queue per delay level (NOTES.md: per-message TTLs block each other in one queue).
    agent_retry_delays_ms: tuple[int, ...] = (30_000, 60_000, 120_000)
    webhook_retry_delays_ms: tuple[int, ...] = (30_000, 60_000, 120_000)
    agent_prefetch: int = 1
    webhook_prefetch: int = 10

    def renamed(self, prefix: str) -> Topology:
        """The same topology with every name prefixed (per-test isolation on a shared broker)."""
        return replace(
            self,
            agent_queue=prefix + self.agent_queue,
            webhook_queue=prefix + self.webhook_queue,
            dlx_agent=prefix + self.dlx_agent,
            dlx_webhook=prefix + self.dlx_webhook,
        )

    def agent_retry_queue(self, level: int) -> str:
        """The wait queue for retry ``level`` (1-based) of an agent request."""
        return f"{self.agent_queue}.retry.{level}"

    def webhook_retry_queue(self, level: int) -> str:
        return f"{self.webhook_queue}.retry.{level}"

    @property
    def webhook_parking(self) -> str:
        """Where the Node side parks a reply it gave up sending (with an admin alert)."""
        return f"{self.webhook_queue}.parking"

    def exchanges(self) -> list[ExchangeSpec]:
        return [
            ExchangeSpec(self.dlx_agent, "dead letters of the agent queue"),
            ExchangeSpec(self.dlx_webhook, "dead letters of the webhook queue"),
        ]

    def queues(self) -> list[QueueSpec]:
        queues = [
            QueueSpec(
                self.agent_queue,
                "AI requests from the Node service to the agent service",
                {"x-message-ttl": self.agent_ttl_ms, "x-dead-letter-exchange": self.dlx_agent},
            ),
            QueueSpec(
                self.webhook_queue,
                "agent replies from the agent service to the Node service",
                {"x-message-ttl": self.webhook_ttl_ms, "x-dead-letter-exchange": self.dlx_webhook},
            ),
            QueueSpec(self.dlx_agent, "rejected or expired agent requests"),
            QueueSpec(self.dlx_webhook, "rejected or expired replies"),
            QueueSpec(self.webhook_parking, "replies the Node side gave up sending"),
        ]
        queues += _wait_queues(self.agent_queue, self.agent_retry_delays_ms, self.agent_retry_queue)
        queues += _wait_queues(
            self.webhook_queue, self.webhook_retry_delays_ms, self.webhook_retry_queue
        )
        return queues

    def bindings(self) -> list[BindingSpec]:
        return [
            BindingSpec(self.dlx_agent, self.dlx_agent),
            BindingSpec(self.dlx_webhook, self.dlx_webhook),
        ]

    def queue(self, name: str) -> QueueSpec:
        for spec in self.queues():
            if spec.name == name:
                return spec
        raise KeyError(name)


def _wait_queues(target: str, delays_ms: tuple[int, ...], name_of: Any) -> list[QueueSpec]:
    # A message waits out the queue's TTL, then the default exchange routes it back to target.
    return [
        QueueSpec(
            name_of(level),
            f"retry {level} of {target}: waits {delay} ms, then returns to {target}",
            {
                "x-message-ttl": delay,
                "x-dead-letter-exchange": "",
                "x-dead-letter-routing-key": target,
            },
        )
        for level, delay in enumerate(delays_ms, start=1)
    ]


async def declare(channel: AbstractChannel, topology: Topology) -> None:
    """Declare every exchange, queue and binding (idempotent when the broker already agrees)."""
    exchanges = {}
    for ex in topology.exchanges():
        exchanges[ex.name] = await channel.declare_exchange(
            ex.name,
            aio_pika.ExchangeType(ex.type),
            durable=ex.durable,
            auto_delete=ex.auto_delete,
        )
    queues = {}
    for q in topology.queues():
        queues[q.name] = await channel.declare_queue(
            q.name, durable=q.durable, auto_delete=q.auto_delete, arguments=q.arguments
        )
    for b in topology.bindings():
        await queues[b.queue].bind(exchanges[b.exchange], routing_key=b.routing_key)


async def delete(channel: AbstractChannel, topology: Topology) -> None:
    """Remove everything the topology declares (for tests on a broker the harness owns)."""
    for q in topology.queues():
        await channel.queue_delete(q.name)
    for ex in topology.exchanges():
        await channel.exchange_delete(ex.name)
