"""Webhook events from Hypothesis posted to the Node simulator: never a 5xx or a crash, and each
distinct inbound text message makes exactly one request on ag_queue. A short fixed-seed budget;
``harness fuzz-webhook --examples N`` (or ``--url`` for a real service) runs it for longer."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from agent_service.contract.topology import Topology, declare, delete
from fakes.node_simulator import NodeSimulator, NodeSimulatorConfig
from fakes.wasender import FakeWasender
from fakes.whatsapp import FakeWhatsApp
from harness.broker import Broker
from harness.fuzzing.live import LoopThread
from harness.fuzzing.webhook_events import Case, placeholder
from harness.fuzzing.webhook_runner import fuzz_webhook
from harness.fuzzing.webhook_target import WebhookTally, WebhookTarget
from harness.namespaces import run_prefix
from harness.waiting import wait_until

pytestmark = [pytest.mark.fuzz, pytest.mark.e2e]

SIGNATURE = "fuzz-signature"


class Rig:
    """The Node simulator on its own loop thread (Hypothesis calls the check synchronously)."""

    def __init__(self, broker: Broker) -> None:
        self.loop = LoopThread()
        self.url = broker.url
        self.topology = Topology().renamed(run_prefix())
        self.wasender = FakeWasender()
        self.node: NodeSimulator | None = None
        self.target: WebhookTarget | None = None

    async def start(self) -> WebhookTarget:
        import aio_pika

        async with await aio_pika.connect(self.url) as connection:
            await declare(await connection.channel(), self.topology)
        await self.wasender.start()
        self.node = NodeSimulator(
            NodeSimulatorConfig(
                amqp_url=self.url,
                topology=self.topology,
                wasender_url=self.wasender.url,
                wasender_api_key=self.wasender.api_key,
                webhook_secret=SIGNATURE,
                max_retries=len(self.topology.webhook_retry_delays_ms),
            )
        )
        await self.node.start()
        self.target = WebhookTarget(
            self.node.webhook_url, SIGNATURE, self.url, self.topology.agent_queue
        )
        await self.target.start()
        return self.target

    async def stop(self) -> None:
        import aio_pika

        for part in (self.target, self.node, self.wasender):
            if part is not None:
                await (part.close() if isinstance(part, WebhookTarget) else part.stop())
        async with await aio_pika.connect(self.url) as connection:
            await delete(await connection.channel(), self.topology)


@pytest.fixture(scope="module")
def rig(broker: Broker) -> Iterator[tuple[Rig, WebhookTarget]]:
    rig = Rig(broker)
    target = rig.loop.run(rig.start())
    try:
        yield rig, target
    finally:
        rig.loop.run(rig.stop())
        rig.loop.close()


def test_fuzzed_webhooks_make_one_request_per_inbound_text(
    rig: tuple[Rig, WebhookTarget],
) -> None:
    loop_rig, target = rig
    tally = WebhookTally()
    fuzz_webhook(target, loop_rig.loop, tally, examples=40, seed_value=20261201)
    assert not tally.failures, tally.render(0)
    assert tally.examples == 40
    kinds = {kind.split("/")[0] for kind in tally.posts_by_kind}
    assert {"text", "duplicate", "garbage", "unknown-event"} <= kinds, tally.posts_by_kind
    assert tally.requests >= tally.owed["one"] > 0
    assert not any(status >= 500 for status in tally.statuses)


def test_the_oracle_catches_a_request_that_is_not_owed(rig: tuple[Rig, WebhookTarget]) -> None:
    # A text message labelled "owed none": the simulator rightly makes a request, so the check
    # must fail. This guards the oracle itself.
    loop_rig, target = rig
    event = FakeWhatsApp(SIGNATURE).text_event("+256703722777", "hi", message_id=placeholder(0))
    case = Case("mislabelled", event, {placeholder(0): "none"})
    tally = WebhookTally()
    before = sum(target.requests.values())
    with contextlib.suppress(AssertionError):  # raised now, or found once the request is in
        loop_rig.loop.run(target.exchange([case], tally))
    loop_rig.loop.run(
        wait_until(lambda: sum(target.requests.values()) > before, timeout=10, what="a request")
    )
    found = tally.failures + target.problems()
    assert any("owed none" in problem for problem in found), found
