"""The broker topology as data (DESIGN.md section 4), and declaring it with aio-pika.

Both services declare exactly this; the harness verifies a live broker against it and exports
it as a RabbitMQ definitions file. Tests build a renamed copy with short TTLs and delays.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any, Literal

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


Profile = Literal["classic", "quorum"]
PROFILES: tuple[Profile, ...] = ("classic", "quorum")

# At-least-once dead-lettering (quorum queues only): the queue keeps a dead letter until the
# dead-letter queue confirms it, instead of dropping it when that queue is down or full. RabbitMQ
# turns it on only together with overflow reject-publish (with the default drop-head it falls
# back to at-most-once, silently).
AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}


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
    # classic (the default) or quorum: replicated queues for a cluster (docs/scale-out.md).
    profile: Profile = "classic"
    # Quorum profile: deliveries of one message before the broker dead-letters it itself
    # (x-delivery-limit). Above MAX_DELIVERIES, so the agent service's own count, which gives
    # the reason, acts first; the broker's limit catches what the service cannot count.
    delivery_limit: int = 10

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
        work = self._work_arguments
        queues = [
            QueueSpec(
                self.agent_queue,
                "AI requests from the Node service to the agent service",
                work(self.agent_ttl_ms, self.dlx_agent),
            ),
            QueueSpec(
                self.webhook_queue,
                "agent replies from the agent service to the Node service",
                work(self.webhook_ttl_ms, self.dlx_webhook),
            ),
            QueueSpec(self.dlx_agent, "rejected or expired agent requests", self._typed({})),
            QueueSpec(self.dlx_webhook, "rejected or expired replies", self._typed({})),
            QueueSpec(
                self.webhook_parking, "replies the Node side gave up sending", self._typed({})
            ),
        ]
        for target, delays, name_of in (
            (self.agent_queue, self.agent_retry_delays_ms, self.agent_retry_queue),
            (self.webhook_queue, self.webhook_retry_delays_ms, self.webhook_retry_queue),
        ):
            queues += [
                replace(q, arguments=self._dead_lettering(q.arguments))
                for q in _wait_queues(target, delays, name_of)
            ]
        return queues

    def _work_arguments(self, ttl_ms: int, dlx: str) -> dict[str, Any]:
        arguments: dict[str, Any] = {"x-message-ttl": ttl_ms, "x-dead-letter-exchange": dlx}
        if self.profile == "quorum":
            arguments["x-delivery-limit"] = self.delivery_limit
        return self._dead_lettering(arguments)

    def _dead_lettering(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """A queue that dead-letters: at-least-once in the quorum profile."""
        return self._typed(arguments | (AT_LEAST_ONCE if self.profile == "quorum" else {}))

    def _typed(self, arguments: dict[str, Any]) -> dict[str, Any]:
        # The classic profile stays as it was (no x-queue-type): queues that clients and
        # definitions files declared before the profiles existed still match it.
        return {"x-queue-type": "quorum", **arguments} if self.profile == "quorum" else arguments

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
