"""The embedded request states, unit by unit: the deduplication state machine (with a fake
clock: TTL, the entry limit, work in flight never forgotten), concurrent deliveries of one
request taking over from each other, a contact's turn order, and the bounded wait."""

from __future__ import annotations

import asyncio

import pytest

from agent_service.contract.messages import AgentReply
from agent_service.pipeline.dedup import Deduplicator, State
from agent_service.pipeline.engine import AgentAnswer
from agent_service.pipeline.replies import success_reply
from agent_service.pipeline.request_state import ContactOrder, MemoryRequestStates, wait_events
from harness.message_factory import agent_request

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def a_reply() -> AgentReply:
    return success_reply(agent_request(), AgentAnswer("hi"), 0.1)


def answered(dedup: Deduplicator, *ids: str) -> None:
    for message_id in ids:
        dedup.claim(message_id)
        dedup.done(message_id)


# --- the deduplication state machine ---------------------------------------------------------


def test_new_then_in_flight_then_done_for_ever_after() -> None:
    dedup = Deduplicator()
    assert dedup.claim("m") == (State.NEW, None)
    assert dedup.claim("m") == (State.IN_FLIGHT, None)
    dedup.done("m")
    assert dedup.claim("m") == (State.DONE, None)
    assert dedup.claim("m") == (State.DONE, None)  # a DONE claim hands nothing over
    assert len(dedup) == 1


def test_a_built_reply_is_pending_after_a_release_and_handed_to_the_next_delivery() -> None:
    dedup, reply = Deduplicator(), a_reply()
    dedup.claim("m")
    dedup.remember_reply("m", reply)
    dedup.release("m")
    assert dedup.claim("m") == (State.PENDING, reply)
    assert dedup.claim("m") == (State.IN_FLIGHT, reply)  # the taker holds it now


def test_a_release_without_a_reply_forgets_the_request() -> None:
    dedup = Deduplicator()
    dedup.claim("m")
    dedup.release("m")
    assert len(dedup) == 0 and dedup.claim("m") == (State.NEW, None)


def test_done_keeps_only_the_id_not_the_reply() -> None:
    dedup = Deduplicator()
    dedup.claim("m")
    dedup.remember_reply("m", a_reply())
    dedup.done("m")
    state, reply = dedup.claim("m")
    assert state is State.DONE and reply is None


def test_unknown_ids_are_ignored() -> None:
    dedup = Deduplicator()
    dedup.remember_reply("x", a_reply())
    dedup.done("x")
    dedup.release("x")
    assert len(dedup) == 0


def test_an_answered_id_is_remembered_for_exactly_the_default_ttl() -> None:
    clock = Clock()
    dedup = Deduplicator(clock=clock)
    answered(dedup, "m")
    clock.now = 900.0  # DEDUP_TTL's default: still remembered at the boundary
    assert dedup.claim("m")[0] is State.DONE
    dedup2 = Deduplicator(clock=clock)
    clock.now = 0.0
    answered(dedup2, "m")
    clock.now = 900.5
    assert dedup2.claim("m")[0] is State.NEW


def test_past_the_ttl_answered_ids_go_but_work_in_flight_stays() -> None:
    clock = Clock()
    dedup = Deduplicator(ttl=10, clock=clock)
    dedup.claim("running")
    answered(dedup, "old")
    clock.now = 11
    assert dedup.claim("new")[0] is State.NEW
    assert dedup.claim("running")[0] is State.IN_FLIGHT  # never forgotten while held
    assert dedup.claim("old")[0] is State.NEW


def test_the_entry_limit_is_a_maximum_not_one_less() -> None:
    dedup = Deduplicator(max_entries=2)
    answered(dedup, "a", "b")
    assert dedup.claim("a")[0] is State.DONE  # two entries: within the limit
    answered(dedup, "c")
    assert dedup.claim("b")[0] is State.DONE  # "a" was the oldest: it made room
    assert dedup.claim("a")[0] is State.NEW


async def test_waiting_for_the_holder_tells_how_it_let_go() -> None:
    dedup = Deduplicator()
    assert await dedup.wait_settled("nobody") is State.NEW
    dedup.claim("done")
    waiting = asyncio.create_task(dedup.wait_settled("done"))
    dedup.done("done")
    assert await waiting is State.DONE
    dedup.claim("dropped")
    waiting = asyncio.create_task(dedup.wait_settled("dropped"))
    dedup.release("dropped")
    assert await waiting is State.NEW
    dedup.claim("kept")
    dedup.remember_reply("kept", a_reply())
    waiting = asyncio.create_task(dedup.wait_settled("kept"))
    dedup.release("kept")
    assert await waiting is State.PENDING


# --- concurrent deliveries through MemoryRequestStates ---------------------------------------


async def test_a_second_delivery_takes_over_a_request_the_first_let_go() -> None:
    states = MemoryRequestStates(Deduplicator())
    request = agent_request()
    assert (await states.claim(request)).state is State.NEW
    second = asyncio.create_task(states.claim(request))
    await asyncio.sleep(0)
    assert not second.done()  # it waits for the first delivery
    await states.release(request.messageId)
    claim = await second
    assert claim.state is State.NEW and claim.reply is None
    assert states.dedup.claim(request.messageId)[0] is State.IN_FLIGHT  # the second holds it
    assert states.waiting_order == 1


async def test_a_second_delivery_gets_the_reply_the_first_built() -> None:
    states = MemoryRequestStates(Deduplicator())
    request, reply = agent_request(), a_reply()
    await states.claim(request)
    second = asyncio.create_task(states.claim(request))
    await asyncio.sleep(0)
    await states.remember_reply(request.messageId, reply)
    await states.release(request.messageId)
    claim = await second
    assert (claim.state, claim.reply) == (State.PENDING, reply)
    assert states.dedup.claim(request.messageId)[0] is State.IN_FLIGHT
    assert states.waiting_order == 1


async def test_a_second_delivery_of_an_answered_request_is_done_and_waits_for_nothing() -> None:
    states = MemoryRequestStates(Deduplicator())
    request = agent_request()
    await states.claim(request)
    second = asyncio.create_task(states.claim(request))
    await asyncio.sleep(0)
    await states.done(request.messageId)
    assert (await second).state is State.DONE
    assert (await states.claim(request)).state is State.DONE
    assert states.waiting_order == 0  # a duplicate joins no turn order


async def test_a_lone_request_is_in_turn_at_once() -> None:
    states = MemoryRequestStates(Deduplicator())
    request = agent_request()
    await states.claim(request)
    assert await states.wait_turn(request) is True


async def test_the_turn_waits_for_the_earlier_request_of_the_contact() -> None:
    states = MemoryRequestStates(Deduplicator(), order_wait=30)
    first, second = agent_request(text="one"), agent_request(text="two")
    await states.claim(first)
    await states.claim(second)
    turn = asyncio.create_task(states.wait_turn(second))
    await asyncio.sleep(0)
    assert not turn.done()
    await states.done(first.messageId)
    assert await turn is True


# --- the turn order and the bounded wait -----------------------------------------------------


def test_contact_order_tolerates_unknown_ids_and_contacts() -> None:
    order = ContactOrder()
    order.leave("never entered")
    assert order.ahead_of("+256700000000", "m") == []
    order.enter("alice", "a")
    order.enter("alice", "a")  # a second delivery keeps the first one's place
    order.enter("alice", "b")
    assert len(order.ahead_of("alice", "b")) == 1 and len(order) == 2
    order.leave("a")
    assert order.ahead_of("alice", "b") == [] and len(order) == 1


async def test_wait_events_is_true_once_every_event_is_set() -> None:
    events = [asyncio.Event(), asyncio.Event()]
    for event in events:
        event.set()
    assert await wait_events(events, 5) is True
    assert await wait_events([], 0) is True


async def test_wait_events_waits_for_an_event_set_later_within_the_timeout() -> None:
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.05, event.set)
    assert await wait_events([event], 0.5) is True


async def test_wait_events_is_false_when_the_time_ran_out() -> None:
    assert await wait_events([asyncio.Event()], 0) is False
    clock = iter([0.0, 10.0])
    assert await wait_events([asyncio.Event()], 5, clock=lambda: next(clock)) is False


async def test_wait_events_does_not_wait_past_its_timeout() -> None:
    # The loop runs timers in order: the 0.01 s timeout fires before the event is set.
    event = asyncio.Event()
    asyncio.get_running_loop().call_later(0.3, event.set)
    assert await wait_events([event], 0.01) is False


async def test_an_event_already_set_counts_even_after_the_deadline() -> None:
    event = asyncio.Event()
    event.set()
    clock = iter([0.0, 10.0])
    assert await wait_events([event], 5, clock=lambda: next(clock)) is True
