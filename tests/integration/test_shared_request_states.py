"""Two replicas' pipelines on one real PostgreSQL database (the request states of DATABASE_URL):
a request answered on one is never answered anew on the other, a replica that dies is taken
over from once its lease runs out, delivery counts add up across replicas, and one contact's
replies keep their order whichever replica builds them."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from agent_service.contract.codec import to_json_bytes
from agent_service.contract.messages import AgentRequest
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.handler import Limits
from agent_service.state.postgres import (
    PostgresDeliveryLog,
    PostgresRequestStates,
    open_pool,
)
from agent_service.testing import FakeEngine, MemoryDelivery, MemoryOutlet, MemoryPipeline
from harness.message_factory import agent_request
from harness.waiting import wait_until

pytestmark = pytest.mark.e2e

ALICE = "+256703722777"
LEASE = 0.6  # short, so a dead replica is taken over from within a test


class Gates:
    """A behaviour: a request whose text names a gate waits until the gate opens; each answer
    names the replica that built it, so a second run shows as a different text."""

    def __init__(self, replica: str, gates: dict[str, asyncio.Event]) -> None:
        self.replica = replica
        self.gates = gates

    async def __call__(self, request: AgentRequest) -> AgentAnswer:
        text = request.message.text
        if text in self.gates:
            await self.gates[text].wait()
        return AgentAnswer(f"{text} (by {self.replica})")


@dataclass
class Replicas:
    a: MemoryPipeline
    b: MemoryPipeline
    states_a: PostgresRequestStates
    states_b: PostgresRequestStates
    outlet: MemoryOutlet
    gates: dict[str, asyncio.Event]

    def gate(self, text: str) -> asyncio.Event:
        return self.gates.setdefault(text, asyncio.Event())

    def texts(self) -> list[str]:
        return [r.response.text for r in self.outlet.replies]


@pytest.fixture
async def replicas(make_database: Callable[..., Awaitable[str]]) -> AsyncIterator[Replicas]:
    pool = await open_pool(await make_database(), max_size=10)
    outlet = MemoryOutlet()  # one wb_queue for both
    gates: dict[str, asyncio.Event] = {}
    made = []
    for name in ("a", "b"):
        states = PostgresRequestStates(pool, lease=LEASE, order_grace=0.3, owner=name)
        await states.start()
        pipeline = MemoryPipeline(
            FakeEngine(Gates(name, gates)),
            outlet=outlet,
            states=states,
            deliveries=PostgresDeliveryLog(pool),
            limits=Limits(max_deliveries=3),
        )
        made.append((pipeline, states))
    try:
        yield Replicas(made[0][0], made[1][0], made[0][1], made[1][1], outlet, gates)
    finally:
        for _, states in made:
            await states.close()
        await pool.close()


def body(request: AgentRequest) -> bytes:
    return json.dumps(json.loads(to_json_bytes(request))).encode()


def deliver(
    pipeline: MemoryPipeline, request: AgentRequest, *, redelivered: bool = False
) -> asyncio.Task[MemoryDelivery]:
    return asyncio.create_task(pipeline.deliver(body(request), redelivered=redelivered))


async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
    await wait_until(condition, timeout=timeout, what="the condition", interval=0.005)


async def done(*tasks: asyncio.Task[Any]) -> list[Any]:
    return list(await asyncio.wait_for(asyncio.gather(*tasks), 15))


async def test_a_redelivery_to_the_other_replica_of_an_answered_request_is_a_duplicate(
    replicas: Replicas,
) -> None:
    request = agent_request(text="hi", phone=ALICE)
    await done(deliver(replicas.a, request))
    [again] = await done(deliver(replicas.b, request, redelivered=True))
    assert again.acked
    assert replicas.texts() == ["hi (by a)"]
    assert replicas.b.engine.calls == []


async def test_a_reply_built_on_one_replica_is_republished_as_it_is_by_the_other(
    replicas: Replicas,
) -> None:
    # Replica a built the reply but wb_queue returned it: handed back, kept as pending.
    request = agent_request(text="hi", phone=ALICE)
    replicas.outlet.missing.add("wb_queue")
    [first] = await done(deliver(replicas.a, request))
    assert first.handed_back
    replicas.outlet.missing.clear()
    [second] = await done(deliver(replicas.b, request, redelivered=True))
    assert second.acked
    assert replicas.texts() == ["hi (by a)"]  # a's reply, not one b would have made
    assert replicas.b.engine.calls == []


async def test_a_redelivery_waits_while_the_other_replica_still_works_on_it(
    replicas: Replicas,
) -> None:
    request = agent_request(text="slow", phone=ALICE)
    gate = replicas.gate("slow")
    first = deliver(replicas.a, request)
    await until(lambda: len(replicas.a.engine.calls) == 1)
    second = deliver(replicas.b, request, redelivered=True)
    await asyncio.sleep(2 * LEASE)  # a renews its lease: b must still be waiting
    assert not second.done()
    gate.set()
    deliveries = await done(first, second)
    assert all(d.acked for d in deliveries)
    assert replicas.texts() == ["slow (by a)"]
    assert replicas.b.engine.calls == []


async def test_a_replica_that_died_mid_request_is_taken_over_after_its_lease(
    replicas: Replicas,
) -> None:
    request = agent_request(text="stuck", phone=ALICE)
    replicas.gate("stuck")  # never opens: replica a hangs on it
    stuck = deliver(replicas.a, request)
    await until(lambda: len(replicas.a.engine.calls) == 1)
    await replicas.states_a.close()  # a "dies": its lease is no longer renewed
    replicas.gates["stuck"] = asyncio.Event()
    replicas.gates["stuck"].set()
    [taken] = await done(deliver(replicas.b, request, redelivered=True))
    assert taken.acked
    assert replicas.texts() == ["stuck (by b)"]
    stuck.cancel()


async def test_delivery_counts_add_up_across_replicas(replicas: Replicas) -> None:
    # A request that "crashes" each replica in turn (deliveries that never settle): the third
    # redelivery, whichever replica it reaches, is dead-lettered (max_deliveries 3).
    request = agent_request(text="poison", phone=ALICE)
    log_a = replicas.a.deliveries
    log_b = replicas.b.deliveries
    assert await log_a.arrived(request.messageId, redelivered=False) == 0
    assert await log_b.arrived(request.messageId, redelivered=True) == 1
    assert await log_a.arrived(request.messageId, redelivered=True) == 2
    [last] = await done(deliver(replicas.b, request, redelivered=True))
    assert last.acked
    [dead] = replicas.outlet.dead_letters
    assert dead.headers["x-agent-dead-letter-reason"] == "MAX_DELIVERIES"


async def test_a_contacts_replies_keep_their_order_across_replicas(replicas: Replicas) -> None:
    first = agent_request(text="hi", phone=ALICE)
    second = agent_request(text="I need help", phone=ALICE, previous=first.messageId)
    third = agent_request(text="with my order", phone=ALICE, previous=second.messageId)
    gate = replicas.gate("hi")
    tasks = [deliver(replicas.a, first)]
    await until(lambda: len(replicas.a.engine.calls) == 1)
    tasks += [deliver(replicas.b, second), deliver(replicas.a, third)]
    await until(lambda: len(replicas.a.engine.calls) + len(replicas.b.engine.calls) == 3)
    await asyncio.sleep(0.1)
    assert replicas.texts() == []  # both later answers are built, and wait
    gate.set()
    await done(*tasks)
    assert replicas.texts() == ["hi (by a)", "I need help (by b)", "with my order (by a)"]


async def test_without_previous_ids_the_timestamps_order_a_contacts_replies(
    replicas: Replicas,
) -> None:
    first = agent_request(text="hi", phone=ALICE, timestamp=1_800_000_000_000)
    second = agent_request(text="again", phone=ALICE, timestamp=1_800_000_000_001)
    gate = replicas.gate("hi")
    tasks = [deliver(replicas.a, first)]
    await until(lambda: len(replicas.a.engine.calls) == 1)
    tasks.append(deliver(replicas.b, second))
    await until(lambda: len(replicas.b.engine.calls) == 1)
    await asyncio.sleep(0.1)
    assert replicas.texts() == []
    gate.set()
    await done(*tasks)
    assert replicas.texts() == ["hi (by a)", "again (by b)"]


async def test_a_predecessor_no_replica_has_seen_is_waited_for_briefly_only(
    replicas: Replicas,
) -> None:
    # Its request never reached ag_queue (the Node side's publish failed): the reply goes
    # after ORDER_GRACE (0.3 s here), in order as far as anyone can know.
    lost = agent_request(text="lost", phone=ALICE)
    after = agent_request(text="after", phone=ALICE, previous=lost.messageId)
    [delivery] = await done(deliver(replicas.b, after))
    assert delivery.acked
    assert replicas.texts() == ["after (by b)"]
    assert replicas.b.counter("agent_order_wait_timeouts_total") == 0


async def test_a_dead_replica_is_taken_over_from_at_once_not_after_its_lease(
    make_database: Callable[..., Awaitable[str]],
) -> None:
    # A lease of a minute: only the dead replica's lost liveness lock can free its request.
    pool = await open_pool(await make_database(), max_size=4)
    a = PostgresRequestStates(pool, lease=60, owner="a")
    b = PostgresRequestStates(pool, lease=60, owner="b")
    await a.start()
    await b.start()
    try:
        request = agent_request(text="hi", phone=ALICE)
        assert (await a.claim(request)).state.value == "new"
        waiting = asyncio.create_task(b.claim(request))
        await asyncio.sleep(0.5)
        assert not waiting.done()  # a lives: b waits
        await a.close()  # a dies: its connection, and with it its lock, is gone
        claim = await asyncio.wait_for(waiting, 5)
        assert claim.state.value == "new"
    finally:
        await a.close()
        await b.close()
        await pool.close()
