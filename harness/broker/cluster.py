"""A RabbitMQ cluster for the harness: three private nodes joined into one, or a real one by URLs.

``async with BrokerCluster() as cluster:`` starts three ``PrivateNode``s side by side (each its
own node name, AMQP and distribution port and folder, one shared Erlang cookie and cluster
name), joins the second and third to the first with ``rabbitmqctl join_cluster``, and waits
until every node reports all three running. Each node can then be stopped, killed (SIGKILL)
and started on its own (``cluster.nodes[i]``), and ``leader_of`` names the node that leads a
quorum queue. Leaving stops every node and removes the folders; a start that fails half way
cleans up what it started before it raises; and a crashed test process leaves nothing
running, because every node is spawned with the parent-death signal ``PrivateNode`` uses.

``ExternalCluster`` is a real cluster reached by URLs (``HARNESS_BROKER_URLS``): never stopped
or changed, like ``ExternalBroker``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import time
from collections.abc import Coroutine, Iterable, Sequence
from contextlib import AsyncExitStack
from typing import Any, Self

from harness.broker.base import BrokerError, redact
from harness.broker.private_node import PrivateNode
from harness.broker.readiness import wait_until_ready
from harness.waiting import WaitTimeout, wait_until


class BrokerCluster:
    """``size`` private nodes in one cluster. ``url`` is a running node's; ``urls`` all of them,
    the list clients are given (RABBITMQ_URLS) so they can move when their node dies."""

    kind = "cluster"

    def __init__(self, size: int = 3, *, boot_timeout: float = 90.0) -> None:
        if size < 1:
            raise BrokerError(f"a cluster needs at least one node, not {size}")
        token = secrets.token_hex(3)
        cookie = secrets.token_hex(16)
        name = f"harness-cluster-{token}"
        self.nodes = [
            PrivateNode(
                name=f"harness-{os.getpid()}-{token}-{index}@localhost",
                cookie=cookie,
                cluster_name=name,
                boot_timeout=boot_timeout,
            )
            for index in range(1, size + 1)
        ]
        self.cluster_name = name
        self.formation_seconds: float | None = None
        self._exits: AsyncExitStack | None = None

    # -- addresses --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """A running node's URL (the first's, when none runs)."""
        return next((n.url for n in self.nodes if n.is_running()), self.nodes[0].url)

    @property
    def urls(self) -> list[str]:
        return [node.url for node in self.nodes]

    def describe(self) -> str:
        ports = ", ".join(str(node.port) for node in self.nodes)
        return f"{len(self.nodes)}-node private rabbitmq-server cluster on 127.0.0.1:{ports}"

    def node(self, name: str) -> PrivateNode:
        """The node called ``name`` (``harness-...@localhost``)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def running(self) -> list[PrivateNode]:
        return [node for node in self.nodes if node.is_running()]

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        began = time.monotonic()
        exits = AsyncExitStack()
        try:
            # All boot at once (boot is mostly waiting), each entered on the exit stack as soon
            # as it is up; the first that fails cancels the others (which kill their node).
            await _all_or_first_error(exits.enter_async_context(node) for node in self.nodes)
            # One join at a time, as RabbitMQ's clustering guide does it: two nodes joining the
            # same seed at once failed in CI (the second's start_app: mnesia_app badmatch).
            for node in self.nodes[1:]:
                await self._join(node, self.nodes[0])
            await self.wait_formed()
        except BaseException:
            await self._stop_all()
            await exits.aclose()
            raise
        self._exits = exits
        self.formation_seconds = time.monotonic() - began
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        exits, self._exits = self._exits, None
        await self._stop_all()
        if exits is not None:
            await exits.aclose()  # the nodes are stopped already: this removes their folders

    async def _stop_all(self) -> None:
        # In parallel: one by one, each later node would first wait for the earlier ones.
        await asyncio.gather(*(node.stop() for node in self.nodes), return_exceptions=True)

    async def _join(self, node: PrivateNode, seed: PrivateNode) -> None:
        await node.rabbitmqctl("stop_app")
        await node.rabbitmqctl("join_cluster", seed.name, timeout=60)
        await node.rabbitmqctl("start_app", timeout=120)
        await wait_until_ready(
            node.url,
            timeout=node.boot_timeout,
            log_tail=node.log_tail,
            alive=node.is_running,
            expect_cluster_name=self.cluster_name,
        )

    async def running_node_names(self) -> set[str]:
        """The nodes the cluster itself reports running (asked of a running node)."""
        for node in self.running():
            with contextlib.suppress(BrokerError, TimeoutError):
                status = json.loads(
                    await node.rabbitmqctl("cluster_status", "--formatter", "json", timeout=20)
                )
                return set(status.get("running_nodes", []))
        return set()

    async def wait_formed(self, timeout: float = 60.0) -> None:
        """Until every node that runs here is also running in the cluster's own view."""
        expected = {node.name for node in self.running()}
        seen: dict[str, set[str]] = {}

        async def formed() -> bool:
            seen["running"] = await self.running_node_names()
            return expected <= seen["running"]

        try:
            await wait_until(
                formed,
                timeout=timeout,
                what=f"{len(expected)} running nodes in the cluster",
                state=lambda: sorted(seen.get("running", ())),
                interval=0.5,
            )
        except WaitTimeout as exc:
            raise BrokerError(f"{exc}\n{self.nodes[0].log_tail()}") from None

    # -- queues -----------------------------------------------------------------------------

    async def leader_of(self, queue: str, vhost: str = "/") -> PrivateNode:
        """The node leading quorum queue ``queue`` (``rabbitmqctl list_queues name leader``)."""
        for node in self.running():
            try:
                out = await node.rabbitmqctl(
                    "list_queues", "-p", vhost, "name", "leader", "--formatter", "json"
                )
            except (BrokerError, TimeoutError):
                continue
            for row in json.loads(out):
                if row.get("name") == queue and row.get("leader"):
                    return self.node(str(row["leader"]))
            raise BrokerError(f"queue {queue!r} in vhost {vhost!r} has no leader (or is absent)")
        raise BrokerError("no running node of the cluster answered")

    async def wait_leader(
        self, queue: str, vhost: str = "/", *, other_than: str | None = None, timeout: float = 60.0
    ) -> PrivateNode:
        """The queue's leader once there is one (and, with ``other_than``, a new one)."""
        found: dict[str, PrivateNode] = {}

        async def elected() -> bool:
            with contextlib.suppress(BrokerError, KeyError):
                leader = await self.leader_of(queue, vhost)
                if leader.name != other_than and leader.is_running():
                    found["leader"] = leader
                    return True
            return False

        await wait_until(elected, timeout=timeout, what=f"a leader of {queue}", interval=0.5)
        return found["leader"]

    def stats(self) -> dict[str, object]:
        return {
            "nodes": [node.stats() for node in self.nodes],
            "formation_seconds": self.formation_seconds,
        }


async def _all_or_first_error(coroutines: Iterable[Coroutine[Any, Any, object]]) -> None:
    """Run them together; on the first error cancel the rest, wait for them, and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]


class ExternalCluster:
    """A real cluster the harness did not start, reached by several URLs; never altered.

    Entering waits for one node to answer (a node of a real cluster may be down)."""

    kind = "external"

    def __init__(self, urls: Sequence[str], *, ready_timeout: float = 10.0) -> None:
        if not urls:
            raise BrokerError("HARNESS_BROKER_URLS: no URL given")
        self.urls = list(urls)
        self.ready_timeout = ready_timeout
        self._answering = self.urls[0]

    @property
    def url(self) -> str:
        return self._answering

    def describe(self) -> str:
        return f"external cluster at {', '.join(redact(u) for u in self.urls)}"

    async def __aenter__(self) -> Self:
        problems = []
        for url in self.urls:
            try:
                await wait_until_ready(url, timeout=self.ready_timeout / len(self.urls))
            except BrokerError as exc:
                problems.append(str(exc).splitlines()[0])
                continue
            self._answering = url
            return self
        raise BrokerError("no node of the cluster answered: " + "; ".join(problems))

    async def __aexit__(self, *exc_info: object) -> None:
        return None


def parse_urls(text: str) -> list[str]:
    """``HARNESS_BROKER_URLS`` / ``RABBITMQ_URLS``: comma-separated AMQP URLs."""
    return [part.strip() for part in text.split(",") if part.strip()]
