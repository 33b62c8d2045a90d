"""Order per contact in one process (the embedded request states): a contact's replies leave in
the order its requests arrived, other contacts are not held up, and the wait is bounded."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from agent_service.contract.codec import to_json_bytes
from agent_service.contract.messages import AgentRequest
from agent_service.errors import TransientAgentError
from agent_service.pipeline.dedup import Deduplicator
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.request_state import MemoryRequestStates
from agent_service.testing import FakeEngine, MemoryDelivery, MemoryPipeline
from harness.message_factory import agent_request
from harness.waiting import wait_until

pytestmark = pytest.mark.unit

ALICE = "+256703722777"
BOB = "+447700900123"


class Gates:
    """A behaviour: a request whose text names a gate waits until that gate opens."""

    def __init__(self) -> None:
        self.gates: dict[str, asyncio.Event] = {}
        self.fail: set[str] = set()

    def gate(self, name: str) -> asyncio.Event:
        return self.gates.setdefault(name, asyncio.Event())

    async def __call__(self, request: AgentRequest) -> AgentAnswer:
        text = request.message.text
        if text in self.fail:
            raise TransientAgentError("model overloaded")
        if text in self.gates:
            await self.gates[text].wait()
        return AgentAnswer(f"answer to {text}")


def body(request: AgentRequest) -> bytes:
    return json.dumps(json.loads(to_json_bytes(request))).encode()


def texts(pipeline: MemoryPipeline) -> list[str]:
    return [r.response.text.removeprefix("answer to ") for r in pipeline.outlet.replies]


async def settle(*tasks: asyncio.Task[Any]) -> None:
    await asyncio.wait_for(asyncio.gather(*tasks), 5)


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    await wait_until(condition, timeout=timeout, what="the condition", interval=0.001)


def pipeline_with(gates: Gates, *, order_wait: float = 60.0) -> MemoryPipeline:
    states = MemoryRequestStates(Deduplicator(), order_wait=order_wait)
    return MemoryPipeline(FakeEngine(gates), states=states)


def deliver(pipeline: MemoryPipeline, request: AgentRequest) -> asyncio.Task[MemoryDelivery]:
    return asyncio.create_task(pipeline.deliver(body(request)))


async def test_a_quick_second_message_is_answered_after_a_slow_first() -> None:
    gates = Gates()
    pipeline = pipeline_with(gates)
    slow = gates.gate("hi")
    first = deliver(pipeline, agent_request(text="hi", phone=ALICE))
    second = deliver(pipeline, agent_request(text="I need help", phone=ALICE))
    await until(lambda: len(pipeline.engine.calls) == 2)
    await asyncio.sleep(0.01)  # the second answer is built; it must not leave first
    assert pipeline.outlet.replies == []
    slow.set()
    await settle(first, second)
    assert texts(pipeline) == ["hi", "I need help"]


async def test_another_contact_is_not_held_up_by_a_slow_message() -> None:
    gates = Gates()
    pipeline = pipeline_with(gates)
    slow = gates.gate("hi")
    alice = deliver(pipeline, agent_request(text="hi", phone=ALICE))
    bob = deliver(pipeline, agent_request(text="hello", phone=BOB))
    await settle(bob)
    assert texts(pipeline) == ["hello"]
    slow.set()
    await settle(alice)


async def test_a_burst_of_five_leaves_in_order_whatever_finishes_first() -> None:
    gates = Gates()
    pipeline = pipeline_with(gates)
    words = ["one", "two", "three", "four", "five"]
    for word in words[:4]:
        gates.gate(word)
    tasks = [deliver(pipeline, agent_request(text=w, phone=ALICE)) for w in words]
    await until(lambda: len(pipeline.engine.calls) == 5)
    for word in reversed(words[:4]):  # the answers finish last to first
        gates.gate(word).set()
        await asyncio.sleep(0.005)
    await settle(*tasks)
    assert texts(pipeline) == words


async def test_a_message_waiting_for_a_retry_does_not_hold_the_next_one() -> None:
    gates = Gates()
    gates.fail.add("hi")
    pipeline = pipeline_with(gates)
    first = deliver(pipeline, agent_request(text="hi", phone=ALICE))
    second = deliver(pipeline, agent_request(text="are you there", phone=ALICE))
    await settle(first, second)
    assert len(pipeline.outlet.retries) == 1
    assert texts(pipeline) == ["are you there"]


async def test_the_wait_is_bounded_and_counted() -> None:
    gates = Gates()
    pipeline = pipeline_with(gates, order_wait=0.05)
    stuck = gates.gate("hi")
    first = deliver(pipeline, agent_request(text="hi", phone=ALICE))
    second = deliver(pipeline, agent_request(text="hello?", phone=ALICE))
    await settle(second)
    assert texts(pipeline) == ["hello?"]
    assert pipeline.counter("agent_order_wait_timeouts_total") == 1
    stuck.set()
    await settle(first)


async def test_order_wait_zero_turns_ordering_off() -> None:
    gates = Gates()
    pipeline = pipeline_with(gates, order_wait=0)
    slow = gates.gate("hi")
    first = deliver(pipeline, agent_request(text="hi", phone=ALICE))
    second = deliver(pipeline, agent_request(text="hello?", phone=ALICE))
    await settle(second)
    assert texts(pipeline) == ["hello?"]
    assert pipeline.counter("agent_order_wait_timeouts_total") == 0
    slow.set()
    await settle(first)
