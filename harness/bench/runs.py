"""The bench's measurements: a backlog drained, memory over many requests, broker recoveries.

Each run gets its own queue names on the bench's private node; the agent service runs as its
own process (scripted model, LOG_LEVEL=WARNING) and this process publishes and collects.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aio_pika
import psycopg
from aio_pika.abc import AbstractConnection

from agent_service.contract.messages import AgentRequest, TaskType
from agent_service.contract.topology import Profile, Topology
from harness.agent_process import AgentServiceProcess
from harness.bench.procstat import cpu_seconds, peak_rss_mib, rss_mib
from harness.broker.cluster import BrokerCluster
from harness.broker.private_node import PrivateNode
from harness.message_factory import agent_request
from harness.namespaces import declared, declared_on, run_prefix
from harness.postgres import ThrowawayDatabase
from harness.queue_tools import ReplyCollector, publish_requests
from harness.report import percentile


@dataclass
class BacklogRun:
    """N requests queued before the service starts; timed from the first reply to the last."""

    name: str
    concurrent_tasks: int
    model_latency: str
    requests: int
    seconds: float = 0.0
    replies_per_second: float = 0.0
    # agentMetadata.processingTime: the service's own time per request (agent and model calls).
    processing_mean: float = 0.0
    processing_p95: float = 0.0
    # From publish to reply: with the backlog published before the service starts, this is
    # mostly the wait in the queue (and the service's start); not a per-request latency.
    publish_to_reply_mean: float = 0.0
    publish_to_reply_p95: float = 0.0
    service_cpu_ms_per_reply: float = 0.0
    statuses: dict[str, int] = field(default_factory=dict)
    model: str = "scripted"  # or "gemini-fake": the production model path
    replicas: int = 1
    # A PostgreSQL server: the replicas share their state in a database of the run's own
    # there (DATABASE_URL). None: the embedded default (SQLite file, in-process dedup).
    postgres: str | None = None
    # PostgreSQL transactions per reply (autocommit: one per statement, so round trips).
    database_round_trips_per_reply: float = 0.0
    # The services are started (and consuming) before the backlog is published.
    warm: bool = False
    # Every reply's processingTime (seconds), for distributions (harness bench --capacity).
    processing_times: list[float] = field(default_factory=list, repr=False)
    # TOPOLOGY_PROFILE: classic, or quorum (replicated queues; measured on a 3-node cluster).
    profile: Profile = "classic"


@dataclass
class MemoryRun:
    requests: int
    settings: dict[str, str] = field(default_factory=dict)  # beyond the service's defaults
    rss_mib_at_start: float = 0.0
    rss_mib_after: dict[int, float] = field(default_factory=dict)  # requests answered → MiB
    peak_rss_mib: float = 0.0


@dataclass
class RecoveryRun:
    """A broker restart (or kill -9 and start) while the service consumes."""

    how: str
    broker_seconds: float = 0.0  # the restart() call, or kill() + start()
    first_reply_from_call: float = 0.0
    first_reply_from_ready: float = 0.0


def _pid(service: AgentServiceProcess) -> int:
    if service.pid is None:
        raise RuntimeError("the agent service is not running")
    return service.pid


def _mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else 0.0


def make_requests(n: int) -> list[AgentRequest]:
    """The four task types in turn, each request from its own phone number."""
    types = list(TaskType)
    return [agent_request(types[i % len(types)], phone=f"+2567{i:08d}") for i in range(n)]


def agent_service(
    url: str,
    topology: Topology,
    tasks: int,
    latency: str,
    log_dir: Path,
    name: str,
    **settings: Any,
) -> AgentServiceProcess:
    """The service as a child process (not started: ``async with`` it); ``settings`` by name."""
    log_path = log_dir / f"{name.replace(' ', '-')}-{tasks}.log"
    return AgentServiceProcess(
        url,
        topology,
        log_path=log_path,
        concurrent_tasks=tasks,
        scripted_latency=latency,
        log_level="WARNING",
        **settings,
    )


async def backlog_run(
    node: PrivateNode | BrokerCluster,
    connection: AbstractConnection,
    run: BacklogRun,
    log_dir: Path,
    **settings: Any,
) -> BacklogRun:
    topology = replace(Topology(), profile=run.profile).renamed(run_prefix())
    requests = make_requests(run.requests)
    published = {r.messageId: r.timestamp / 1000 for r in requests}

    async def publish_backlog(backlog: list[AgentRequest]) -> None:
        channel = await connection.channel(publisher_confirms=True)
        await publish_requests(channel, topology, backlog)
        await channel.close()

    async with declared(connection, topology), contextlib.AsyncExitStack() as stack:
        if not run.warm:
            await publish_backlog(requests)
        if run.postgres is not None:
            database = await stack.enter_async_context(ThrowawayDatabase(run.postgres))
            settings = {**settings, "database_url": database.url}

            async def count_after_the_services() -> None:
                # Runs once the services have stopped (they are entered later, so they exit
                # first): a backend that exits reports its counts, an idle one may hold them.
                commits_after.append(await _commits(database.url, settle=1.0))

            stack.push_async_callback(count_after_the_services)
        state_dir = Path(tempfile.mkdtemp(prefix="bench-state-", dir=log_dir))
        services = [
            agent_service(
                node.url,
                topology,
                run.concurrent_tasks,
                run.model_latency,
                log_dir,
                f"{run.name}-{run.replicas}-{index}",
                state_dir=state_dir,
                **settings,
            )
            for index in range(run.replicas)
        ]
        cpu_at_first: list[float] = []
        commits_after: list[int] = []

        def first_reply() -> None:
            cpu_at_first.append(sum(cpu_seconds(_pid(s)) for s in services if s.pid))

        # One first: it makes the schemas and seeds the data, the others find them.
        for service in services:
            await stack.enter_async_context(service)
        if run.warm:
            # A first request or so for every replica: what a cold process pays once (lazy
            # imports, first sessions) stays out of the figures, as it does for one replica.
            warm_up = make_requests(run.replicas * run.concurrent_tasks)
            async with ReplyCollector(connection, topology.webhook_queue) as warmed:
                await publish_backlog(warm_up)
                await warmed.wait_for_count(len(warm_up), timeout=60 + len(warm_up) * 2.0)
        replies = await stack.enter_async_context(
            ReplyCollector(connection, topology.webhook_queue)
        )
        # The first replies may arrive before the services report ready.
        replies.on_first_reply = first_reply
        # Read before the backlog is published (warm runs): live backends report late.
        commits_before = await _commits(settings["database_url"]) if run.postgres else 0
        if run.warm:
            # Every replica consumes before the first request: a fair share for each.
            published = {r.messageId: time.time() for r in requests}
            await publish_backlog(requests)
        await replies.wait_for_count(run.requests, timeout=60 + run.requests * 2.0)
        cpu_at_last = sum(cpu_seconds(_pid(s)) for s in services)
    if commits_after:
        run.database_round_trips_per_reply = (commits_after[0] - commits_before) / run.requests
    return summarize(run, replies, published, cpu_at_last - cpu_at_first[0])


async def _commits(database_url: str, settle: float = 11.0) -> int:
    """Transactions committed in the database so far. PostgreSQL 15 publishes a backend's
    counts when it goes idle, at the latest after 10 s (PGSTAT_IDLE_INTERVAL), and when it
    exits: read 11 s after the last work of live backends, or a second after they exited."""
    await asyncio.sleep(settle)
    async with await psycopg.AsyncConnection.connect(database_url, autocommit=True) as conn:
        cursor = await conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        )
        row = await cursor.fetchone()
        # This very query is a transaction too: not the service's.
        return int(row[0]) - 1 if row else 0


def summarize(
    run: BacklogRun, replies: ReplyCollector, published: dict[str, float], cpu: float
) -> BacklogRun:
    first = replies.first_replies()
    arrivals = sorted(t for t, _ in first.values())
    run.seconds = arrivals[-1] - arrivals[0]
    run.replies_per_second = (len(arrivals) - 1) / run.seconds if run.seconds else 0.0
    processing = [r.agentMetadata.processingTime for _, r in first.values()]
    run.processing_mean = _mean(processing)
    run.processing_times = processing
    run.processing_p95 = percentile(processing, 95) or 0.0
    # Wall clock on both sides (a request's timestamp is set just before it is published).
    offset = time.time() - time.monotonic()
    waited = [t + offset - published[i] for i, (t, _) in first.items()]
    run.publish_to_reply_mean = _mean(waited)
    run.publish_to_reply_p95 = percentile(waited, 95) or 0.0
    run.service_cpu_ms_per_reply = 1000 * cpu / max(1, len(arrivals) - 1)
    for _, reply in first.values():
        run.statuses[reply.status.value] = run.statuses.get(reply.status.value, 0) + 1
    return run


async def memory_run(
    node: PrivateNode, connection: AbstractConnection, total: int, log_dir: Path, **settings: Any
) -> MemoryRun:
    """RSS of an idle, ready service, then after every 1,000 requests (latency 0)."""
    result = MemoryRun(total, {k: str(v) for k, v in settings.items()})
    topology = Topology().renamed(run_prefix())
    async with (
        declared(connection, topology),
        ReplyCollector(connection, topology.webhook_queue) as replies,
        agent_service(node.url, topology, 5, "0", log_dir, "memory", **settings) as service,
    ):
        pid = _pid(service)
        result.rss_mib_at_start = rss_mib(pid)
        channel = await connection.channel(publisher_confirms=True)
        step = min(1000, total)
        for done in range(step, total + 1, step):
            await publish_requests(channel, topology, make_requests(step))
            await replies.wait_for_count(done, timeout=60 + step * 2.0)
            result.rss_mib_after[done] = rss_mib(pid)
        result.peak_rss_mib = peak_rss_mib(pid)
        await channel.close()
    return result


async def _first_reply(url: str, topology: Topology, timeout: float = 60.0) -> float:
    """Publish one request on a new connection; the monotonic time its reply arrived."""
    connection = await aio_pika.connect(url, timeout=10)
    async with connection, ReplyCollector(connection, topology.webhook_queue) as replies:
        channel = await connection.channel(publisher_confirms=True)
        request = make_requests(1)[0]
        await publish_requests(channel, topology, [request], retry_for=10.0)
        await replies.wait_for_count(1, timeout)
        return replies.arrived[request.messageId]


async def recovery_runs(node: PrivateNode, rounds: int, log_dir: Path) -> list[RecoveryRun]:
    """Restart the broker (then kill -9 and start it) under a consuming service, ``rounds``
    times each, and time the first reply to a request published once the node answers."""
    topology = Topology().renamed(run_prefix())
    results = []
    async with (
        declared_on(node.url, topology),
        agent_service(node.url, topology, 5, "0", log_dir, "recovery"),
    ):
        await _first_reply(node.url, topology)  # the service consumes before the fault
        for how in ["restart"] * rounds + ["kill -9 + start"] * rounds:
            run = RecoveryRun(how)
            called = time.monotonic()
            if how == "restart":
                await node.restart()
            else:
                await node.kill()
                await node.start()
            ready = time.monotonic()
            first = await _first_reply(node.url, topology)
            run.broker_seconds = ready - called
            run.first_reply_from_call = first - called
            run.first_reply_from_ready = first - ready
            results.append(run)
    return results
