"""Changing a queue's arguments on a live broker: drain it, redeclare it, refill it.

RabbitMQ cannot change a queue's arguments (``x-message-ttl``, ``x-dead-letter-exchange``, ...):
a declare with other arguments fails with 406, so a new retry delay or TTL stops both services
at start. For every queue that differs from the topology, ``migrate``:

1. refuses if anything consumes it (stop the services first: their consumers would see the
   queue vanish, and a producer publishing meanwhile would lose its message, see below);
2. moves its messages, one by one with publisher confirms, into a holding queue
   ``<name>.migrating`` (durable, no arguments, so nothing expires or dead-letters there);
3. deletes the queue (only if it is empty and unused: a message that arrived meanwhile makes
   it move again), declares it with the topology's arguments and binds it again;
4. moves the messages back and deletes the holding queue.

Each message keeps its body and properties (headers, message id, timestamp, ...); a message
waits its new TTL from the moment it comes back. A holding queue left by an interrupted run is
found and emptied by the next run, so running ``migrate`` again finishes the job. Publishing
to the queue while it is being replaced is not safe (a publish without ``mandatory`` to a
missing queue is dropped by the broker): stop the producers too, or use a new queue name
(docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import aio_pika
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aiormq.exceptions import ChannelPreconditionFailed

from agent_service.contract.topology import QueueSpec, Topology
from harness.topology_check import Drift, exists, verify
from harness.topology_provision import declare_missing

HOLDING_SUFFIX = ".migrating"
_DELETE_ATTEMPTS = 5


class MigrationRefused(Exception):
    """A queue cannot be migrated now; the message says why and what to do."""


@dataclass
class Migration:
    """What ``migrate`` found, did, or (with ``dry_run``) would do."""

    changed: dict[str, int] = field(default_factory=dict)  # queue -> messages carried over
    drifts: list[Drift] = field(default_factory=list)  # before the migration
    created: list[str] = field(default_factory=list)  # missing things declared
    remaining: list[Drift] = field(default_factory=list)  # after: empty when it worked


async def migrate(
    connection: AbstractConnection,
    topology: Topology,
    *,
    dry_run: bool = False,
    say: Callable[[str], None] = print,
) -> Migration:
    """Make the broker agree with ``topology``, carrying every message over."""
    result = Migration(drifts=await verify(connection, topology))
    exchanges = sorted({d.name for d in result.drifts if d.kind == "exchange"})
    exchanges = [n for n in exchanges if n not in _missing(result.drifts)]
    if exchanges:
        raise MigrationRefused(
            f"exchange {', '.join(exchanges)} differs: exchanges hold no messages, delete and"
            " declare them by hand (then `harness topology declare`)"
        )
    queues = [topology.queue(name) for name in _differing_queues(result.drifts)]
    for spec in queues:
        await _refuse_if_consumed(connection, spec.name)
    for spec in queues:
        if dry_run:
            depth = await _depth(connection, spec.name)
            say(f"would migrate queue '{spec.name}' ({depth} messages) to {spec.arguments}")
            continue
        result.changed[spec.name] = await _migrate_queue(connection, spec, topology, say)
    if dry_run:
        return result
    declared = await declare_missing(connection, topology)
    result.created = declared.created
    for spec in topology.queues():
        carried = await _empty_holding_queue(connection, spec.name)
        if carried:
            result.changed[spec.name] = result.changed.get(spec.name, 0) + carried
            say(f"queue '{spec.name}': {carried} messages back from an interrupted migration")
    result.remaining = await verify(connection, topology)
    return result


async def _empty_holding_queue(connection: AbstractConnection, name: str) -> int:
    """Messages left in ``name``'s holding queue by an interrupted run, moved back."""
    holding = name + HOLDING_SUFFIX
    if not await exists(connection, "queue", holding):
        return 0
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    moved = await _move(channel, holding, name)
    await channel.queue_delete(holding, if_unused=True, if_empty=True)
    await channel.close()
    return moved


def _missing(drifts: list[Drift]) -> set[str]:
    return {d.name for d in drifts if d.setting == "missing"}


def _differing_queues(drifts: list[Drift]) -> list[str]:
    names: list[str] = []
    for d in drifts:
        if d.kind == "queue" and d.setting != "missing" and d.name not in names:
            names.append(d.name)
    return names


async def _depth(connection: AbstractConnection, name: str) -> int:
    channel = await connection.channel()
    queue = await channel.declare_queue(name, passive=True)
    await channel.close()
    return int(queue.declaration_result.message_count or 0)


async def _refuse_if_consumed(connection: AbstractConnection, name: str) -> None:
    channel = await connection.channel()
    queue = await channel.declare_queue(name, passive=True)
    await channel.close()
    consumers = int(queue.declaration_result.consumer_count or 0)
    if consumers:
        raise MigrationRefused(
            f"queue '{name}' has {consumers} consumer(s): stop the services that consume it"
            " (agent-service for the agent queue, the Node service for the webhook queue), and"
            " the ones that publish to it, then run migrate again"
        )


async def _migrate_queue(
    connection: AbstractConnection, spec: QueueSpec, topology: Topology, say: Callable[[str], None]
) -> int:
    holding = spec.name + HOLDING_SUFFIX
    channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    await channel.declare_queue(holding, durable=True)
    for _ in range(_DELETE_ATTEMPTS):
        await _move(channel, spec.name, holding)
        try:
            # if_empty and if_unused: a message or consumer that came meanwhile is not lost.
            await channel.queue_delete(spec.name, if_unused=True, if_empty=True)
            break
        except ChannelPreconditionFailed:
            channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
    else:
        raise MigrationRefused(f"queue '{spec.name}' kept receiving messages: stop its producers")
    queue = await channel.declare_queue(
        spec.name, durable=spec.durable, auto_delete=spec.auto_delete, arguments=spec.arguments
    )
    for binding in topology.bindings():
        if binding.queue == spec.name and await exists(connection, "exchange", binding.exchange):
            await queue.bind(binding.exchange, routing_key=binding.routing_key)
    await channel.close()
    back = await _empty_holding_queue(connection, spec.name)
    say(f"migrated queue '{spec.name}' to {spec.arguments}: {back} messages carried over")
    return back


async def _move(channel: AbstractChannel, source: str, target: str) -> int:
    """Every message of ``source`` into ``target``: each acked only after its copy is
    confirmed, so a crash in between duplicates a message at worst, never loses one."""
    queue = await channel.declare_queue(source, passive=True)
    moved = 0
    while True:
        message = await queue.get(no_ack=False, fail=False)
        if message is None:
            return moved
        await channel.default_exchange.publish(copy_of(message), routing_key=target, mandatory=True)
        await message.ack()
        moved += 1


def copy_of(message: AbstractIncomingMessage) -> aio_pika.Message:
    """The same body and properties (user_id left out: the broker checks it against the
    connection's user)."""
    return aio_pika.Message(
        message.body,
        headers=dict(message.headers or {}),
        content_type=message.content_type,
        content_encoding=message.content_encoding,
        delivery_mode=message.delivery_mode or aio_pika.DeliveryMode.PERSISTENT,
        priority=message.priority,
        correlation_id=message.correlation_id,
        reply_to=message.reply_to,
        expiration=message.expiration,
        message_id=message.message_id,
        timestamp=message.timestamp,
        type=message.type,
        app_id=message.app_id,
    )
