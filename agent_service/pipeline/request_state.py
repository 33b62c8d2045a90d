"""What the replicas must agree on per request: who holds it, its built reply, whose turn it is.

``RequestStates`` is the interface the handler uses. ``MemoryRequestStates`` (this module) is
the embedded default: one process, the ``Deduplicator`` in memory and a contact's replies kept
in the order its requests arrived here. It is single-host, single-replica: replicas that share
``ag_queue`` need ``DATABASE_URL`` (``agent_service.state.postgres``), else each one only knows
the requests it saw itself.

Order per contact: a reply waits before it is published until every request of the same
contact that came before it and is still being worked on has settled (answered, handed to the
retry path, or given back). A request that fails and waits in a retry queue does not hold the
ones behind it: they are answered first. The wait is bounded by ``ORDER_WAIT``; past it the
reply goes out of order rather than never (counted in ``agent_order_waits_total``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from agent_service.contract.messages import AgentReply, AgentRequest
from agent_service.pipeline.dedup import Deduplicator, State


class StateUnavailable(Exception):
    """The shared request states cannot be reached: the delivery is handed back, to be tried
    again, rather than run without knowing whether another replica answered it."""


@dataclass(frozen=True)
class Claim:
    """A request's state before this delivery. NEW and PENDING hand it to this delivery
    (PENDING with the reply to republish); DONE (or IN_FLIGHT, held by another delivery that
    went on holding it) make this delivery a duplicate."""

    state: State
    reply: AgentReply | None = None


class RequestStates(Protocol):
    async def claim(self, request: AgentRequest) -> Claim:
        """Take the request for this delivery; if another delivery holds it, wait until it
        lets go. A contact's requests join its turn order in the order they are claimed."""
        ...

    async def remember_reply(self, message_id: str, reply: AgentReply) -> None:
        """The reply is built: whatever becomes of this delivery, a redelivery (to any replica)
        republishes it instead of running the agent again."""
        ...

    async def wait_turn(self, request: AgentRequest) -> bool:
        """Until the contact's earlier requests have settled; False if ``ORDER_WAIT`` ran out."""
        ...

    async def done(self, message_id: str) -> None:
        """The reply was confirmed by the broker."""
        ...

    async def release(self, message_id: str, *, retrying: bool = False) -> None:
        """This delivery let go without a confirmed reply: a retry was scheduled
        (``retrying``), publishing failed, or the service is stopping."""
        ...

    async def close(self) -> None: ...


class ContactOrder:
    """Per contact, the requests being worked on here, in the order they were claimed."""

    def __init__(self) -> None:
        self._queues: dict[str, dict[str, asyncio.Event]] = {}
        self._contact_of: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._contact_of)

    def enter(self, contact: str, message_id: str) -> None:
        if message_id in self._contact_of:
            return  # a second delivery of a request keeps the first one's place
        self._contact_of[message_id] = contact
        self._queues.setdefault(contact, {})[message_id] = asyncio.Event()

    def leave(self, message_id: str) -> None:
        contact = self._contact_of.pop(message_id, None)
        if contact is None:
            return
        queue = self._queues[contact]
        queue.pop(message_id).set()
        if not queue:
            del self._queues[contact]

    def ahead_of(self, contact: str, message_id: str) -> list[asyncio.Event]:
        """What the request waits for: the contact's requests claimed before it."""
        ahead = []
        for key, event in self._queues.get(contact, {}).items():
            if key == message_id:
                break
            ahead.append(event)
        return ahead


async def wait_events(
    events: list[asyncio.Event], timeout: float, clock: Callable[[], float] = time.monotonic
) -> bool:
    """Until every event is set; False when ``timeout`` seconds ran out first."""
    deadline = clock() + timeout
    for event in events:
        remaining = deadline - clock()
        if remaining <= 0 and not event.is_set():
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), max(remaining, 0))
        if not event.is_set():
            return False
    return True


def contact_key(request: AgentRequest) -> str:
    """Whose turn order a request joins: the contact's phone number."""
    return request.contact.phoneNumber


class MemoryRequestStates:
    """``RequestStates`` in this process (the embedded default, single host, one replica)."""

    def __init__(self, dedup: Deduplicator, *, order_wait: float = 60.0) -> None:
        self._dedup = dedup
        self._order = ContactOrder()
        self._order_wait = order_wait

    @property
    def dedup(self) -> Deduplicator:
        return self._dedup

    @property
    def waiting_order(self) -> int:
        """Requests in some contact's turn order (being worked on here)."""
        return len(self._order)

    async def claim(self, request: AgentRequest) -> Claim:
        # Claims happen in the order deliveries reach the consumer: its tasks start in that
        # order and nothing before this call suspends (decoding is synchronous, and so is
        # the embedded delivery log), so the claim order is the queue's order.
        message_id = request.messageId
        state, reply = self._dedup.claim(message_id)
        if state is State.IN_FLIGHT:
            state = await self._dedup.wait_settled(message_id)
            if state is State.NEW or state is State.PENDING:
                # The other delivery let go without a confirmed reply: this one takes over.
                state, reply = self._dedup.claim(message_id)
        if state is State.NEW or state is State.PENDING:
            self._order.enter(contact_key(request), message_id)
        return Claim(state, reply)

    async def remember_reply(self, message_id: str, reply: AgentReply) -> None:
        self._dedup.remember_reply(message_id, reply)

    async def wait_turn(self, request: AgentRequest) -> bool:
        if self._order_wait <= 0:
            return True  # ORDER_WAIT=0: ordering is off
        ahead = self._order.ahead_of(contact_key(request), request.messageId)
        if not ahead:
            return True
        return await wait_events(ahead, self._order_wait)

    async def done(self, message_id: str) -> None:
        self._dedup.done(message_id)
        self._order.leave(message_id)

    async def release(self, message_id: str, *, retrying: bool = False) -> None:
        self._dedup.release(message_id)
        self._order.leave(message_id)

    async def close(self) -> None:
        """Nothing to close: it all lives in memory."""
