"""The business data in PostgreSQL (``DATABASE_URL``): shared by every replica, on any host.

The same queries as the SQLite store, with psycopg 3 on an async connection pool and bound
parameters only. Full-text search uses the generated tsvector columns: a query is the user's
``\\w+`` words joined with ``|`` (any of them), so nothing in user text is query syntax.
``migrate`` creates the schema and seeds the demo data once, under an advisory lock, so replicas
starting together neither race nor seed twice.
"""

from __future__ import annotations

import logging
from datetime import date
from importlib import resources
from typing import Any

from psycopg import AsyncConnection, errors
from psycopg_pool import AsyncConnectionPool

from agent_service.agent.business.records import (
    Booker,
    Booking,
    FaqEntry,
    Order,
    Product,
    Slot,
    demo_slot_rows,
    search_terms,
)

logger = logging.getLogger(__name__)

_PACKAGE = __name__.rpartition(".")[0]
# Any fixed number: one advisory lock key for "the schema and the demo data are being made".
_MIGRATION_LOCK = 7_104_203_001

SEARCH_PRODUCTS_SQL = (
    "SELECT id, name, description, price_cents, stock FROM products"
    " WHERE search @@ to_tsquery('english', %(q)s)"
    " ORDER BY ts_rank(search, to_tsquery('english', %(q)s)) DESC, id LIMIT %(limit)s"
)
GET_ORDER_SQL = "SELECT id, status, eta, placed_on FROM orders WHERE id = %s AND phone = %s"
GET_ORDER_ITEMS_SQL = (
    "SELECT p.name, i.quantity FROM order_items AS i JOIN products AS p ON p.id = i.product_id"
    " WHERE i.order_id = %s ORDER BY p.name"
)
LIST_FREE_SLOTS_ON_SQL = (
    "SELECT id, date, time, service, status FROM appointment_slots"
    " WHERE status = 'free' AND date = %s ORDER BY time, id LIMIT %s"
)
LIST_FREE_SLOTS_FROM_SQL = (
    "SELECT id, date, time, service, status FROM appointment_slots"
    " WHERE status = 'free' AND date >= %s ORDER BY date, time, id LIMIT %s"
)
GET_SLOT_SQL = "SELECT id, date, time, service, status FROM appointment_slots WHERE id = %s"
GET_BOOKING_SQL = (
    "SELECT id, date, time, service, status FROM appointment_slots WHERE request_id = %s"
)
COUNT_OPEN_BOOKINGS_SQL = (
    "SELECT count(*) FROM appointment_slots WHERE phone = %s AND status = 'booked' AND date >= %s"
)
BOOK_SLOT_SQL = (
    "UPDATE appointment_slots SET status = 'booked', customer_name = %s, phone = %s,"
    " request_id = %s WHERE id = %s AND status = 'free'"
)
SEARCH_FAQ_SQL = (
    "SELECT id, question, answer FROM faq WHERE search @@ to_tsquery('english', %(q)s)"
    " ORDER BY ts_rank(search, to_tsquery('english', %(q)s)) DESC, id LIMIT %(limit)s"
)
TOP_UP_SLOT_SQL = (
    "INSERT INTO appointment_slots (date, time, service, status) VALUES (%s, %s, %s, %s)"
    " ON CONFLICT (date, time, service) DO NOTHING"
)
CONTACT_LOCK_SQL = "SELECT pg_advisory_xact_lock(71042, hashtext(%s))"
INSERT_SLOT_SQL = (
    "INSERT INTO appointment_slots (date, time, service, status) VALUES (%s, %s, %s, %s)"
)


def tsquery(text: str) -> str | None:
    """A tsquery matching any word of ``text`` (``\\w+`` tokens only), or None."""
    tokens = search_terms(text)
    return " | ".join(tokens) if tokens else None


async def migrate(pool: AsyncConnectionPool[Any], *, today: date | None = None) -> bool:
    """Create the schema if missing and seed the demo data into an empty database; True when
    this call seeded it. Safe to run from every replica at once."""
    schema = resources.files(_PACKAGE).joinpath("schema.postgres.sql").read_text()
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        await conn.execute(schema)
        cursor = await conn.execute("SELECT count(*) FROM products")
        row = await cursor.fetchone()
        if row is not None and row[0] > 0:
            # Seeded before: only the slots of the coming week where missing, so a database
            # kept for weeks still has upcoming slots.
            async with conn.cursor() as slots:
                await slots.executemany(TOP_UP_SLOT_SQL, demo_slot_rows(today or date.today()))
            return False
        await _seed(conn, today or date.today())
    logger.info("seeded the demo business data in PostgreSQL")
    return True


async def _seed(conn: AsyncConnection[Any], today: date) -> None:
    data = resources.files(_PACKAGE).joinpath("demo_data.sql").read_text()
    await conn.execute(data)
    async with conn.cursor() as cursor:
        await cursor.executemany(INSERT_SLOT_SQL, demo_slot_rows(today))


class PostgresBusinessStore:
    """The ``BusinessStore`` on a PostgreSQL pool (which the caller owns and closes)."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self._pool = pool

    @property
    def pool(self) -> AsyncConnectionPool[Any]:
        return self._pool

    async def _rows(self, sql: str, params: Any) -> list[tuple[Any, ...]]:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            return list(await cursor.fetchall())

    async def search_products(self, text: str, limit: int = 5) -> list[Product]:
        query = tsquery(text)
        if query is None:
            return []
        rows = await self._rows(SEARCH_PRODUCTS_SQL, {"q": query, "limit": limit})
        return [Product(*row) for row in rows]

    async def get_order(self, order_id: int, phone: str) -> Order | None:
        async with self._pool.connection() as conn:
            cursor = await conn.execute(GET_ORDER_SQL, (order_id, phone))
            row = await cursor.fetchone()
            if row is None:
                return None
            cursor = await conn.execute(GET_ORDER_ITEMS_SQL, (order_id,))
            items = await cursor.fetchall()
        order_id_, status, eta, placed_on = row
        return Order(order_id_, status, eta, placed_on, tuple((n, q) for n, q in items))

    async def list_free_slots(
        self, *, on: date | None, from_day: date, limit: int = 6
    ) -> list[Slot]:
        if on is not None:
            rows = await self._rows(LIST_FREE_SLOTS_ON_SQL, (on.isoformat(), limit))
        else:
            rows = await self._rows(LIST_FREE_SLOTS_FROM_SQL, (from_day.isoformat(), limit))
        return [Slot(*row) for row in rows]

    async def get_slot(self, slot_id: int) -> Slot | None:
        rows = await self._rows(GET_SLOT_SQL, (slot_id,))
        return Slot(*rows[0]) if rows else None

    async def book_slot(
        self, slot_id: int, booker: Booker, *, max_open: int, today: date
    ) -> Booking:
        async with self._pool.connection() as conn, conn.transaction():
            # One contact's bookings one at a time, on every replica: the count of open
            # bookings and the booking are one step, so MAX_OPEN_BOOKINGS holds under races.
            await conn.execute(CONTACT_LOCK_SQL, (booker.phone,))
            earlier = await _booking_of(conn, booker.request_id)
            if earlier is not None:
                return Booking(True, earlier, repeated=True)
            cursor = await conn.execute(COUNT_OPEN_BOOKINGS_SQL, (booker.phone, today.isoformat()))
            held = (await cursor.fetchone() or (0,))[0]
            slot = await _slot(conn, slot_id)
            if held >= max_open:
                return Booking(False, slot, limit_reached=True)
            booked = await _book(conn, slot_id, booker)
            if not booked:
                # Another replica may have booked for this very request a moment ago.
                earlier = await _booking_of(conn, booker.request_id)
                if earlier is not None:
                    return Booking(True, earlier, repeated=True)
            return Booking(booked, await _slot(conn, slot_id))

    async def search_faq(self, text: str, limit: int = 3) -> list[FaqEntry]:
        query = tsquery(text)
        if query is None:
            return []
        rows = await self._rows(SEARCH_FAQ_SQL, {"q": query, "limit": limit})
        return [FaqEntry(*row) for row in rows]

    async def close(self) -> None:
        """Nothing of its own to close: the pool belongs to the caller."""


async def _book(conn: AsyncConnection[Any], slot_id: int, booker: Booker) -> bool:
    params = (booker.name, booker.phone, booker.request_id, slot_id)
    try:
        async with conn.transaction():  # a savepoint: a unique violation undoes only this
            cursor = await conn.execute(BOOK_SLOT_SQL, params)
            return cursor.rowcount == 1
    except errors.UniqueViolation:
        return False  # this request booked another slot on another replica meanwhile


async def _booking_of(conn: AsyncConnection[Any], request_id: str | None) -> Slot | None:
    if request_id is None:
        return None
    cursor = await conn.execute(GET_BOOKING_SQL, (request_id,))
    row = await cursor.fetchone()
    return Slot(*row) if row else None


async def _slot(conn: AsyncConnection[Any], slot_id: int) -> Slot | None:
    cursor = await conn.execute(GET_SLOT_SQL, (slot_id,))
    row = await cursor.fetchone()
    return Slot(*row) if row else None
