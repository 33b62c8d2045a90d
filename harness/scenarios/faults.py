"""What goes wrong during a scenario, each as a small coroutine beside the conversation mix.

A fault records when it begins and ends on the run's timeline, so reports can mark it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from fakes.wasender_faults import RateLimited, ServerError
from harness.broker import BrokerCluster, PrivateNode
from harness.scenarios.network_faults import (
    BLIP_SECONDS,
    CUT_HEARTBEAT,
    network_blip,
    network_cut,
    slow_link,
)
from harness.stack import SimulationStack
from harness.timeline import Timeline
from harness.waiting import WaitTimeout, wait_until

Fault = Callable[[SimulationStack, Timeline], Coroutine[Any, Any, None]]


async def _nothing(stack: SimulationStack, timeline: Timeline) -> None:
    return None


async def _wasender_outage(stack: SimulationStack, timeline: Timeline) -> None:
    await asyncio.sleep(1.0)
    stack.wasender.inject(ServerError(503), duration=3.0)
    timeline.fault("Wasender answers 503", lasts=3.0)


async def _rate_limited(stack: SimulationStack, timeline: Timeline) -> None:
    await asyncio.sleep(0.5)
    stack.wasender.inject(RateLimited(retry_after=1), times=3)
    timeline.fault("Wasender answers 429 (3 sends)", lasts=0.0)


def _node(stack: SimulationStack) -> PrivateNode:
    if not isinstance(stack.broker, PrivateNode):  # simulate checks this before it starts
        raise RuntimeError("this scenario needs a private node (HARNESS_BROKER=private)")
    return stack.broker


async def _broker_restart(stack: SimulationStack, timeline: Timeline) -> None:
    node = _node(stack)
    await asyncio.sleep(2.0)
    span = timeline.fault("broker restart")
    await node.restart()
    span.end()


async def _broker_kill(stack: SimulationStack, timeline: Timeline) -> None:
    node = _node(stack)
    await asyncio.sleep(2.0)
    span = timeline.fault("broker killed (SIGKILL), then started")
    await node.kill()
    await node.start()
    span.end()


def _cluster(stack: SimulationStack) -> BrokerCluster:
    if not isinstance(stack.broker, BrokerCluster):  # simulate checks this before it starts
        raise RuntimeError("this scenario needs a cluster (HARNESS_BROKER=cluster)")
    return stack.broker


async def _under_load(stack: SimulationStack, replies: int = 10) -> None:
    """Until the run is well under way: ``replies`` answers sent, and a couple of seconds since
    the queues were declared (NOTES.md: a quorum queue killed within about a second of its
    declaration can come back leaderless and empty)."""
    with contextlib.suppress(WaitTimeout):
        await wait_until(
            lambda: len(stack.wasender.sends) >= replies,
            timeout=30,
            what=f"{replies} replies",
            interval=0.05,
        )
    await asyncio.sleep(max(0.0, stack.started_at + 2.0 - time.monotonic()))


async def _node_loss(stack: SimulationStack, timeline: Timeline) -> None:
    cluster = _cluster(stack)
    await _under_load(stack)
    leader = await cluster.leader_of(stack.topology.agent_queue)
    span = timeline.fault(f"{leader.name}, leader of ag_queue, killed", failover=True)
    await leader.kill()
    successor = await cluster.wait_leader(stack.topology.agent_queue, other_than=leader.name)
    timeline.fault(f"{successor.name} leads ag_queue", lasts=0.0)
    await asyncio.sleep(5.0)  # the cluster runs on two nodes for a while, then heals
    await leader.start()
    await cluster.wait_formed()
    span.end()


async def _rolling_restart(stack: SimulationStack, timeline: Timeline) -> None:
    cluster = _cluster(stack)
    await _under_load(stack)
    for node in cluster.nodes:
        # One at a time, as an upgrade does: the next goes down only when this one is back.
        span = timeline.fault(f"{node.name} restarted", failover=True)
        await node.stop()
        await node.start()
        await cluster.wait_formed()
        span.end()
        await asyncio.sleep(1.0)


async def _replica_kill(stack: SimulationStack, timeline: Timeline) -> None:
    # Mid-run, while it holds requests: the last replica dies at once (no graceful stop), the
    # broker hands its unacked requests to the others, then it comes back.
    victim = stack.agents[-1]

    async def busy() -> bool:
        return await victim.in_flight() > 0

    with contextlib.suppress(WaitTimeout):  # a run too short to catch it busy: kill anyway
        await wait_until(busy, timeout=10, what="requests on the replica", interval=0.02)
    span = timeline.fault(f"agent replica {len(stack.agents)} killed (SIGKILL), then started")
    await victim.kill()
    await asyncio.sleep(2.0)
    await victim.start()
    span.end()


async def _node_restart(stack: SimulationStack, timeline: Timeline) -> None:
    await _under_load(stack)
    span = timeline.fault("Node simulator stopped, started again 1 s later on its record file")
    await stack.restart_node(down=1.0)
    span.end()


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    fault: Fault = _nothing
    stack_options: dict[str, Any] = field(default_factory=dict)
    duplicate_every: int = 0
    # Contacts send two or three messages in a row without waiting for the answers.
    bursts: bool = False
    min_replicas: int = 1
    # It stops or kills the broker: only a private node, which the harness owns, may be.
    needs_private_node: bool = False
    # It kills nodes of a cluster the harness owns (HARNESS_BROKER=cluster).
    needs_cluster: bool = False
    # Enough messages that the load lasts as long as the fault does.
    min_messages: int = 0

    async def inject(self, stack: SimulationStack, timeline: Timeline | None = None) -> None:
        """Carry the fault out, recording it on ``timeline`` (a throwaway one if None)."""
        await self.fault(stack, timeline or Timeline())


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in [
        Scenario("happy", "the conversation mix, nothing goes wrong"),
        Scenario(
            "duplicates",
            "every third message arrives twice (messages.upsert and messages.received);"
            " each must still get one answer",
            duplicate_every=3,
        ),
        Scenario(
            "bursts",
            "contacts send two or three messages in a row without waiting; each answer is"
            " tied to its own message, so a late or second answer is counted as such",
            bursts=True,
        ),
        Scenario(
            "wasender-outage",
            "after 1 s Wasender answers 503 for 3 s; the Node side retries the sends",
            _wasender_outage,
        ),
        Scenario(
            "rate-limit",
            "after 0.5 s Wasender answers 429 retry_after=1 to three sends; the Node side"
            " waits and sends again",
            _rate_limited,
        ),
        Scenario(
            "model-failures",
            "20% of model calls fail transiently and are retried through the wait queues",
            stack_options={"model_failure_rate": 0.2},
        ),
        Scenario(
            "node-restart",
            "under load the Node simulator stops and starts again 1 s later on its record"
            " file: the webhooks meanwhile are redelivered, what it had answered is not"
            " answered again, and the contacts' history goes on",
            _node_restart,
            min_messages=60,
        ),
        Scenario(
            "broker-restart",
            "after 2 s the broker stops gracefully and starts again on the same data"
            " (needs a private node)",
            _broker_restart,
            needs_private_node=True,
        ),
        Scenario(
            "broker-kill",
            "after 2 s the broker is killed (SIGKILL) and started again: unacked work is"
            " redelivered (needs a private node)",
            _broker_kill,
            needs_private_node=True,
        ),
        Scenario(
            "replica-kill",
            "one of the agent replicas (2 at least) is killed with SIGKILL while it holds"
            " requests and started again 2 s later; with --postgres no request is answered"
            " twice",
            _replica_kill,
            min_replicas=2,
        ),
        Scenario(
            "node-loss",
            "quorum queues on a 3-node cluster: under load the node leading ag_queue is killed"
            " (SIGKILL), a new leader is elected and the clients move to live nodes; started"
            " again 5 s later. The report gives the failover time (needs a cluster)",
            _node_loss,
            stack_options={"topology_profile": "quorum"},
            needs_cluster=True,
            min_messages=150,
        ),
        Scenario(
            "rolling-restart",
            "quorum queues on a 3-node cluster: under load each node in turn stops gracefully"
            " and starts again, the next only once the cluster is whole (needs a cluster)",
            _rolling_restart,
            stack_options={"topology_profile": "quorum"},
            needs_cluster=True,
            min_messages=400,
        ),
        Scenario(
            "network-blip",
            f"after 3 outcomes the agent's and the Node side's links to the broker hold every"
            f" byte for {BLIP_SECONDS:g} s, connections kept open; nothing reconnects",
            network_blip,
            stack_options={"network": True},
        ),
        Scenario(
            "network-cut",
            f"after 3 outcomes the broker links are blackholed until both ends of every"
            f" connection gave up (heartbeat {CUT_HEARTBEAT} s), then healed: the parties"
            " reconnect, unacked work is redelivered; the report gives heal to next reply",
            network_cut,
            stack_options={"network": True, "heartbeat": CUT_HEARTBEAT},
        ),
        Scenario(
            "slow-link",
            "after 2 outcomes every link (broker and Wasender) adds 50±30 ms per chunk and"
            " limits each connection to 32 kB/s, to the end of the run",
            slow_link,
            stack_options={"network": True},
        ),
    ]
}
