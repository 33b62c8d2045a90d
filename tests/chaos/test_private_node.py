"""On a private node: persistent confirmed messages survive restart and kill -9; expired and
rejected messages are dead-lettered with their x-death header."""

from __future__ import annotations

import asyncio
from typing import Any

import aio_pika
import pytest

from harness.broker import PrivateNode
from harness.pytest_plugin import TopologyFactory

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

COUNT = 200


async def _publish(url: str, queue: str, count: int) -> None:
    async with await aio_pika.connect(url) as connection:
        channel = await connection.channel(publisher_confirms=True)
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


async def _drain(url: str, queue: str) -> list[aio_pika.abc.AbstractIncomingMessage]:
    got = []
    async with await aio_pika.connect(url) as connection:
        q = await (await connection.channel()).get_queue(queue, ensure=False)
        while (message := await q.get(no_ack=True, fail=False)) is not None:
            got.append(message)
    return got


@pytest.mark.parametrize("fault", ["restart", "kill"])
async def test_durable_queue_keeps_confirmed_messages(
    controlled_node: PrivateNode, make_topology: TopologyFactory, fault: str
) -> None:
    topology = await make_topology()
    await _publish(controlled_node.url, topology.agent_queue, COUNT)
    if fault == "restart":
        await controlled_node.restart()
    else:
        await controlled_node.kill()
        assert not controlled_node.is_running()
        await controlled_node.start()
    bodies = sorted(int(m.body) for m in await _drain(controlled_node.url, topology.agent_queue))
    assert bodies == list(range(COUNT))


def _x_death(message: aio_pika.abc.AbstractIncomingMessage) -> dict[str, Any]:
    deaths = message.headers.get("x-death")
    assert isinstance(deaths, list) and deaths, message.headers
    death = deaths[0]
    assert isinstance(death, dict)
    return death


async def test_expired_message_lands_in_the_dead_letter_queue(
    private_node: PrivateNode, make_topology: TopologyFactory
) -> None:
    topology = await make_topology(agent_ttl_ms=200)
    await _publish(private_node.url, topology.agent_queue, 1)
    for _ in range(50):
        dead = await _drain(private_node.url, topology.dlx_agent)
        if dead:
            break
        await asyncio.sleep(0.1)
    assert [m.body for m in dead] == [b"0"]
    death = _x_death(dead[0])
    assert (death["queue"], death["reason"]) == (topology.agent_queue, "expired")
    assert death["exchange"] == ""


async def test_rejected_message_lands_in_the_dead_letter_queue(
    private_node: PrivateNode, make_topology: TopologyFactory
) -> None:
    topology = await make_topology()
    await _publish(private_node.url, topology.webhook_queue, 1)
    async with await aio_pika.connect(private_node.url) as connection:
        queue = await (await connection.channel()).get_queue(topology.webhook_queue, ensure=False)
        message = await queue.get(timeout=5)
        await message.reject(requeue=False)
    for _ in range(50):
        dead = await _drain(private_node.url, topology.dlx_webhook)
        if dead:
            break
        await asyncio.sleep(0.05)
    death = _x_death(dead[0])
    assert (death["queue"], death["reason"]) == (topology.webhook_queue, "rejected")
