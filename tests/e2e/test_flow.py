"""The spec's end-to-end flow and its error scenarios: webhook in, ag_queue, agent, wb_queue,
WhatsApp message out, everything accounted for in the ledger."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
import pytest

from agent_service.contract import decode_request
from agent_service.contract.messages import FALLBACK_TEXT
from fakes.wasender_faults import RateLimited, ServerError
from harness.ledger import Outcome
from harness.queue_tools import drain
from harness.stack import SimulationStack

pytestmark = pytest.mark.e2e

StackFactory = Callable[..., Awaitable[SimulationStack]]
FAST = {"retry_delays_ms": (200, 400, 800), "model_latency": "0"}
PHONE = "+256703722777"


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
    assert await stack.wait_outcome(entry, 30) is Outcome.REPLY
    sent = stack.wasender.sends_to(PHONE)
    assert len(sent) == 1 and "1042" in (sent[0].text or "")
    assert stack.node is not None
    assert stack.node.metrics.value("node_consumed_wb_queue_total", status="success") == 1


async def test_wasender_5xx_then_recovery(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST)
    stack.wasender.inject(ServerError(503), times=2)
    entry = await stack.say(PHONE, "Do you have a phone charger in stock?", "search")
    assert entry is not None
    assert await stack.wait_outcome(entry, 30) is Outcome.REPLY
    statuses = [a.status for a in stack.wasender.attempts]
    assert statuses == [503, 503, 200]
    assert stack.ledger.duplicates == []


async def test_429_waits_retry_after(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST)
    stack.wasender.inject(RateLimited(retry_after=1), times=1)
    entry = await stack.say(PHONE, "Hello!", "conversation")
    assert entry is not None
    assert await stack.wait_outcome(entry, 30) is Outcome.REPLY
    first, last = stack.wasender.attempts[0], stack.wasender.attempts[-1]
    assert (first.status, last.status) == (429, 200)
    assert last.received_at - first.received_at >= 0.95


async def test_an_invalid_number_is_parked_with_an_alert(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST)
    stack.wasender.mark_invalid(PHONE)
    entry = await stack.say(PHONE, "Where is my order 1043?", "order")
    assert entry is not None
    assert await stack.wait_outcome(entry, 30) is Outcome.PARKED
    assert [a.whatsapp_message_id for a in stack.alerts.alerts] == [entry.whatsapp_id]
    assert len(stack.wasender.attempts) == 1, "a permanent error is not retried"
    assert (await stack.depths())["parking"] == 1


async def test_agent_down_longer_than_the_ttl_gives_the_fallback(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST, agent_ttl_ms=500, start_agent=False)
    entry = await stack.say(PHONE, "Can I book an appointment tomorrow?", "appointment")
    assert entry is not None
    assert await stack.wait_outcome(entry, 30) is Outcome.FALLBACK
    assert stack.wasender.sends_to(PHONE)[0].text == FALLBACK_TEXT
    # When the agent comes back there is nothing left to answer twice.
    await stack.agent.start()
    await asyncio.sleep(1.0)
    stack.collect()
    assert len(stack.wasender.sends) == 1 and stack.ledger.duplicates == []


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
    assert await stack.wait_outcome(entry, 30) is Outcome.REPLY


async def test_a_duplicated_webhook_event_is_answered_once(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST)
    entry = await stack.say(PHONE, "Find me wireless headphones", "search", duplicate=True)
    assert entry is not None
    assert await stack.wait_outcome(entry, 30) is Outcome.REPLY
    await asyncio.sleep(1.0)
    stack.collect()
    assert len(stack.wasender.sends) == 1 and stack.ledger.duplicates == []


async def test_the_conversation_history_reaches_the_agent(make_stack: StackFactory) -> None:
    stack = await make_stack(**FAST)
    first = await stack.say(PHONE, "Do you sell blue umbrellas?", "search")
    assert first is not None
    assert await stack.wait_outcome(first, 30) is Outcome.REPLY
    second = await stack.say(PHONE, "Thanks, that helps!", "conversation")
    assert second is not None
    assert await stack.wait_outcome(second, 30) is Outcome.REPLY
    assert second.reply_text is not None and "blue umbrellas" in second.reply_text


@pytest.mark.slow
async def test_a_simulated_run_loses_and_duplicates_nothing(make_stack: StackFactory) -> None:
    from harness.scenarios import conversation_plan, run_conversations

    stack = await make_stack(model_latency="uniform:0.01:0.1")
    await run_conversations(stack, conversation_plan(40, 8))
    await stack.wait_all(time.monotonic() + 30)
    outcomes = {stack.ledger.outcome_of(e) for e in stack.ledger.entries}
    assert outcomes == {Outcome.REPLY}
    assert len(stack.ledger.entries) == 40 and stack.ledger.duplicates == []
