"""The quorum profile (TOPOLOGY_PROFILE=quorum) on a live RabbitMQ 3.10 node: every argument is
accepted, shows on the broker and does what it is there for; verify names a profile mismatch."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import aio_pika
import pytest
from aio_pika.abc import AbstractRobustConnection

from agent_service.contract.topology import Topology
from harness.broker import PrivateNode
from harness.pytest_plugin import TopologyFactory
from harness.topology_check import Drift, verify
from harness.waiting import wait_until

pytestmark = pytest.mark.contract

AT_LEAST_ONCE = {"x-dead-letter-strategy": "at-least-once", "x-overflow": "reject-publish"}
# DESIGN.md section 9 and contracts/README.md, pinned: a change to these fails this test.
PRODUCTION_QUORUM = {
    "ag_queue": {
        "x-queue-type": "quorum",
        "x-message-ttl": 300000,
        "x-dead-letter-exchange": "dlx_agent",
        "x-delivery-limit": 10,
        **AT_LEAST_ONCE,
    },
    "wb_queue": {
        "x-queue-type": "quorum",
        "x-message-ttl": 60000,
        "x-dead-letter-exchange": "dlx_webhook",
        "x-delivery-limit": 10,
        **AT_LEAST_ONCE,
    },
    "dlx_agent": {"x-queue-type": "quorum"},
    "dlx_webhook": {"x-queue-type": "quorum"},
    "wb_queue.parking": {"x-queue-type": "quorum"},
    "ag_queue.retry.1": {
        "x-queue-type": "quorum",
        "x-message-ttl": 30000,
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "ag_queue",
        **AT_LEAST_ONCE,
    },
}


def test_the_quorum_profile_is_the_production_table() -> None:
    quorum = Topology(profile="quorum")
    assert {name: quorum.queue(name).arguments for name in PRODUCTION_QUORUM} == PRODUCTION_QUORUM
    assert all(q.durable and not q.auto_delete for q in quorum.queues())
    # The classic profile is what it was before the profiles existed: no x-queue-type.
    assert all("x-queue-type" not in q.arguments for q in Topology().queues())


async def test_every_quorum_argument_is_taken_by_a_live_node(
    private_node: PrivateNode, make_topology: TopologyFactory
) -> None:
    topology = await make_topology(profile="quorum")
    out = await private_node.rabbitmqctl(
        "list_queues", "name", "type", "arguments", "--formatter", "json", "-q"
    )
    rows = {row["name"]: row for row in json.loads(out)}
    for spec in topology.queues():
        row = rows[spec.name]
        assert row["type"] == "quorum", spec.name
        # rabbitmqctl's JSON lists each argument as [name, AMQP type, value].
        assert {name: value for name, _t, value in row["arguments"]} == spec.arguments


async def test_verify_names_a_classic_quorum_mismatch_both_ways(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    classic = await make_topology()
    quorum = replace(classic, profile="quorum")
    drifts = await verify(amqp_connection, quorum)
    assert Drift("queue", classic.agent_queue, "x-queue-type", "quorum", "classic") in drifts
    mismatch = next(d for d in drifts if d.setting == "x-queue-type")
    assert "classic/quorum profile mismatch" in str(mismatch)

    live_quorum = await make_topology(profile="quorum")
    drifts = await verify(amqp_connection, replace(live_quorum, profile="classic"))
    assert Drift("queue", live_quorum.agent_queue, "x-queue-type", "classic", "quorum") in drifts
    assert {d.name for d in drifts if d.setting == "x-queue-type"} == {
        q.name for q in live_quorum.queues()
    }


async def _publish(channel: aio_pika.abc.AbstractChannel, queue: str, body: bytes) -> None:
    await channel.default_exchange.publish(
        aio_pika.Message(body, delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=queue
    )


async def _depth(connection: AbstractRobustConnection, queue: str) -> int:
    channel = await connection.channel()
    declared = await channel.declare_queue(queue, passive=True)
    await channel.close()
    count = declared.declaration_result.message_count
    return int(count or 0)


async def test_delivery_limit_and_retry_wait_queues_work_on_quorum_queues(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    topology = await make_topology(profile="quorum", delivery_limit=2, agent_retry_delays_ms=(200,))
    channel = await amqp_connection.channel(publisher_confirms=True)
    # A poison message handed back on every delivery: the broker dead-letters it after 2.
    await _publish(channel, topology.agent_queue, b"poison")
    queue = await channel.declare_queue(topology.agent_queue, passive=True)
    for _ in range(3):
        message = await _get(queue)
        await message.nack(requeue=True)
    await wait_until(
        lambda: _depth(amqp_connection, topology.dlx_agent), timeout=10, what="the dead letter"
    )
    assert await _depth(amqp_connection, topology.agent_queue) == 0
    # A retry waits out its wait queue's TTL and comes back to ag_queue (at-least-once).
    await _publish(channel, topology.agent_retry_queue(1), b"retry")
    back = await _get(queue, timeout=10)
    assert back.body == b"retry"
    await back.ack()


async def _get(queue: aio_pika.abc.AbstractQueue, timeout: float = 5) -> Any:
    got: list[Any] = []

    async def arrived() -> bool:
        message = await queue.get(fail=False)
        if message is not None:
            got.append(message)
        return bool(got)

    await wait_until(arrived, timeout=timeout, what=f"a message in {queue.name}", interval=0.05)
    return got[0]
