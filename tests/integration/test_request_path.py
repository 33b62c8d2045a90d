"""The request path against a real broker: a queue deleted under the service, a poison request
that kills the service on every delivery, and a cancellation that is not a shutdown."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aio_pika
import aiormq
import pytest
from aio_pika.abc import AbstractRobustConnection

from agent_service.contract import AgentRequest, ReplyStatus, TaskType, Topology
from agent_service.contract.amqp import DEAD_LETTER_DETAIL_HEADER, DEAD_LETTER_REASON_HEADER
from agent_service.contract.topology import declare
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.replies import success_reply
from agent_service.service import AgentService
from agent_service.testing import FakeEngine
from agent_service.transport.publisher import AmqpOutlet
from harness.agent_process import AgentServiceProcess
from harness.broker import Broker
from harness.message_factory import agent_request
from harness.pytest_plugin import ServiceFactory, TopologyFactory
from harness.queue_tools import ReplyCollector, drain, publish_requests, queue_depth
from harness.waiting import wait_until

pytestmark = pytest.mark.e2e


def sample(service: AgentService, name: str, **labels: str) -> float:
    return service.metrics.registry.get_sample_value(name, labels or None) or 0.0


async def publish(
    connection: AbstractRobustConnection, topology: Topology, *requests: AgentRequest
):
    channel = await connection.channel(publisher_confirms=True)
    await publish_requests(channel, topology, requests)
    await channel.close()


async def test_a_deleted_wb_queue_keeps_the_request_until_it_is_declared_again(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology()
    service = await start_agent_service(topology)
    channel = await amqp_connection.channel()
    await channel.queue_delete(topology.webhook_queue)
    request = agent_request(TaskType.ORDER)
    await publish(amqp_connection, topology, request)

    async def returned() -> bool:
        return (
            sample(service, "agent_publish_returned_total", destination=topology.webhook_queue) >= 2
        )

    await wait_until(returned, timeout=20, what="the reply's publish was returned")
    assert not service.ready()  # /readyz answers 503 while replies cannot be delivered
    assert sample(service, "agent_messages_published_total", status="success") == 0
    assert await queue_depth(amqp_connection, topology.dlx_agent) == 0
    # Declared again, by anyone (here: the test, as the Node service would at its start).
    await declare(channel, topology)
    async with ReplyCollector(amqp_connection, topology.webhook_queue) as collector:
        replies = await collector.wait_for([request.messageId], timeout=40)
        await wait_until(
            lambda: _drained(amqp_connection, topology), timeout=10, what="ag_queue drained"
        )
    assert [r.status for r in replies[request.messageId]] == [ReplyStatus.SUCCESS]
    assert len(collector.messages) == 1
    assert service.ready()
    assert sample(service, "agent_messages_published_total", status="success") == 1


async def _drained(connection: AbstractRobustConnection, topology: Topology) -> bool:
    return await queue_depth(connection, topology.agent_queue) == 0


async def test_a_deleted_retry_queue_keeps_the_retried_request(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    topology = await make_topology(agent_retry_delays_ms=(100, 100, 100))
    service = await start_agent_service(topology)
    channel = await amqp_connection.channel()
    await channel.queue_delete(topology.agent_retry_queue(1))
    request = agent_request(TaskType.CONVERSATION, "Hello [[fail:transient]]")
    await publish(amqp_connection, topology, request)
    retry_queue = topology.agent_retry_queue(1)

    async def returned() -> bool:
        return sample(service, "agent_publish_returned_total", destination=retry_queue) >= 1

    await wait_until(returned, timeout=20, what="the retry's publish was returned")
    assert not service.ready()
    async with ReplyCollector(amqp_connection, topology.webhook_queue) as collector:
        await declare(channel, topology)
        replies = (await collector.wait_for([request.messageId], timeout=40))[request.messageId]
    # The request went round all three wait queues once they existed, then gave up.
    assert len(replies) == 1 and replies[0].error is not None
    assert replies[0].error.code == "MODEL_UNAVAILABLE"
    assert "after 3 retries" in replies[0].error.message
    assert service.ready()


async def test_a_stray_cancellation_hands_the_request_back_and_it_is_answered(
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
    amqp_connection: AbstractRobustConnection,
) -> None:
    calls = {"n": 0}

    def cancel_once(request: AgentRequest) -> AgentAnswer:
        calls["n"] += 1
        if calls["n"] == 1:
            raise asyncio.CancelledError  # from inside the agent, not aimed at the service
        return AgentAnswer(f"answer to {request.message.text}")

    topology = await make_topology()
    service = await start_agent_service(
        topology, engine=FakeEngine(cancel_once), concurrent_tasks=1
    )
    request = agent_request()
    async with ReplyCollector(amqp_connection, topology.webhook_queue) as collector:
        await publish(amqp_connection, topology, request)
        replies = await collector.wait_for([request.messageId], timeout=20)
        # The one slot is free again: a second request is answered too.
        second = agent_request()
        await publish(amqp_connection, topology, second)
        await collector.wait_for([second.messageId], timeout=20)
    assert len(replies[request.messageId]) == 1 and calls["n"] == 3
    assert sample(service, "agent_handed_back_total") == 1
    assert service.ready() and service.in_flight == 0


@pytest.mark.chaos
@pytest.mark.slow
async def test_a_request_that_kills_the_service_every_time_ends_in_dlx_agent(
    broker: Broker,
    make_topology: TopologyFactory,
    amqp_connection: AbstractRobustConnection,
    tmp_path: Path,
) -> None:
    topology = await make_topology()
    process = AgentServiceProcess(
        broker.url, topology, log_path=tmp_path / "agent.log", max_deliveries=3
    )
    poison = agent_request(TaskType.CONVERSATION, "hello [[crash]]")
    await process.start()
    await publish(amqp_connection, topology, poison)
    exits = []
    try:
        for _ in range(3):
            exits.append(await process.wait_exit(30))
            await process.start(wait_ready=False)  # the broker redelivers to the new process
        dead: list[aio_pika.abc.AbstractIncomingMessage] = []

        async def dead_lettered() -> bool:
            dead.extend(await drain(amqp_connection, topology.dlx_agent))
            return bool(dead)

        await wait_until(dead_lettered, timeout=30, what="the poison request reached dlx_agent")
        healthy = agent_request(TaskType.ORDER)
        async with ReplyCollector(amqp_connection, topology.webhook_queue) as collector:
            await publish(amqp_connection, topology, healthy)
            await collector.wait_for([healthy.messageId], timeout=30)
    finally:
        await process.terminate()
    assert exits == [-9, -9, -9]  # three deliveries, three SIGKILLs
    assert [m.message_id for m in dead] == [poison.messageId]
    headers = dead[0].headers or {}
    assert headers[DEAD_LETTER_REASON_HEADER] == "MAX_DELIVERIES"
    assert "delivered 3 times" in str(headers[DEAD_LETTER_DETAIL_HEADER])
    assert poison.messageId.encode() in dead[0].body
    assert set(collector.replies) == {healthy.messageId}  # the poison got no reply


async def test_a_nacked_reply_goes_out_on_a_fresh_channel_next_time(
    make_topology: TopologyFactory, amqp_connection: AbstractRobustConnection
) -> None:
    # RabbitMQ 3.10 nacks, for good, the publishes of a channel whose quorum-queue client
    # was made while the queue record named a dead leader (the agent service's replies after
    # its node's kill). A nack is made here with a full reject-publish queue.
    topology = await make_topology(declared=False)
    setup = await amqp_connection.channel()
    full = {"x-max-length": 1, "x-overflow": "reject-publish"}
    queue = await setup.declare_queue(topology.webhook_queue, durable=True, arguments=full)
    opened: list[aio_pika.abc.AbstractChannel] = []

    async def open_channel() -> aio_pika.abc.AbstractChannel:
        opened.append(await amqp_connection.channel(publisher_confirms=True))
        return opened[-1]

    outlet = AmqpOutlet(open_channel, topology)
    replies = [
        success_reply(agent_request(TaskType.ORDER), AgentAnswer(text="ok"), 0.1) for _ in range(3)
    ]
    await outlet.publish_reply(replies[0])
    with pytest.raises(aiormq.exceptions.DeliveryError):
        await outlet.publish_reply(replies[1])  # the queue is full: nacked
    await queue.purge()
    await outlet.publish_reply(replies[2])
    assert len(opened) == 2 and opened[0].is_closed
    got = await drain(amqp_connection, topology.webhook_queue)
    assert [m.message_id for m in got] == [replies[2].messageId]
    await queue.delete(if_unused=False, if_empty=False)
