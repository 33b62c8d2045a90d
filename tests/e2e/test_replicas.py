"""Several agent service replicas on one ag_queue, their state shared in a real PostgreSQL: one
killed with SIGKILL mid-run, every request is still answered once with one reply, no slot is
booked twice and no contact holds two bookings; bursts of one contact keep their order."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
import pytest

from harness.ledger import MessageOutcome
from harness.postgres import server_url
from harness.stack import SimulationStack
from harness.waiting import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def distinct_replies(stack: SimulationStack) -> dict[str, set[tuple[str, int]]]:
    """Per request, the different replies the agent service published for it (a reply built
    twice has another timestamp even with the same text)."""
    assert stack.node is not None
    replies: dict[str, set[tuple[str, int]]] = defaultdict(set)
    for seen in stack.node.replies_seen():
        replies[seen.original_message_id].add((seen.text, seen.built_at))
    return replies


async def bookings_by_contact(database_url: str) -> dict[str, int]:
    async with await psycopg.AsyncConnection.connect(database_url) as conn:
        cursor = await conn.execute(
            "SELECT phone, count(*) FROM appointment_slots WHERE phone IS NOT NULL GROUP BY phone"
        )
        return {phone: count for phone, count in await cursor.fetchall()}


@pytest.mark.parametrize("replicas", [2, 3])
async def test_a_replica_killed_mid_run_leaves_every_booking_answered_once(
    make_stack: Callable[..., Awaitable[SimulationStack]], replicas: int
) -> None:
    stack = await make_stack(
        replicas=replicas,
        postgres=server_url(),
        concurrent_tasks=5,
        model_latency="uniform:0.2:0.6",
    )
    assert stack.database_url is not None
    contacts = [f"+2567{n:08d}" for n in range(60)]
    entries = await asyncio.gather(
        *(
            stack.say(phone, "I would like to book an appointment", "appointment")
            for phone in contacts
        )
    )
    assert all(entries)
    # Kill one replica while it holds requests (the model takes 0.2 to 0.6 s per request).
    victim = stack.agents[-1]

    async def victim_busy() -> bool:
        return await victim.in_flight() >= 2

    await wait_until(victim_busy, timeout=60, what="requests in flight on the victim")
    await victim.kill()
    await victim.start()
    await stack.wait_all(asyncio.get_running_loop().time() + 120)
    stack.collect()

    outcomes = [stack.ledger.outcome_of(e) for e in stack.ledger.entries]
    assert outcomes == [MessageOutcome.REPLY] * len(contacts)
    assert stack.ledger.duplicates == []
    conflicting = {k: v for k, v in distinct_replies(stack).items() if len(v) > 1}
    assert conflicting == {}
    held = await bookings_by_contact(stack.database_url)
    assert held and max(held.values()) == 1, held
    # Each booking confirmed in a reply is in the database, for that contact, and no other.
    confirmed = {e.phone for e in stack.ledger.entries if "You are booked" in (e.reply_text or "")}
    assert {phone.lstrip("+") for phone in held} == confirmed


@pytest.mark.parametrize(
    ("replicas", "postgres"), [(1, False), (2, True)], ids=["one-replica", "two-replicas"]
)
async def test_bursts_of_one_contact_are_answered_in_order(
    make_stack: Callable[..., Awaitable[SimulationStack]], replicas: int, postgres: bool
) -> None:
    options: dict[str, Any] = {"postgres": server_url()} if postgres else {}
    stack = await make_stack(
        replicas=replicas, concurrent_tasks=5, model_latency="uniform:0.02:0.4", **options
    )
    assert stack.node is not None
    contacts = [f"+2567{n:08d}" for n in range(4)]
    burst = ["hi", "I need help", "with my order", "it is late", "thanks"]

    async def send_burst(phone: str) -> None:
        for text in burst:  # one after the other, without waiting for the answers
            assert await stack.say(phone, text, "conversation")

    await asyncio.gather(*(send_burst(phone) for phone in contacts))
    await stack.wait_all(asyncio.get_running_loop().time() + 60)
    assert stack.ledger.pending == 0
    order_of_replies: dict[str, list[str]] = defaultdict(list)
    for seen in stack.node.replies_seen():
        if seen.original_message_id not in order_of_replies[seen.phone]:
            order_of_replies[seen.phone].append(seen.original_message_id)
    for phone in contacts:
        published = stack.node.requests_of(phone)
        assert len(published) == len(burst)
        assert order_of_replies[phone] == published, phone
