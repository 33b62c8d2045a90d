"""Provisioning a live broker: where to connect, and declaring only what is missing.

``declare_missing`` creates the queues, exchanges and bindings of a topology that the broker
does not have, and leaves everything that exists as it is, even when it differs (a different
queue is reported by ``verify`` afterwards, never changed: ``harness topology migrate`` does
that, on purpose). Both the operator's command and the tests use it.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import aio_pika
from aio_pika.abc import AbstractConnection
from aiormq.exceptions import ChannelPreconditionFailed

from agent_service.contract.topology import Topology
from harness.topology_check import Drift, exists, verify


@dataclass(frozen=True)
class Target:
    """A broker to provision: its URL (vhost included) and TLS context, and the topology."""

    url: str
    topology: Topology
    ssl_context: ssl.SSLContext | None = None

    async def connect(self) -> AbstractConnection:
        return await aio_pika.connect(self.url, timeout=10, ssl_context=self.ssl_context)


def with_vhost(url: str, vhost: str) -> str:
    """``url`` with its virtual host replaced; ``/`` is written ``%2F`` as AMQP URLs need."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def vhost_of(url: str) -> str:
    """The virtual host an AMQP URL names (an empty path is RabbitMQ's default ``/``)."""
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


@dataclass
class Declared:
    """What ``declare_missing`` did, and what it found different and left alone."""

    created: list[str] = field(default_factory=list)  # "queue 'ag_queue'", ...
    kept: list[str] = field(default_factory=list)
    drifts: list[Drift] = field(default_factory=list)


async def declare_missing(connection: AbstractConnection, topology: Topology) -> Declared:
    """Create what the broker lacks; change nothing it has. Returns what was done and found."""
    result = Declared()
    channel = await connection.channel()
    for ex in topology.exchanges():
        label = f"exchange '{ex.name}'"
        if await exists(connection, "exchange", ex.name):
            result.kept.append(label)
            continue
        await channel.declare_exchange(
            ex.name, aio_pika.ExchangeType(ex.type), durable=ex.durable, auto_delete=ex.auto_delete
        )
        result.created.append(label)
    for q in topology.queues():
        label = f"queue '{q.name}'"
        if await exists(connection, "queue", q.name):
            result.kept.append(label)
            continue
        try:
            await channel.declare_queue(
                q.name, durable=q.durable, auto_delete=q.auto_delete, arguments=q.arguments
            )
        except ChannelPreconditionFailed:
            # Someone declared it with other arguments since we looked: it exists, so it is
            # kept, and verify below says how it differs.
            channel = await connection.channel()
            result.kept.append(label)
            continue
        result.created.append(label)
    for b in topology.bindings():
        # A binding that exists already is left as it is by queue.bind: binding is additive.
        queue = await channel.declare_queue(b.queue, passive=True)
        await queue.bind(b.exchange, routing_key=b.routing_key)
    await channel.close()
    result.drifts = await verify(connection, topology)
    return result
