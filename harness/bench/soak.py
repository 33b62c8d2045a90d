"""The soak: does the agent service's memory stay flat over tens of thousands of requests?

``harness bench --only soak --requests 50000``: one service (scripted model, latency 0),
requests from ever new contacts (as production sees them) published in chunks, a bounded
number outstanding so the queue never holds the whole soak. RSS is read at start, after the
warm-up, and every ``every`` requests after it; the growth per ``every`` requests is the slope
of a least-squares line through the samples after the warm-up (one sample alone is noise:
the allocator keeps freed pages, a collection cycle frees some).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aio_pika.abc import AbstractConnection, AbstractIncomingMessage

from agent_service.contract.messages import AgentRequest, TaskType
from agent_service.contract.topology import Topology
from harness.bench.procstat import peak_rss_mib, rss_mib
from harness.bench.runs import agent_service
from harness.broker.private_node import PrivateNode
from harness.message_factory import agent_request
from harness.namespaces import declared, run_prefix
from harness.queue_tools import publish_requests
from harness.waiting import wait_until

# What the issue allows: RSS growth per 10,000 requests after the warm-up.
LIMIT_MIB_PER_10K = 5.0
CHUNK = 500


@dataclass
class SoakRun:
    requests: int
    warm_up: int
    every: int
    concurrent_tasks: int = 5
    settings: dict[str, str] = field(default_factory=dict)
    rss_mib_at_start: float = 0.0
    rss_mib_after_warm_up: float = 0.0
    rss_mib_after: dict[int, float] = field(default_factory=dict)  # answered → MiB
    growth_mib_per_10k: float = 0.0
    peak_rss_mib: float = 0.0
    seconds: float = 0.0
    replies_per_second: float = 0.0

    @property
    def flat(self) -> bool:
        return self.growth_mib_per_10k < LIMIT_MIB_PER_10K


def soak_requests(first: int, count: int) -> list[AgentRequest]:
    """``count`` requests, the task types in turn, each from a contact of its own."""
    types = list(TaskType)
    return [
        agent_request(types[i % len(types)], phone=f"+2568{i:08d}")
        for i in range(first, first + count)
    ]


def growth_per_10k(samples: dict[int, float]) -> float:
    """MiB per 10,000 requests: the least-squares slope through (requests, MiB)."""
    if len(samples) < 2:
        return 0.0
    xs, ys = list(samples), list(samples.values())
    slope, _ = statistics.linear_regression(xs, ys)
    return slope * 10_000


class _Counter:
    """Counts distinct answered requests on the reply queue without keeping the replies (the
    bench's own memory must not be what grows)."""

    def __init__(self) -> None:
        self.answered: set[str] = set()
        self.changed = asyncio.Event()

    async def on_message(self, message: AbstractIncomingMessage) -> None:
        self.answered.add(json.loads(message.body)["originalMessageId"])
        self.changed.set()

    async def wait_for(self, count: int, timeout: float) -> None:
        await wait_until(
            lambda: len(self.answered) >= count,
            timeout=timeout,
            what=f"replies to {count} requests",
            state=lambda: f"{len(self.answered)} answered",
            changed=self.changed,
        )


async def soak_run(
    node: PrivateNode,
    connection: AbstractConnection,
    run: SoakRun,
    log_dir: Path,
    **settings: Any,
) -> SoakRun:
    run.settings = {k: str(v) for k, v in settings.items()}
    topology = Topology().renamed(run_prefix())
    counter = _Counter()
    async with (
        declared(connection, topology),
        agent_service(
            node.url, topology, run.concurrent_tasks, "0", log_dir, "soak", **settings
        ) as service,
    ):
        if service.pid is None:
            raise RuntimeError("the agent service is not running")
        pid = service.pid
        run.rss_mib_at_start = rss_mib(pid)
        consumer = await connection.channel()
        queue = await consumer.get_queue(topology.webhook_queue, ensure=False)
        await queue.consume(counter.on_message, no_ack=True)
        publisher = await connection.channel(publisher_confirms=True)
        began, published = time.monotonic(), 0
        total = run.warm_up + run.requests
        marks = {run.warm_up + k for k in range(run.every, run.requests + 1, run.every)}
        while published < total:
            # At most two chunks outstanding: the service never waits, the queue stays short.
            await counter.wait_for(published - CHUNK, timeout=120.0)
            step = min(CHUNK, total - published)
            await publish_requests(publisher, topology, soak_requests(published, step))
            published += step
            if published == run.warm_up or published in marks:
                await counter.wait_for(published, timeout=120.0)
                if published == run.warm_up:
                    run.rss_mib_after_warm_up = rss_mib(pid)
                else:
                    run.rss_mib_after[published - run.warm_up] = rss_mib(pid)
                _progress(f"soak: {published} answered, RSS {rss_mib(pid):.1f} MiB")
        await counter.wait_for(total, timeout=120.0)
        run.seconds = time.monotonic() - began
        run.replies_per_second = total / run.seconds if run.seconds else 0.0
        run.peak_rss_mib = peak_rss_mib(pid)
        await publisher.close()
        await consumer.close()
    samples = {0: run.rss_mib_after_warm_up, **run.rss_mib_after}
    run.growth_mib_per_10k = growth_per_10k(samples)
    return run


def render_soak(run: SoakRun) -> list[str]:
    after = ", ".join(f"{n}: {mib:.1f}" for n, mib in run.rss_mib_after.items())
    verdict = "flat" if run.flat else "GROWS"
    extra = f", {run.settings}" if run.settings else ""
    return [
        "",
        f"soak: {run.requests} requests after a warm-up of {run.warm_up}"
        f" ({run.concurrent_tasks} tasks, latency 0{extra}),"
        f" {run.replies_per_second:.0f} replies/s",
        f"  service RSS (MiB): at start {run.rss_mib_at_start:.1f}, after warm-up"
        f" {run.rss_mib_after_warm_up:.1f}; after N more requests {after};"
        f" peak {run.peak_rss_mib:.1f}",
        f"  growth {run.growth_mib_per_10k:.2f} MiB per 10,000 requests"
        f" (limit {LIMIT_MIB_PER_10K:g}): {verdict}",
    ]


def _progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)
