"""Network faults at the seams, end to end: every party reaches the broker (and the Node side
reaches Wasender) through a fault link; each scenario still ends every message in exactly one
outcome. Faults begin after a number of outcomes, not after a time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from harness.ledger import MessageOutcome
from harness.network import LinkShape, Network
from harness.report import RunReport
from harness.scenarios import SCENARIOS, conversation_plan, run_conversations
from harness.stack import SimulationStack
from harness.timeline import Timeline

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

MESSAGES, CONTACTS = 12, 4


async def run_scenario(
    name: str, make_stack: Callable[..., Awaitable[SimulationStack]]
) -> tuple[SimulationStack, RunReport, Timeline]:
    scenario = SCENARIOS[name]
    stack = await make_stack(model_latency="uniform:0.01:0.1", **scenario.stack_options)
    timeline = Timeline()
    fault = asyncio.create_task(scenario.inject(stack, timeline))
    await run_conversations(stack, conversation_plan(MESSAGES, CONTACTS), answer_timeout=90)
    await fault
    await stack.wait_all(time.monotonic() + 60)
    report = await stack.final_report(name, time.monotonic() - timeline.began, timeline.faults)
    assert report.messages == MESSAGES
    assert (report.lost, report.duplicated, report.unmatched_alerts) == (0, 0, 0), report.outcomes
    assert report.outcomes[MessageOutcome.REPLY.value] == MESSAGES
    return stack, report, timeline


def network(stack: SimulationStack) -> Network:
    assert stack.network is not None
    return stack.network


async def test_a_network_blip_is_survived_without_dropping_a_connection(
    make_stack: Callable[..., Awaitable[SimulationStack]],
) -> None:
    stack, report, timeline = await run_scenario("network-blip", make_stack)
    net = network(stack)
    assert {link.name for link in net} == {"agent-1", "node", "wasender"}
    # The blip held traffic: a message sent before its end was answered only after it.
    (blip,) = timeline.faults
    assert blip.ended is not None
    assert any(e.sent_at < blip.ended <= (e.outcome_at or 0) for e in stack.ledger.entries), (
        "no message waited for the blip"
    )
    # Held for 10 s, shorter than any heartbeat timeout: no end gave up, nothing was cut.
    assert net.cut_by_heal == 0
    assert not any(link.blackholed for link in net)
    assert report.recovery_seconds[blip.label] is not None


async def test_a_network_cut_past_two_heartbeats_is_recovered_from(
    make_stack: Callable[..., Awaitable[SimulationStack]],
) -> None:
    stack, report, _ = await run_scenario("network-cut", make_stack)
    # Both ends of the agent's and the Node side's broker connections gave up during the cut,
    # and the heal cut them: the parties reconnected and still answered everything once.
    assert network(stack).cut_by_heal >= 2
    (recovery,) = report.recovery_seconds.values()
    assert recovery is not None  # a reply came after the heal; its time is a report figure


async def test_a_slow_link_delays_but_loses_nothing(
    make_stack: Callable[..., Awaitable[SimulationStack]],
) -> None:
    stack, _, _ = await run_scenario("slow-link", make_stack)
    shapes = {link.name: link.current_shape for link in network(stack)}
    assert all(shape != LinkShape() for shape in shapes.values()), shapes
    # Every seam carried traffic through the slowed link: requests, replies and sends.
    delayed = {link.name: link.delayed_chunks for link in network(stack)}
    assert all(count > 0 for count in delayed.values()), delayed
