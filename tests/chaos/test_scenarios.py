"""The scenario library under faults, end to end: every message still has exactly one outcome."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import pytest

from harness.broker import Broker, PrivateNode
from harness.ledger import MessageOutcome
from harness.postgres import server_url
from harness.report import build_report
from harness.scenarios import SCENARIOS, conversation_plan, run_conversations
from harness.stack import SimulationStack

pytestmark = [pytest.mark.chaos, pytest.mark.slow]


@pytest.mark.parametrize(
    "name",
    [
        "wasender-outage",
        "broker-kill",
        "model-failures",
        "duplicates",
        "bursts",
        "node-restart",
        "rate-limit",
        "replica-kill",
    ],
)
async def test_scenario_loses_and_duplicates_nothing(
    name: str,
    broker: Broker,
    controlled_node: PrivateNode,
    make_stack: Callable[..., Awaitable[SimulationStack]],
) -> None:
    scenario = SCENARIOS[name]
    if name.startswith("broker") and broker is not controlled_node:
        pytest.skip("the session broker is not a node the harness may kill")
    shared = {"postgres": server_url()} if scenario.min_replicas > 1 else {}
    stack = await make_stack(
        model_latency="uniform:0.01:0.1",
        replicas=scenario.min_replicas,
        **shared,
        # The demo's 1, 2, 4 s ladder outlasts the 3 s Wasender outage: nothing is parked.
        **scenario.stack_options,
    )
    began = time.monotonic()
    fault = asyncio.create_task(scenario.inject(stack))
    await run_conversations(
        stack,
        conversation_plan(24, 6),
        duplicate_every=scenario.duplicate_every,
        bursts=scenario.bursts,
    )
    await fault
    await stack.wait_all(time.monotonic() + 60)
    await asyncio.sleep(0.5)
    stack.collect()
    report = build_report(
        name, stack.ledger, duration=time.monotonic() - began, depths={}, tools={}, broker=""
    )
    assert report.messages == 24
    assert (report.lost, report.duplicated) == (0, 0), report.outcomes
    assert report.outcomes[MessageOutcome.PARKED.value] == 0
    # Every outcome is tied to its own message by id (bursts would make phones ambiguous).
    assert report.attributed == {"by_id": 24, "by_phone": 0}
