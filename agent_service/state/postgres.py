"""The request states and delivery counts in PostgreSQL (``DATABASE_URL``), shared by replicas.

One row per request (``schema.sql``): who holds it (``owner``, with a lease it renews while it
works), its built reply until the broker confirmed it, and where it stands in its contact's
turn order. What a replica does with a delivery, by the row it finds:

- none, or ``released``/``retrying``: it claims the request and runs the agent;
- ``pending`` (a reply was built, never confirmed): it claims it and republishes that reply,
  the agent is not run again, so a request answered on one replica is answered the same on
  another;
- ``done``: a duplicate, acked;
- ``in_flight`` under a live lease: another delivery is working on it (a redelivery after the
  broker lost that replica's connection, while the replica lives on). It waits until that one
  lets go or its lease runs out (the replica died: the lease is not renewed), then takes over.
  Waiting rather than handing back: a hand-back would come straight back to some replica and
  spin until the lease ends, while a wait costs one consumer slot for at most REQUEST_LEASE.

Round trips per request answered at the first delivery: claim, keep the reply, done (3), plus
one turn check when the contact has a request in flight. Lease renewal is one statement per
replica every REQUEST_LEASE / 3, whatever the load.

When PostgreSQL cannot be reached, ``claim`` raises ``StateUnavailable`` (the handler hands
the delivery back, after a pause); the later calls only log: the reply's fixed id still lets
the Node side drop a second copy, and an unrenewed lease frees the request for another replica.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Callable
from importlib import resources
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent_service.contract.messages import AgentReply, AgentRequest
from agent_service.pipeline.dedup import State
from agent_service.pipeline.request_state import Claim, StateUnavailable, contact_key

log = logging.getLogger(__name__)

_PACKAGE = __name__.rpartition(".")[0]
# What a failing database looks like through psycopg and its pool.
DATABASE_ERRORS: tuple[type[Exception], ...] = (psycopg.Error, PoolTimeout, OSError)

# Each replica holds a session advisory lock (this class, its owner's hash) on a connection of
# its own for as long as it lives. PostgreSQL drops it the moment that connection dies (a
# SIGKILLed replica's socket is closed by its kernel), so another replica can take over the
# requests it held at once instead of after REQUEST_LEASE; the lease still covers a replica
# whose host vanished and whose connection PostgreSQL has not noticed to be gone yet.
LIVENESS_CLASS = 71043
LIVENESS_LOCK_SQL = f"SELECT pg_advisory_lock({LIVENESS_CLASS}, hashtext(%s))"
_OWNER_ALIVE = (
    "EXISTS (SELECT 1 FROM pg_locks AS l WHERE l.locktype = 'advisory'"
    f" AND l.classid = {LIVENESS_CLASS} AND l.objsubid = 2 AND l.granted"
    " AND l.objid::bigint = (hashtext(s.owner)::bigint & 4294967295))"
)
CLAIM_SQL = """
INSERT INTO agent_request_state AS s
    (message_id, contact, previous_id, sent_at, state, owner, lease_until)
VALUES (%(id)s, %(contact)s, %(previous)s, %(sent_at)s, 'in_flight', %(owner)s,
        now() + make_interval(secs => %(lease)s))
ON CONFLICT (message_id) DO UPDATE
    SET state = 'in_flight', owner = excluded.owner, lease_until = excluded.lease_until,
        updated_at = now()
    WHERE s.state IN ('pending', 'released', 'retrying')
       OR (s.state = 'in_flight' AND (s.lease_until < now() OR NOT OWNER_ALIVE))
RETURNING s.reply, s.arrival
""".replace("OWNER_ALIVE", _OWNER_ALIVE)
HOLDER_SQL = (
    f"SELECT state, owner, lease_until > now() AND {_OWNER_ALIVE}"
    " FROM agent_request_state AS s WHERE message_id = %s"
)
# Keeps the reply and, in the same round trip, tells whether the contact's turn has come
# already (true), not yet (false) or cannot be told (null: a predecessor nobody claimed).
KEEP_REPLY_SQL = """
UPDATE agent_request_state AS s SET reply = %(reply)s::jsonb, updated_at = now()
WHERE s.message_id = %(id)s AND s.owner = %(owner)s
RETURNING CASE
    WHEN s.previous_id IS NOT NULL THEN
        (SELECT p.state <> 'in_flight' FROM agent_request_state AS p
         WHERE p.message_id = s.previous_id)
    ELSE NOT EXISTS (
        SELECT 1 FROM agent_request_state AS e
        WHERE e.contact = s.contact AND e.state = 'in_flight' AND e.message_id <> s.message_id
          AND (e.sent_at, e.arrival) < (s.sent_at, s.arrival))
END
"""
DONE_SQL = (
    "UPDATE agent_request_state SET state = 'done', reply = NULL, owner = NULL,"
    " lease_until = NULL, updated_at = now() WHERE message_id = %s"
)
RELEASE_SQL = """
UPDATE agent_request_state
SET state = CASE WHEN %(retrying)s THEN 'retrying'
                 WHEN reply IS NOT NULL THEN 'pending' ELSE 'released' END,
    owner = NULL, lease_until = NULL, updated_at = now()
WHERE message_id = %(id)s AND owner = %(owner)s
"""
PREVIOUS_SQL = "SELECT state FROM agent_request_state WHERE message_id = %s"
EARLIER_IN_FLIGHT_SQL = """
SELECT EXISTS (
    SELECT 1 FROM agent_request_state
    WHERE contact = %(contact)s AND state = 'in_flight' AND message_id <> %(id)s
      AND (sent_at, arrival) < (%(sent_at)s, %(arrival)s))
"""
RENEW_SQL = (
    "UPDATE agent_request_state SET lease_until = now() + make_interval(secs => %s)"
    " WHERE owner = %s AND state = 'in_flight' AND message_id = ANY(%s)"
)
PRUNE_STATES_SQL = (
    "DELETE FROM agent_request_state WHERE updated_at < now() - make_interval(secs => %s)"
    " AND (state <> 'in_flight' OR lease_until < now())"
)
PRUNE_DELIVERIES_SQL = (
    "DELETE FROM agent_request_deliveries WHERE updated_at < now() - make_interval(secs => %s)"
)
ARRIVED_SQL = """
INSERT INTO agent_request_deliveries AS d (message_id, started, settled) VALUES (%s, 2, 0)
ON CONFLICT (message_id) DO UPDATE SET started = d.started + 1, updated_at = now()
RETURNING started, settled
"""
HANDED_BACK_SQL = """
INSERT INTO agent_request_deliveries AS d (message_id, started, settled) VALUES (%s, 1, 1)
ON CONFLICT (message_id) DO UPDATE SET settled = d.settled + 1, updated_at = now()
"""
FORGET_DELIVERIES_SQL = "DELETE FROM agent_request_deliveries WHERE message_id = %s"

_POLL_FIRST = 0.005
_POLL_LIMIT = 0.1
_HOLDER_POLL = 0.25
_PRUNE_EVERY = 60.0
# Delivery-count rows of requests that settled on another replica are forgotten after this.
_DELIVERIES_HORIZON = 24 * 3600.0
_MAX_KNOWN = 10_000


def replica_id() -> str:
    """This process among the replicas: host, pid and a random part (pids repeat)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def contact_hash(request: AgentRequest) -> str:
    # The turn order needs only equality: the number itself stays out of this table.
    return hashlib.sha256(contact_key(request).encode()).hexdigest()[:32]


def schema_sql() -> str:
    return resources.files(_PACKAGE).joinpath("schema.sql").read_text()


async def open_pool(dsn: str, *, max_size: int, timeout: float = 15.0) -> AsyncConnectionPool[Any]:
    """A connection pool, opened and checked; autocommit: one statement, one round trip.

    One plain connection first: a wrong host, database or password then fails at once with
    PostgreSQL's own words, where a pool would retry in the background and only time out."""
    probe = await psycopg.AsyncConnection.connect(dsn, connect_timeout=max(1, int(timeout)))
    await probe.close()
    pool: AsyncConnectionPool[Any] = AsyncConnectionPool(
        dsn,
        min_size=1,
        max_size=max_size,
        open=False,
        timeout=5.0,
        kwargs={"autocommit": True},
        name="agent-state",
    )
    await pool.open(wait=True, timeout=timeout)
    return pool


class PostgresRequestStates:
    """``RequestStates`` shared by every replica through PostgreSQL. ``start`` begins the lease
    renewal and pruning; ``close`` ends them (the pool belongs to the caller)."""

    def __init__(
        self,
        pool: AsyncConnectionPool[Any],
        *,
        lease: float = 10.0,
        order_wait: float = 60.0,
        order_grace: float = 2.0,
        ttl: float = 900.0,
        owner: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._lease = lease
        self._order_wait = order_wait
        self._order_grace = order_grace
        self._ttl = ttl
        self.owner = owner or replica_id()
        self._clock = clock
        # The requests this replica holds, each with an event set when it lets go (a second
        # delivery here waits on it instead of polling) and its place in the turn order.
        self._held: dict[str, asyncio.Event] = {}
        self._places: dict[str, tuple[str, int, int, str | None]] = {}
        self._in_turn: set[str] = set()  # kept replies found nothing ahead of them
        self._tasks: list[asyncio.Task[None]] = []
        self._liveness: psycopg.AsyncConnection[Any] | None = None

    @property
    def held(self) -> int:
        return len(self._held)

    async def start(self) -> None:
        await self._hold_liveness()
        self._tasks = [
            asyncio.create_task(self._renew_leases(), name="request-lease-renewal"),
            asyncio.create_task(self._prune(), name="request-state-pruning"),
        ]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._liveness is not None:
            with contextlib.suppress(*DATABASE_ERRORS):
                await self._liveness.close()
            self._liveness = None

    async def _hold_liveness(self) -> None:
        """(Re)take this replica's liveness lock on a connection of its own."""
        conninfo = self._pool.conninfo
        if not isinstance(conninfo, str):
            raise TypeError("the request states need a pool made from a connection string")
        connection = await psycopg.AsyncConnection.connect(
            conninfo, autocommit=True, connect_timeout=10
        )
        await connection.execute(LIVENESS_LOCK_SQL, (self.owner,))
        self._liveness = connection

    async def claim(self, request: AgentRequest) -> Claim:
        message_id = request.messageId
        params = {
            "id": message_id,
            "contact": contact_hash(request),
            "previous": request.metadata.previousMessageId,
            "sent_at": request.timestamp,
            "owner": self.owner,
            "lease": self._lease,
        }
        while True:
            try:
                row = await self._one(CLAIM_SQL, params)
                if row is not None:
                    return self._claimed(request, row[0], row[1])
                holder = await self._one(HOLDER_SQL, (message_id,))
            except DATABASE_ERRORS as exc:
                raise StateUnavailable(f"request states in PostgreSQL: {exc!r}") from exc
            if holder is None:
                continue  # pruned between the two statements: claim again
            state, owner, live = holder
            if state == "done":
                return Claim(State.DONE)
            # In flight under a live lease: wait for that delivery, then try again.
            local = self._held.get(message_id) if owner == self.owner else None
            if local is not None:
                await local.wait()
            else:
                # Another replica's: poll until it lets go or its lease runs out (live False).
                await asyncio.sleep(_HOLDER_POLL if live else _POLL_LIMIT)

    def _claimed(self, request: AgentRequest, reply: Any, arrival: int) -> Claim:
        message_id = request.messageId
        self._held[message_id] = asyncio.Event()
        self._places[message_id] = (
            contact_hash(request),
            request.timestamp,
            arrival,
            request.metadata.previousMessageId,
        )
        if reply is None:
            return Claim(State.NEW)
        return Claim(State.PENDING, AgentReply.model_validate(reply))

    async def remember_reply(self, message_id: str, reply: AgentReply) -> None:
        params = {"reply": reply.model_dump_json(), "id": message_id, "owner": self.owner}
        try:
            row = await self._one(KEEP_REPLY_SQL, params)
        except DATABASE_ERRORS as exc:
            log.warning("could not keep the built reply in PostgreSQL", extra={"error": repr(exc)})
            return
        if row is not None and row[0] is True:
            self._in_turn.add(message_id)

    async def done(self, message_id: str) -> None:
        self._let_go(message_id)
        await self._quietly("mark the request done", DONE_SQL, (message_id,))

    async def release(self, message_id: str, *, retrying: bool = False) -> None:
        self._let_go(message_id)
        params = {"id": message_id, "owner": self.owner, "retrying": retrying}
        await self._quietly("release the request", RELEASE_SQL, params)

    def _let_go(self, message_id: str) -> None:
        event = self._held.pop(message_id, None)
        self._places.pop(message_id, None)
        self._in_turn.discard(message_id)
        if event is not None:
            event.set()

    async def wait_turn(self, request: AgentRequest) -> bool:
        place = self._places.get(request.messageId)
        if place is None or self._order_wait <= 0 or request.messageId in self._in_turn:
            return True  # the usual case: told so when the reply was kept
        contact, sent_at, arrival, previous = place
        began = self._clock()
        deadline = began + self._order_wait
        pause = _POLL_FIRST
        while True:
            try:
                if previous is not None:
                    row = await self._one(PREVIOUS_SQL, (previous,))
                    if row is None:
                        # Not claimed anywhere yet: still ahead in the queue, in a retry
                        # queue's first moments, or lost. Waited for briefly only.
                        if self._clock() - began >= self._order_grace:
                            return True
                    elif row[0] != "in_flight":
                        return True
                    else:
                        local = self._held.get(previous)
                        if local is not None:
                            remaining = max(0.0, deadline - self._clock())
                            with contextlib.suppress(TimeoutError):
                                await asyncio.wait_for(local.wait(), remaining)
                            if local.is_set():
                                continue  # let go here: read what it left
                            return False
                else:
                    args: dict[str, object] = {"contact": contact, "id": request.messageId}
                    args |= {"sent_at": sent_at, "arrival": arrival}
                    row = await self._one(EARLIER_IN_FLIGHT_SQL, args)
                    if row is None or not row[0]:
                        return True
            except DATABASE_ERRORS as exc:
                log.warning(
                    "cannot check the contact's turn: replying now", extra={"error": repr(exc)}
                )
                return True
            if self._clock() >= deadline:
                return False
            await asyncio.sleep(min(pause, max(0.0, deadline - self._clock())))
            pause = min(pause * 2, _POLL_LIMIT)

    async def _one(self, sql: str, params: Any) -> tuple[Any, ...] | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            row: tuple[Any, ...] | None = await cursor.fetchone()
            return row

    async def _quietly(self, what: str, sql: str, params: Any) -> None:
        try:
            async with self._pool.connection() as conn:
                await conn.execute(sql, params)
        except DATABASE_ERRORS as exc:
            log.warning("could not %s in PostgreSQL", what, extra={"error": repr(exc)})

    async def _renew_leases(self) -> None:
        while True:
            await asyncio.sleep(self._lease / 3)
            if self._liveness is None or self._liveness.closed or self._liveness.broken:
                # PostgreSQL restarted or the link broke: others see this replica as gone
                # until the lock is back (they may take over; the reply's fixed id keeps
                # the Node side to one send).
                try:
                    await self._hold_liveness()
                except DATABASE_ERRORS as exc:
                    log.warning("cannot hold the liveness lock", extra={"error": repr(exc)})
            if self._held:
                await self._quietly(
                    "renew the leases", RENEW_SQL, (self._lease, self.owner, list(self._held))
                )

    async def _prune(self) -> None:
        while True:
            await asyncio.sleep(_PRUNE_EVERY)
            await self._quietly("prune request states", PRUNE_STATES_SQL, (self._ttl,))
            await self._quietly(
                "prune delivery counts", PRUNE_DELIVERIES_SQL, (_DELIVERIES_HORIZON,)
            )


class PostgresDeliveryLog:
    """``DeliveryLog`` (MAX_DELIVERIES) in PostgreSQL: the same rules as the SQLite log, the
    counts shared by every replica, so a poison request stops wherever it is redelivered."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool
        self._known: set[str] = set()

    async def arrived(self, request_id: str, *, redelivered: bool) -> int:
        if not redelivered:
            return 0
        try:
            async with self._pool.connection() as conn:
                cursor = await conn.execute(ARRIVED_SQL, (request_id,))
                row = await cursor.fetchone()
        except DATABASE_ERRORS as exc:
            raise StateUnavailable(f"delivery counts in PostgreSQL: {exc!r}") from exc
        self._remember(request_id)
        started, settled = row if row is not None else (2, 0)
        return int(started) - 1 - int(settled)

    async def settled(self, request_id: str, *, final: bool) -> None:
        if final and request_id not in self._known:
            return  # the usual case: a first delivery that settled touches nothing
        try:
            async with self._pool.connection() as conn:
                if final:
                    self._known.discard(request_id)
                    await conn.execute(FORGET_DELIVERIES_SQL, (request_id,))
                else:
                    await conn.execute(HANDED_BACK_SQL, (request_id,))
                    self._remember(request_id)
        except DATABASE_ERRORS as exc:
            log.warning("could not count a delivery in PostgreSQL", extra={"error": repr(exc)})

    def _remember(self, request_id: str) -> None:
        if len(self._known) >= _MAX_KNOWN:
            self._known.clear()  # only a hint that a row may exist; old rows are pruned
        self._known.add(request_id)

    def close(self) -> None:
        self._known.clear()


async def migrate_request_states(pool: AsyncConnectionPool[Any]) -> None:
    """Create the request-state tables if missing (idempotent; safe from every replica)."""
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(7104203002)")
        await conn.execute(schema_sql())
