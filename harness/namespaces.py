"""Names for a run on a broker: production names on a broker the harness owns, a unique
prefix on a broker it does not (so nothing of anyone else's is touched), cleaned up after."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractConnection
from aiormq.exceptions import AMQPError

from agent_service.contract.topology import Topology, declare, delete
from harness.broker.base import Broker
from harness.waiting import wait_until


def run_prefix() -> str:
    return f"harness.{secrets.token_hex(4)}."


def topology_for(broker: Broker, base: Topology | None = None, **overrides: Any) -> Topology:
    topology = replace(base or Topology(), **overrides)
    owned = broker.kind in ("private", "container", "cluster")
    return topology if owned else topology.renamed(run_prefix())


@contextlib.asynccontextmanager
async def declared(connection: AbstractConnection, topology: Topology) -> AsyncIterator[Topology]:
    """Declare the topology for the block; delete all of it afterwards."""
    channel = await connection.channel()
    try:
        await declare(channel, topology)
        yield topology
    finally:
        cleanup = await _cleanup_channel(connection)
        await delete(cleanup, topology)
        await cleanup.close()
        if not channel.is_closed:
            await channel.close()


async def broker_with_topology(stack: contextlib.AsyncExitStack) -> tuple[Broker, Topology]:
    """A broker chosen as everywhere else (``choose_broker``) and the run's topology declared on
    it, both undone when ``stack`` closes: the start of every standalone rig."""
    import aio_pika

    from harness.broker import choose_broker  # the backends load on first use

    broker = await stack.enter_async_context(choose_broker())
    topology = topology_for(broker)
    connection = await aio_pika.connect_robust(broker.url, timeout=10)
    stack.push_async_callback(connection.close)
    await stack.enter_async_context(declared(connection, topology))
    return broker, topology


async def _cleanup_channel(connection: AbstractConnection) -> AbstractChannel:
    """A channel to delete on. A robust connection whose link dropped during the block
    reconnects within seconds: wait for it rather than leave the queues behind (and fail a test
    whose checks had passed, in its teardown)."""
    opened: list[AbstractChannel] = []

    async def channel_opened() -> bool:
        with contextlib.suppress(RuntimeError, ConnectionError, AMQPError):
            opened.append(await connection.channel())
            return True
        return False

    await wait_until(channel_opened, timeout=15, what="a channel to clean up on", interval=0.2)
    return opened[0]


@contextlib.asynccontextmanager
async def declared_on(
    url: str, topology: Topology, *, declare_first: bool = True
) -> AsyncIterator[Topology]:
    """The topology for the block, declared on a connection of its own (unless ``declare_first``
    is False), deleted afterwards on a new one: the broker may have restarted in between, taking
    the first connection with it, or be down (then there is nothing left to delete)."""
    import aio_pika

    if declare_first:
        async with await aio_pika.connect(url, timeout=10) as connection:
            await declare(await connection.channel(), topology)
    try:
        yield topology
    finally:
        with contextlib.suppress(Exception):
            async with await aio_pika.connect(url, timeout=10) as connection:
                await delete(await connection.channel(), topology)
