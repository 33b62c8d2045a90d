"""The spec's end-to-end flow and its error scenarios: webhook in, ag_queue, agent, wb_queue,
WhatsApp message out, everything accounted for in the ledger."""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent_service.contract import decode_request
from agent_service.contract.amqp import reply_message
from agent_service.contract.messages import FALLBACK_TEXT, ReplyStatus
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.replies import success_reply
from fakes.wasender_faults import ServerError
from harness.ledger import MessageOutcome
from harness.queue_tools import drain, queue_depths
from harness.stack import SimulationStack
from harness.waiting import wait_until

pytestmark = pytest.mark.e2e

StackFactory = Callable[..., Awaitable[SimulationStack]]
FAST = {"retry_delays_ms": (200, 400, 800), "model_latency": "0"}
PHONE = "+256703722777"
OTHER = "+254712345678"


async def agent_metrics(stack: SimulationStack) -> dict[str, float]:
    """The agent service's Prometheus samples, summed over their labels."""
    url = f"http://127.0.0.1:{stack.agent.health_port}/metrics"
    async with aiohttp.ClientSession() as http, http.get(url) as response:
        text = await response.text()
    totals: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] += sample.value
    return totals


async def wait_settled(stack: SimulationStack, timeout: float = 30.0) -> None:
    """Until nothing is left in the pipeline: no queue but parking holds a message, the agent
    answered every request it took, and the Node side sent, or dropped as a duplicate, every
    reply the agent published. An extra answer on its way keeps this waiting, so "nothing more
    arrived" checked after it cannot pass by looking too early. It counts replies sent or
    dropped: in a flow where a reply is retried or parked it would wait in vain."""
    node, topology = stack.node, stack.topology
    assert node is not None
    queues = [q.name for q in topology.queues() if q.name != topology.webhook_parking]
    state: dict[str, Any] = {}

    async def settled() -> bool:
        agent = await agent_metrics(stack)
        replies = agent["agent_messages_published_total"]
        node_sent = node.metrics.value("node_sends_total", kind="reply")
        node_dropped = node.metrics.value("node_duplicates_total", source="wb_queue")
        state.update(
            queued={q: n for q, n in (await queue_depths(stack.connection, queues)).items() if n},
            agent_in_flight=agent["agent_in_flight"],
            agent_took=agent["agent_messages_consumed_total"],
            agent_answered=replies + agent["agent_duplicates_total"],
            node_got=sum(
                node.metrics.value("node_consumed_wb_queue_total", status=s.value)
                for s in ReplyStatus
            ),
            node_done=node_sent + node_dropped,
        )
        return (
            not state["queued"]
            and state["agent_in_flight"] == 0
            and state["agent_took"] == state["agent_answered"]
            and state["node_got"] == replies == state["node_done"]
        )

    await wait_until(
        settled,
        timeout=timeout,
        interval=0.05,
        what="an empty pipeline",
        state=lambda: state,
    )


async def test_the_spec_flow_from_webhook_to_whatsapp(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST, start_agent=False)
    entry = await stack.say(PHONE, "Where is my order 1042?", "order", name="John Doe")
    assert entry is not None
    # 2. The AI request waits on ag_queue, in the contract's shape.
    queued = await drain(stack.connection, stack.topology.agent_queue, ack=False)
    assert len(queued) == 1
    request = decode_request(queued[0].body)
    assert (request.taskType.value, request.contact.phoneNumber) == ("order", PHONE)
    assert request.message.messageId == entry.whatsapp_id
    assert queued[0].message_id == request.messageId
    # 3-5. The agent answers; the reply goes through wb_queue and out through Wasender.
    await stack.agent.start()
    assert await stack.wait_outcome(entry, 30) is MessageOutcome.REPLY
    sent = stack.wasender.sends_to(PHONE)
    assert len(sent) == 1 and "1042" in (sent[0].text or "")
    assert stack.node is not None
    assert stack.node.metrics.value("node_consumed_wb_queue_total", status="success") == 1


async def test_a_message_whose_sender_stops_waiting_is_still_answered(
    make_stack: StackFactory,
) -> None:
    # A Locust user stopped mid-turn cancels its say(); the message it sent is WhatsApp's
    # to deliver by then, and the ledger owes it an answer (found: one "lost" per stop).
    stack = await make_stack(**FAST)
    saying = asyncio.create_task(stack.say(PHONE, "Hello!", "conversation"))
    await asyncio.sleep(0)  # say() runs to its first wait: the webhook post under way
    assert len(stack.ledger.entries) == 1
    saying.cancel()
    with pytest.raises(asyncio.CancelledError):
        await saying
    entry = stack.ledger.entries[0]
    assert await stack.wait_outcome(entry, 30) is MessageOutcome.REPLY
    assert len(stack.wasender.sends_to(PHONE)) == 1


async def test_in_a_burst_each_send_is_tied_to_the_message_it_answers(
    make_stack: StackFactory,
) -> None:
    # Two messages in a row; the second is answered first. By phone, its answer would be
    # taken for the first message's, and the first's for the second's.
    stack = await make_stack(**FAST, start_agent=False)
    first = await stack.say(PHONE, "Where is my order 1042?", "order")
    second = await stack.say(PHONE, "And do you sell chargers?", "search")
    assert first is not None and second is not None
    queued = {m.message_id: m for m in await drain(stack.connection, stack.topology.agent_queue)}
    requests = {
        decode_request(m.body).message.messageId: decode_request(m.body) for m in queued.values()
    }
    channel = await stack.connection.channel(publisher_confirms=True)

    async def answer(entry_id: str, text: str) -> None:
        reply = success_reply(requests[entry_id], AgentAnswer(text=text), 0.1)
        await channel.default_exchange.publish(
            reply_message(reply), routing_key=stack.topology.webhook_queue
        )

    await answer(second.whatsapp_id, "Yes, chargers are in stock.")
    assert await stack.wait_outcome(second, 30) is MessageOutcome.REPLY
    assert second.reply_text == "Yes, chargers are in stock." and first.outcome is None
    await answer(first.whatsapp_id, "Order 1042 is on its way.")
    assert await stack.wait_outcome(first, 30) is MessageOutcome.REPLY
    assert first.reply_text == "Order 1042 is on its way."
    assert first.exact and second.exact and stack.ledger.duplicates == []


async def test_wasender_5xx_then_recovery(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST)
    stack.wasender.inject(ServerError(503), times=2)
    entry = await stack.say(PHONE, "Do you have a phone charger in stock?", "search")
    assert entry is not None
    assert await stack.wait_outcome(entry, 30) is MessageOutcome.REPLY
    statuses = [a.status for a in stack.wasender.attempts]
    assert statuses == [503, 503, 200]
    assert stack.ledger.duplicates == []


async def test_429_waits_retry_after(make_stack: StackFactory) -> None:
    # One send per second, as on a trial plan; the fake refuses a send that comes too early.
    limit = {"wasender_rate_limit_per_minute": 1, "wasender_rate_limit_window_seconds": 1}
    stack = await make_stack(**FAST, **limit, start_agent=False)
    john = await stack.say(PHONE, "Hello!", "conversation")
    jane = await stack.say(OTHER, "Hi there!", "conversation")
    assert john is not None and jane is not None
    # Both wait on ag_queue, so the agent answers them together: the second send is refused
    # (429, retry_after 1 s) and goes through only if the Node side waits that long.
    await stack.agent.start()
    assert await stack.wait_outcome(john, 30) is MessageOutcome.REPLY
    assert await stack.wait_outcome(jane, 30) is MessageOutcome.REPLY
    assert [a.status for a in stack.wasender.attempts] == [200, 429, 200]
    assert stack.ledger.duplicates == []


async def test_an_invalid_number_is_parked_with_an_alert(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST)
    stack.wasender.mark_invalid(PHONE)
    entry = await stack.say(PHONE, "Where is my order 1043?", "order")
    assert entry is not None
    assert await stack.wait_outcome(entry, 30) is MessageOutcome.PARKED
    assert [a.whatsapp_message_id for a in stack.alerts.alerts] == [entry.whatsapp_id]
    assert len(stack.wasender.attempts) == 1, "a permanent error is not retried"
    assert (await stack.depths())["parking"] == 1


async def test_agent_down_longer_than_the_ttl_gives_the_fallback(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST, agent_ttl_ms=500, start_agent=False)
    entry = await stack.say(PHONE, "Can I book an appointment tomorrow?", "appointment")
    assert entry is not None
    assert await stack.wait_outcome(entry, 30) is MessageOutcome.FALLBACK
    assert stack.wasender.sends_to(PHONE)[0].text == FALLBACK_TEXT
    # When the agent comes back there is nothing left to answer twice. ag_queue is first in,
    # first out: by the time the agent has answered a later message, it has taken anything
    # the expired one left behind.
    await stack.agent.start()
    later = await stack.say(OTHER, "Hello!", "conversation")
    assert later is not None
    assert await stack.wait_outcome(later, 30) is MessageOutcome.REPLY
    await wait_settled(stack)
    assert (await agent_metrics(stack))["agent_messages_consumed_total"] == 1, "the later one"
    stack.collect()
    assert [s.text for s in stack.wasender.sends_to(PHONE)] == [FALLBACK_TEXT]
    assert stack.ledger.duplicates == []


async def test_a_malformed_request_gets_the_fallback_and_the_service_goes_on(
    make_stack: StackFactory,
) -> None:
    stack = await make_stack(**FAST)
    bad: dict[str, Any] = {
        "messageId": "not-a-uuid",
        "taskType": "poetry",
        "contact": {"remoteJid": "256700000001@s.whatsapp.net", "phoneNumber": "+256700000001"},
    }
    channel = await stack.connection.channel(publisher_confirms=True)
    await channel.default_exchange.publish(
        aio_pika.Message(json.dumps(bad).encode(), delivery_mode=2),
        routing_key=stack.topology.agent_queue,
    )
    await stack.wasender.wait_for_sends(1, timeout=20)
    assert [s.text for s in stack.wasender.sends_to("+256700000001")] == [FALLBACK_TEXT]
    entry = await stack.say(PHONE, "Hello!", "conversation")
    assert entry is not None
    assert await stack.wait_outcome(entry, 30) is MessageOutcome.REPLY


async def test_a_duplicated_webhook_event_is_answered_once(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST)
    entry = await stack.say(PHONE, "Find me wireless headphones", "search", duplicate=True)
    assert entry is not None and stack.node is not None
    # Both webhooks were answered after the broker confirmed what they published.
    assert stack.node.metrics.value("node_published_ag_queue_total") == 1
    assert await stack.wait_outcome(entry, 30) is MessageOutcome.REPLY
    await wait_settled(stack)
    stack.collect()
    assert len(stack.wasender.sends) == 1 and stack.ledger.duplicates == []


async def test_the_conversation_history_reaches_the_agent(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST)
    first = await stack.say(PHONE, "Do you sell blue umbrellas?", "search")
    assert first is not None
    assert await stack.wait_outcome(first, 30) is MessageOutcome.REPLY
    second = await stack.say(PHONE, "Thanks, that helps!", "conversation")
    assert second is not None
    assert await stack.wait_outcome(second, 30) is MessageOutcome.REPLY
    assert second.reply_text is not None and "blue umbrellas" in second.reply_text


@pytest.mark.slow
async def test_a_simulated_run_loses_and_duplicates_nothing(make_stack: StackFactory) -> None:
    from harness.scenarios import conversation_plan, run_conversations

    stack = await make_stack(model_latency="uniform:0.01:0.1")
    await run_conversations(stack, conversation_plan(40, 8))
    await stack.wait_all(time.monotonic() + 30)
    outcomes = {stack.ledger.outcome_of(e) for e in stack.ledger.entries}
    assert outcomes == {MessageOutcome.REPLY}
    assert len(stack.ledger.entries) == 40 and stack.ledger.duplicates == []
