"""The deduplicator's remembered ids stay small: up to DEDUP_MAX_ENTRIES of them live for
DEDUP_TTL, so their size is the service's memory growth under load (harness bench --only soak
found 1.1 KiB per request, about 10 MiB per 10,000)."""

from __future__ import annotations

import asyncio
import tracemalloc

from agent_service.pipeline.dedup import Deduplicator, State


def test_a_done_request_costs_under_400_bytes() -> None:
    dedup = Deduplicator()
    ids = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(2000)]
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for message_id in ids:
            dedup.claim(message_id)
            dedup.done(message_id)
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert grown / len(ids) < 400, f"{grown / len(ids):.0f} bytes per remembered request"


async def test_waiting_on_a_settled_request_returns_its_state() -> None:
    dedup = Deduplicator()
    dedup.claim("a")
    waiter = asyncio.create_task(dedup.wait_settled("a"))
    await asyncio.sleep(0)  # the waiter is parked on the in-flight delivery
    dedup.done("a")
    assert await waiter is State.DONE
    assert await dedup.wait_settled("a") is State.DONE  # nothing left to wait for
