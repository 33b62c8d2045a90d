"""On a three-node cluster the harness owns (one per session): a quorum queue keeps its
confirmed messages and gets a new leader when its leader is killed; the killed node rejoins;
the agent service given every node's URL moves to a live node when its own dies."""

from __future__ import annotations

import asyncio
import json
import secrets
from dataclasses import replace
from pathlib import Path

import aio_pika
import pytest

from agent_service.contract.topology import Topology
from agent_service.service import AgentService
from agent_service.testing import FakeEngine
from agent_service.transport.connection import connect_robust_any
from harness.agent_process import service_settings
from harness.broker import BrokerCluster, PrivateNode
from harness.message_factory import agent_request
from harness.namespaces import declared_on
from harness.queue_tools import ReplyCollector, publish_requests
from harness.waiting import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

COUNT = 100
QUORUM = {"x-queue-type": "quorum"}


async def _publish(url: str, queue: str, count: int) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
        await channel.declare_queue(queue, durable=True, arguments=QUORUM)
        await asyncio.gather(
            *(
                channel.default_exchange.publish(
                    aio_pika.Message(
                        str(i).encode(), delivery_mode=aio_pika.DeliveryMode.PERSISTENT
                    ),
                    routing_key=queue,
                )
                for i in range(count)
            )
        )


async def _drain(url: str, queue: str) -> list[int]:
    got = []
    async with await aio_pika.connect(url) as connection:
        q = await (await connection.channel()).get_queue(queue, ensure=False)
        while (message := await q.get(no_ack=True, fail=False, timeout=10)) is not None:
            got.append(int(message.body))
    return sorted(got)


async def test_three_nodes_form_one_cluster(broker_cluster: BrokerCluster) -> None:
    names = {node.name for node in broker_cluster.nodes}
    assert len(names) == 3
    assert await broker_cluster.running_node_names() == names
    assert len({node.port for node in broker_cluster.nodes}) == 3


async def test_killing_the_leader_elects_another_and_keeps_confirmed_messages(
    broker_cluster: BrokerCluster,
) -> None:
    queue = f"t{secrets.token_hex(3)}.quorum"
    first, *_ = broker_cluster.nodes
    await _publish(first.url, queue, COUNT)
    leader = await broker_cluster.wait_leader(queue)
    # NOTES.md: a quorum queue killed within about a second of its declaration can come back
    # leaderless; the publish above took longer than that, and every message is confirmed.
    await leader.kill()
    assert not leader.is_running()
    successor = await broker_cluster.wait_leader(queue, other_than=leader.name)
    assert successor.name != leader.name
    assert await _drain(successor.url, queue) == list(range(COUNT))


async def test_a_killed_node_rejoins_when_started(broker_cluster: BrokerCluster) -> None:
    # The fixture started the node the test before killed: on its old data, it is back in.
    assert all(node.is_running() for node in broker_cluster.nodes)
    assert await broker_cluster.running_node_names() == {n.name for n in broker_cluster.nodes}


async def test_the_agent_service_moves_to_a_live_node_when_its_node_dies(
    broker_cluster: BrokerCluster, tmp_path: Path
) -> None:
    first = broker_cluster.nodes[0]
    topology = replace(
        Topology(profile="quorum"), agent_retry_delays_ms=(1000,), webhook_retry_delays_ms=(1000,)
    ).renamed(f"t{secrets.token_hex(3)}.")
    # Declared through the first node, which so leads the queues: its death moves the leaders.
    async with declared_on(first.url, topology):
        settings = service_settings(
            first.url,
            topology,
            rabbitmq_urls=",".join(broker_cluster.urls),
            agent_state_dir=str(tmp_path),
            reconnect_interval=0.5,
        )
        client = await connect_robust_any(broker_cluster.urls[1:], reconnect_interval=0.5)
        async with client, AgentService(settings, FakeEngine()) as service:
            assert await _connections_on(first) == ["agent-service"]
            channel = await client.channel(publisher_confirms=True)
            async with ReplyCollector(client, topology.webhook_queue) as replies:
                before, after = agent_request(), agent_request()
                await publish_requests(channel, topology, [before])
                await replies.wait_for([before.messageId], 30)
                await first.kill()
                await publish_requests(channel, topology, [after], retry_for=30)
                got = await replies.wait_for([after.messageId], 60)
            assert [r.originalMessageId for r in got[after.messageId]] == [after.messageId]
            await wait_until(service.ready, timeout=30, what="the service ready again")


async def _connections_on(node: PrivateNode) -> list[str]:
    """The names of the client connections to ``node`` itself (by its AMQP port)."""
    out = await node.rabbitmqctl(
        "list_connections", "port", "client_properties", "--formatter", "json", "-q"
    )
    names = []
    for row in json.loads(out):
        properties = {name: value for name, _type, value in row["client_properties"]}
        if row["port"] == node.port:
            names.append(str(properties.get("connection_name")))
    return names
