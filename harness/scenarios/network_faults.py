"""Network faults at the seams (harness/network.py), placed by events: after N outcomes.

The broker links are the agent replicas' ("agent-1", ...) and the Node side's ("node"); the
Node side's link to Wasender is "wasender". A blip and a cut hold the broker links only: a
held HTTP send that outlives the Node side's send timeout is sent again (Wasender has no
idempotency key), which is the Wasender seam's own rule and the subject of other scenarios.
"""

from __future__ import annotations

import asyncio
import contextlib

from harness.network import Network
from harness.stack import SimulationStack
from harness.timeline import Timeline
from harness.waiting import WaitTimeout, wait_until

BROKER_LINKS = ("agent-", "node")
# The fault begins once this many messages have their outcome (the system is warm and busy).
FAULT_AFTER_OUTCOMES = 3
BLIP_SECONDS = 10.0
# network-cut: the heartbeat both parties use, and the longest the cut waits for both ends of
# every held connection to give up on it (aiormq after 3 x (heartbeat + 1) s, the broker after
# two missed heartbeats) before it heals anyway.
CUT_HEARTBEAT = 1
CUT_CEILING_SECONDS = 60.0
# slow-link: what every link does from the fault on, to the end of the run.
SLOW_LATENCY = 0.05
SLOW_JITTER = 0.03
SLOW_BANDWIDTH = 32_000  # bytes per second per connection and direction


def network_of(stack: SimulationStack) -> Network:
    if stack.network is None:  # the scenario's stack options ask for one
        raise RuntimeError("this scenario needs a stack with network=True")
    return stack.network


async def after_outcomes(stack: SimulationStack, count: int, timeout: float = 120.0) -> None:
    """Until ``count`` messages have their outcome (or ``timeout``: a run too short to get
    there has its fault at the end rather than none)."""

    def reached() -> bool:
        stack.collect()
        return sum(1 for e in stack.ledger.entries if e.outcome is not None) >= count

    with contextlib.suppress(WaitTimeout):
        await wait_until(reached, timeout=timeout, what=f"{count} outcomes", interval=0.05)


async def network_blip(stack: SimulationStack, timeline: Timeline) -> None:
    network = network_of(stack)
    await after_outcomes(stack, FAULT_AFTER_OUTCOMES)
    span = timeline.fault(
        f"broker links blackholed {BLIP_SECONDS:g} s (connections kept)", measure_recovery=True
    )
    await network.blackhole(*BROKER_LINKS)
    await asyncio.sleep(BLIP_SECONDS)  # the blip's length is the scenario's definition
    await network.heal(*BROKER_LINKS)
    span.end()


async def network_cut(stack: SimulationStack, timeline: Timeline) -> None:
    network = network_of(stack)
    await after_outcomes(stack, FAULT_AFTER_OUTCOMES)
    span = timeline.fault(
        "broker links cut past two heartbeats (connections dropped)", measure_recovery=True
    )
    await network.blackhole(*BROKER_LINKS)
    with contextlib.suppress(WaitTimeout):
        await wait_until(
            lambda: network.dropped_by_both_ends(*BROKER_LINKS),
            timeout=CUT_CEILING_SECONDS,
            what="both ends of every held connection to give up",
            interval=0.1,
        )
    await network.heal(*BROKER_LINKS)
    span.end()


async def slow_link(stack: SimulationStack, timeline: Timeline) -> None:
    network = network_of(stack)
    await after_outcomes(stack, 2)
    timeline.fault(
        f"every link {SLOW_LATENCY * 1000:.0f}±{SLOW_JITTER * 1000:.0f} ms,"
        f" {SLOW_BANDWIDTH // 1000} kB/s"
    )
    network.shape(latency=SLOW_LATENCY, jitter=SLOW_JITTER, bandwidth=SLOW_BANDWIDTH)
