"""Deduplication by request ``messageId``: one reply per request, however often it arrives.

A request is NEW, IN_FLIGHT (another delivery of it is being processed here), PENDING (its
reply is built but not yet confirmed: a redelivery republishes that same reply without running
the agent again) or DONE (the reply was confirmed: a redelivery is acked and dropped).
Across process restarts the reply's deterministic id lets the Node side drop a second copy.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from agent_service.contract.messages import AgentReply


class State(StrEnum):
    NEW = "new"
    IN_FLIGHT = "in_flight"
    PENDING = "pending"
    DONE = "done"


@dataclass(slots=True)
class _Entry:
    """Up to DEDUP_MAX_ENTRIES of these live for DEDUP_TTL: kept small. A settled entry drops
    its Event (about 380 B) and a DONE one its reply; with ``__slots__`` a DONE entry costs
    about 250 B with its key, not the 1.1 KiB that made the soak's RSS grow 10 MiB per 10,000
    requests (harness bench --only soak)."""

    state: State
    at: float
    reply: AgentReply | None = None
    # Set (and dropped) when the delivery holding the request lets go; None when none does.
    settled: asyncio.Event | None = field(default_factory=asyncio.Event)


class Deduplicator:
    def __init__(
        self,
        ttl: float = 900.0,
        max_entries: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[str, _Entry] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def _expire(self) -> None:
        limit = self._clock() - self._ttl
        while self._entries:
            key, entry = next(iter(self._entries.items()))
            if entry.at >= limit and len(self._entries) <= self._max:
                break
            if entry.state is State.IN_FLIGHT:  # never forget work in progress
                self._entries.move_to_end(key)
                break
            del self._entries[key]

    def claim(self, message_id: str) -> tuple[State, AgentReply | None]:
        """The request's state before this delivery. NEW and PENDING hand the request to this
        delivery (it is IN_FLIGHT until ``done`` or ``release``); a PENDING one comes with the
        reply to republish."""
        self._expire()
        entry = self._entries.get(message_id)
        if entry is None:
            self._entries[message_id] = _Entry(State.IN_FLIGHT, self._clock())
            return State.NEW, None
        previous = entry.state
        if previous is State.PENDING:
            entry.state = State.IN_FLIGHT
            entry.settled = asyncio.Event()
        return previous, entry.reply

    async def wait_settled(self, message_id: str) -> State:
        """Wait until the delivery holding the request lets go of it; the state it left."""
        entry = self._entries.get(message_id)
        if entry is None:
            return State.NEW
        if entry.settled is None:
            return entry.state
        await entry.settled.wait()
        return entry.state if self._entries.get(message_id) is entry else State.NEW

    def remember_reply(self, message_id: str, reply: AgentReply) -> None:
        """The reply is built: whatever happens to this delivery, a redelivery reuses it."""
        entry = self._entries.get(message_id)
        if entry is not None:
            entry.reply = reply

    def done(self, message_id: str) -> None:
        """The reply was confirmed by the broker. Only the id is kept from now on: holding
        every reply for DEDUP_TTL cost about 7 KiB a request (measured by harness.bench)."""
        self._finish(message_id, State.DONE)
        entry = self._entries.get(message_id)
        if entry is not None:
            entry.reply = None

    def release(self, message_id: str) -> None:
        """This delivery gave the request up without a confirmed reply (a retry was scheduled,
        publishing failed, or the service is stopping): a built reply stays PENDING for the
        next delivery; without one the next delivery starts afresh."""
        entry = self._entries.get(message_id)
        if entry is None:
            return
        if entry.reply is None:
            del self._entries[message_id]
            if entry.settled is not None:
                entry.settled.set()
        else:
            self._finish(message_id, State.PENDING)

    def _finish(self, message_id: str, state: State) -> None:
        entry = self._entries.get(message_id)
        if entry is None:
            return
        entry.state, entry.at = state, self._clock()
        self._entries.move_to_end(message_id)
        if entry.settled is not None:
            entry.settled.set()  # waiters hold the Event itself
            entry.settled = None
