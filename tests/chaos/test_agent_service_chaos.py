"""The agent service under faults: broker restart and kill -9 with requests in flight, and
SIGTERM during work. The service process is never restarted."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path

import aio_pika
import pytest

from agent_service.contract import TaskType
from harness.agent_process import AgentServiceProcess
from harness.broker import PrivateNode
from harness.message_factory import agent_request
from harness.pytest_plugin import ServiceFactory, TopologyFactory
from harness.queue_tools import ReplyCollector, drain, publish_requests

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

TASKS = list(TaskType)


async def test_every_request_gets_one_reply_across_restart_and_kill(
    controlled_node: PrivateNode,
    make_topology: TopologyFactory,
    start_agent_service: ServiceFactory,
) -> None:
    topology = await make_topology()
    service = await start_agent_service(
        topology, concurrent_tasks=5, scripted_latency="0.2", rabbitmq_heartbeat=2
    )
    requests = [agent_request(TASKS[i % 4], phone=f"+2567000{i:05d}") for i in range(40)]
    ids = [r.messageId for r in requests]
    connection = await aio_pika.connect_robust(controlled_node.url, reconnect_interval=0.5)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        await publish_requests(channel, topology, requests[:20])
        await asyncio.sleep(0.5)  # some answered, some in flight
        await controlled_node.restart()
        await publish_requests(channel, topology, requests[20:], retry_for=20)
        await asyncio.sleep(0.5)
        await controlled_node.kill()
        await controlled_node.start()
        # Replies are durable and persistent: read them all after the faults.
        deadline = asyncio.get_running_loop().time() + 60
        replies: dict[str, set[str]] = {}
        messages: list[aio_pika.abc.AbstractIncomingMessage] = []
        while set(replies) != set(ids) and asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(Exception):  # the test's own link may still reconnect
                messages = await drain(connection, topology.webhook_queue)
            for message in messages:
                replies.setdefault(message.correlation_id or "", set()).add(
                    message.message_id or ""
                )
            await asyncio.sleep(0.3)
    assert set(replies) == set(ids), f"{len(set(ids) - set(replies))} requests unanswered"
    # At-least-once may repeat a reply, but never a different one: one reply id per request.
    assert all(len(reply_ids) == 1 for reply_ids in replies.values())
    assert service.ready()  # the same service object, never restarted, consuming again


async def test_sigterm_during_work_loses_no_request(
    broker: object,
    make_topology: TopologyFactory,
    amqp_connection: aio_pika.abc.AbstractRobustConnection,
    tmp_path: Path,
) -> None:
    topology = await make_topology()
    url = broker.url  # type: ignore[attr-defined]
    requests = [agent_request(TaskType.ORDER, phone=f"+2567100{i:05d}") for i in range(12)]
    process = AgentServiceProcess(
        url,
        topology,
        log_path=tmp_path / "service.log",
        concurrent_tasks=3,
        scripted_latency="0.5",
        shutdown_grace=0.3,
    )
    async with ReplyCollector(amqp_connection, topology.webhook_queue) as collector:
        async with process:
            pid = process.pid
            await publish_requests(
                await amqp_connection.channel(publisher_confirms=True), topology, requests
            )
            await asyncio.sleep(3.0)  # a first batch answered, a second in flight
            code = await process.terminate()
        assert code == 0, (tmp_path / "service.log").read_text()[-2000:]
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        await asyncio.sleep(0.3)
        answered = set(collector.replies)
    queued = {m.message_id for m in await drain(amqp_connection, topology.agent_queue)}
    ids = {r.messageId for r in requests}
    assert answered, "some requests should have been answered before SIGTERM"
    assert queued, "some requests should still be waiting in ag_queue"
    assert answered | queued == ids, f"lost: {ids - answered - queued}"
