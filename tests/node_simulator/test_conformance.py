"""``harness conformance`` proven both ways: every check passes against the Node simulator (one
simulator for all twelve), and each check fails against the broken variant made for it."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from agent_service.contract.topology import Topology
from fakes.node_simulator import NodeSimulator, NodeSimulatorConfig
from harness.broker import Broker
from harness.conformance import CHECKS, CheckResult, Target, run_check, run_checks, simulator
from harness.conformance.command import QUICK_RETRY_DELAYS_MS
from harness.conformance.rig import PartyOptions, parties
from harness.conformance.runner import failures, select, to_json, to_junit
from harness.conformance.variants import Variant, variants
from harness.namespaces import declared_on, run_prefix
from harness.process_tools import free_port

pytestmark = pytest.mark.e2e

# Long enough for the simulator's 1 s retry and the checks' 2 s retry_after; a broken variant
# that never sends fails after it.
PATIENCE = 4.0
# A broken variant that never sends fails after this; the simulator's retry comes in 1 s.
BROKEN_PATIENCE = 2.5


def topology() -> Topology:
    base = replace(Topology(), webhook_retry_delays_ms=QUICK_RETRY_DELAYS_MS)
    return base.renamed(run_prefix())


@pytest.fixture(scope="module")
async def healthy(broker: Broker) -> AsyncIterator[Target]:
    async with simulator(broker.url, topology(), patience=PATIENCE) as target:
        yield target


@pytest.fixture(scope="module")
async def results(healthy: Target) -> list[CheckResult]:
    return await run_checks(healthy, CHECKS)


def test_every_check_passes_against_the_simulator(results: list[CheckResult]) -> None:
    table = "\n".join(f"{r.outcome} {r.name}: {r.evidence}" for r in results)
    assert [r.outcome for r in results] == ["pass"] * len(CHECKS), table
    assert all(r.evidence for r in results)


def test_json_and_junit_carry_every_check(results: list[CheckResult]) -> None:
    broken = [*results[:-1], replace(results[-1], outcome="fail", evidence="forged 200")]
    assert failures(broken) == 1
    assert '"failures": 1' in to_json(broken, "sim")
    suite = ET.fromstring(to_junit(broken, "sim"))
    assert (suite.get("tests"), suite.get("failures")) == (str(len(CHECKS)), "1")
    failed = [c.get("name") for c in suite.iter("testcase") if c.find("failure") is not None]
    assert failed == [CHECKS[-1].name]


VARIANTS = variants("")


@pytest.mark.parametrize("variant", VARIANTS, ids=[v.name for v in VARIANTS])
async def test_each_check_fails_against_its_broken_variant(
    broker: Broker, variant: Variant
) -> None:
    check = next(c for c in CHECKS if c.name == variant.breaks)
    async with simulator(broker.url, topology(), variant.name, patience=BROKEN_PATIENCE) as t:
        result = await run_check(t, check)
    assert result.outcome == "fail", (
        f"{check.name} passed against {variant.name}: {result.evidence}"
    )
    assert result.evidence


async def test_a_service_by_url_is_checked_through_fakes_on_given_ports(broker: Broker) -> None:
    # As the Node team runs it: their service started first, configured with the fake
    # Wasender's and the alert receiver's fixed ports and key (here, our simulator stands in).
    wasender_port, alerts_port, key, signature = free_port(), free_port(), "url-key", "url-sig"
    names = ["request-conforms", "reply-sent", "invalid-number-parked", "wrong-signature-refused"]
    topo = topology()
    options = PartyOptions(
        broker.url, topo, signature, wasender_port, key, alerts_port, patience=PATIENCE
    )
    async with declared_on(broker.url, topo), parties(options) as target:
        config = NodeSimulatorConfig(
            amqp_url=broker.url,
            topology=topo,
            wasender_url=f"http://127.0.0.1:{wasender_port}",
            wasender_api_key=key,
            webhook_secret=signature,
            alert_url=f"http://127.0.0.1:{alerts_port}/alerts",
            max_retries=len(topo.webhook_retry_delays_ms),
        )
        async with NodeSimulator(config) as node:
            target.webhook_url = node.webhook_url
            results = await run_checks(target, select(names))
    assert [(r.name, r.outcome) for r in results] == [(n, "pass") for n in names], results
