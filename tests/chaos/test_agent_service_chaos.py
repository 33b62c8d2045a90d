"""The agent service under faults: broker restart and kill -9 with requests in flight, and
SIGTERM during work. The service process is never restarted."""

from __future__ import annotations

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
from harness.queue_tools import ReplyCollector, drain, publish_requests, queue_depth
from harness.waiting import wait_until

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
        # Each fault is placed by an event, not by time: some replies in wb_queue (durable,
        # persistent) while most requests of the batch are still queued or in flight.
        await publish_requests(channel, topology, requests[:20])
        await _replies_at_least(connection, topology.webhook_queue, 3)
        await controlled_node.restart()
        await publish_requests(channel, topology, requests[20:], retry_for=20)
        await _replies_at_least(connection, topology.webhook_queue, 23)
        await controlled_node.kill()
        await controlled_node.start()
        # Read them all after the faults.
        replies: dict[str, set[str]] = {}

        async def all_answered() -> bool:
            with contextlib.suppress(Exception):  # the test's own link may still reconnect
                for message in await drain(connection, topology.webhook_queue):
                    replies.setdefault(message.correlation_id or "", set()).add(
                        message.message_id or ""
                    )
            return set(replies) == set(ids)

        with contextlib.suppress(TimeoutError):
            await wait_until(all_answered, timeout=60, what="every request answered", interval=0.3)
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
            await wait_until(  # a first batch answered, the others queued or in flight
                lambda: len(collector.replies) >= 3, timeout=60, what="3 replies"
            )
            code = await process.terminate()
        assert code == 0, (tmp_path / "service.log").read_text()[-2000:]
        assert pid is not None
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)

        async def settled() -> bool:  # every request answered (and received) or back in the queue
            waiting = await queue_depth(amqp_connection, topology.agent_queue)
            return len(collector.replies) + waiting >= len(requests)

        with contextlib.suppress(TimeoutError):
            await wait_until(settled, timeout=10, what="replies received, the rest queued")
        answered = set(collector.replies)
    queued = {m.message_id for m in await drain(amqp_connection, topology.agent_queue)}
    ids = {r.messageId for r in requests}
    assert answered, "some requests should have been answered before SIGTERM"
    assert queued, "some requests should still be waiting in ag_queue"
    assert answered | queued == ids, f"lost: {ids - answered - queued}"


async def _replies_at_least(
    connection: aio_pika.abc.AbstractConnection, queue: str, n: int
) -> None:
    async def enough() -> bool:
        with contextlib.suppress(Exception):  # the link may be reconnecting after a fault
            return await queue_depth(connection, queue) >= n
        return False

    await wait_until(enough, timeout=60, what=f"{n} replies in {queue}", interval=0.1)
