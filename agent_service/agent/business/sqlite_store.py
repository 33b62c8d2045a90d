"""The embedded business data (SQLite): one file, shared by the replicas on one host.

Every statement is a module-level constant listed in ``FIXED_STATEMENTS``; user text only ever
reaches SQLite as a bound parameter. Full-text input is first reduced to a query of quoted word
tokens (``fts_query``), so FTS5 operators in user text are inert, and that query is bound too.
Reads go through a connection opened with ``mode=ro``; the only write is ``BOOK_SLOT_SQL``.
A booking carries the id of the request that made it (unique), so a request processed twice
(a retry after a model failure, a redelivery after a crash) books once and gets its booking.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import sqlite3
import tempfile
import threading
from collections.abc import Callable
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

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

SEARCH_PRODUCTS_SQL = (
    "SELECT p.id, p.name, p.description, p.price_cents, p.stock"
    " FROM products_fts JOIN products AS p ON p.id = products_fts.rowid"
    " WHERE products_fts MATCH ? ORDER BY bm25(products_fts), p.id LIMIT ?"
)
# An order is found only for the phone number that placed it: a contact sees its own orders.
GET_ORDER_SQL = "SELECT id, status, eta, placed_on FROM orders WHERE id = ? AND phone = ?"
GET_ORDER_ITEMS_SQL = (
    "SELECT p.name, i.quantity FROM order_items AS i JOIN products AS p ON p.id = i.product_id"
    " WHERE i.order_id = ? ORDER BY p.name"
)
LIST_FREE_SLOTS_ON_SQL = (
    "SELECT id, date, time, service, status FROM appointment_slots"
    " WHERE status = 'free' AND date = ? ORDER BY time, id LIMIT ?"
)
LIST_FREE_SLOTS_FROM_SQL = (
    "SELECT id, date, time, service, status FROM appointment_slots"
    " WHERE status = 'free' AND date >= ? ORDER BY date, time, id LIMIT ?"
)
GET_SLOT_SQL = "SELECT id, date, time, service, status FROM appointment_slots WHERE id = ?"
BOOK_SLOT_SQL = (
    "UPDATE appointment_slots SET status = 'booked', customer_name = ?, phone = ?,"
    " request_id = ? WHERE id = ? AND status = 'free'"
)
COUNT_OPEN_BOOKINGS_SQL = (
    "SELECT count(*) FROM appointment_slots WHERE phone = ? AND status = 'booked' AND date >= ?"
)
GET_BOOKING_SQL = (
    "SELECT id, date, time, service, status FROM appointment_slots WHERE request_id = ?"
)
SEARCH_FAQ_SQL = (
    "SELECT f.id, f.question, f.answer FROM faq_fts JOIN faq AS f ON f.id = faq_fts.rowid"
    " WHERE faq_fts MATCH ? ORDER BY bm25(faq_fts), f.id LIMIT ?"
)
# IMMEDIATE: take the write lock at the start, so two processes cannot both read the count
# and then both book (busy_timeout makes the second one wait for the first).
BEGIN_SQL = "BEGIN IMMEDIATE"
COMMIT_SQL = "COMMIT"
ROLLBACK_SQL = "ROLLBACK"
INSERT_SLOT_SQL = "INSERT INTO appointment_slots (date, time, service, status) VALUES (?, ?, ?, ?)"
TOP_UP_SLOT_SQL = INSERT_SLOT_SQL.replace("INSERT INTO", "INSERT OR IGNORE INTO")

FIXED_STATEMENTS: tuple[str, ...] = (
    SEARCH_PRODUCTS_SQL,
    GET_ORDER_SQL,
    GET_ORDER_ITEMS_SQL,
    LIST_FREE_SLOTS_ON_SQL,
    LIST_FREE_SLOTS_FROM_SQL,
    GET_SLOT_SQL,
    BOOK_SLOT_SQL,
    GET_BOOKING_SQL,
    COUNT_OPEN_BOOKINGS_SQL,
    SEARCH_FAQ_SQL,
    BEGIN_SQL,
    COMMIT_SQL,
    ROLLBACK_SQL,
)
"""Every statement run after start-up (seeding, which runs before, also uses INSERT_SLOT_SQL)."""

# What a bound value looks like once SQLite expands it into the traced statement text.
_SQL_LITERAL = r"(?:'(?:[^']|'')*'|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|NULL|[xX]'[0-9a-fA-F]*')"
_FIXED_PATTERNS = tuple(
    re.compile("".join(_SQL_LITERAL if ch == "?" else re.escape(ch) for ch in sql), re.DOTALL)
    for sql in FIXED_STATEMENTS
)

_PACKAGE = __name__.rpartition(".")[0]
_FTS_REBUILD = (
    "INSERT INTO products_fts (products_fts) VALUES ('rebuild');\n"
    "INSERT INTO faq_fts (faq_fts) VALUES ('rebuild');"
)


def fts_query(text: str) -> str | None:
    """An FTS5 query matching any word of ``text``, or None when it has no usable word.

    Each token is ``\\w+`` and double-quoted, so nothing in user text can act as FTS5 syntax
    (AND, NEAR, column filters, ``*``, quotes); the result is still bound as a parameter.
    """
    tokens = search_terms(text)
    if not tokens:
        return None
    return " OR ".join(f'"{token}"' for token in tokens)


def is_fixed_statement(traced_sql: str) -> bool:
    """Whether a statement seen by a trace callback is one of ``FIXED_STATEMENTS``.

    Trace callbacks see bound values expanded into the text; a statement qualifies when each
    ``?`` became a single SQL literal and nothing else changed.
    """
    return any(pattern.fullmatch(traced_sql) for pattern in _FIXED_PATTERNS)


class SqliteBusinessStore:
    """The ``BusinessStore`` in an SQLite file. Queries take microseconds, so they run inline
    on the event loop; the lock keeps the connections to one user at a time."""

    def __init__(self, path: Path, *, cleanup_dir: Path | None = None) -> None:
        self._path = path
        self._cleanup_dir = cleanup_dir
        # One lock for both connections: queries take microseconds, so contention is moot, and
        # sqlite3 connections must not be used from two threads at once.
        self._lock = threading.Lock()
        # isolation_level=None: the single UPDATE is atomic on its own, and no implicit
        # BEGIN/COMMIT shows up among the executed statements.
        self._reader = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=ro",
            uri=True,
            check_same_thread=False,
            isolation_level=None,
        )
        self._writer = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        # Replicas on one host share the file: wait for a lock instead of failing at once.
        self._writer.execute("PRAGMA busy_timeout = 5000")
        _migrate(self._writer)
        self._closed = False

    @property
    def path(self) -> Path:
        return self._path

    def set_trace_callback(self, callback: Callable[[str], object] | None) -> None:
        """Report every statement SQLite runs (bound values expanded) to ``callback``."""
        with self._lock:
            self._reader.set_trace_callback(callback)
            self._writer.set_trace_callback(callback)

    async def search_products(self, text: str, limit: int = 5) -> list[Product]:
        query = fts_query(text)
        if query is None:
            return []
        rows = self._read(SEARCH_PRODUCTS_SQL, (query, limit))
        return [Product(*row) for row in rows]

    async def get_order(self, order_id: int, phone: str) -> Order | None:
        """The order if ``phone`` placed it; None for an unknown number and for another
        contact's order alike, so a stranger learns nothing by trying numbers."""
        with self._lock:
            row = self._reader.execute(GET_ORDER_SQL, (order_id, phone)).fetchone()
            if row is None:
                return None
            items = self._reader.execute(GET_ORDER_ITEMS_SQL, (order_id,)).fetchall()
        order_id_, status, eta, placed_on = row
        return Order(order_id_, status, eta, placed_on, tuple((n, q) for n, q in items))

    async def list_free_slots(
        self, *, on: date | None, from_day: date, limit: int = 6
    ) -> list[Slot]:
        """Free slots on one day, or (``on`` None) the next ones from ``from_day``."""
        if on is not None:
            rows = self._read(LIST_FREE_SLOTS_ON_SQL, (on.isoformat(), limit))
        else:
            rows = self._read(LIST_FREE_SLOTS_FROM_SQL, (from_day.isoformat(), limit))
        return [Slot(*row) for row in rows]

    async def get_slot(self, slot_id: int) -> Slot | None:
        rows = self._read(GET_SLOT_SQL, (slot_id,))
        return Slot(*rows[0]) if rows else None

    async def book_slot(
        self, slot_id: int, booker: Booker, *, max_open: int, today: date
    ) -> Booking:
        """Book a free slot for the contact. A request that booked before gets that booking
        back, whichever slot it asks for now; a contact holding ``max_open`` upcoming
        bookings gets no more; otherwise the slot is booked if it is free."""
        with self._lock:
            # One write transaction: replicas on this host sharing the file see the count of
            # open bookings and the booking as one step, so the limit holds between them.
            self._writer.execute(BEGIN_SQL)
            try:
                booking = self._book(slot_id, booker, max_open=max_open, today=today)
            except BaseException:
                self._writer.execute(ROLLBACK_SQL)
                raise
            self._writer.execute(COMMIT_SQL)
        return booking

    def _book(self, slot_id: int, booker: Booker, *, max_open: int, today: date) -> Booking:
        earlier = self._booking_of(booker.request_id)
        if earlier is not None:
            return Booking(True, earlier, repeated=True)
        held = self._writer.execute(
            COUNT_OPEN_BOOKINGS_SQL, (booker.phone, today.isoformat())
        ).fetchone()[0]
        row = self._writer.execute(GET_SLOT_SQL, (slot_id,)).fetchone()
        if held >= max_open:
            return Booking(False, Slot(*row) if row else None, limit_reached=True)
        params = (booker.name, booker.phone, booker.request_id, slot_id)
        booked = self._writer.execute(BOOK_SLOT_SQL, params).rowcount == 1
        row = self._writer.execute(GET_SLOT_SQL, (slot_id,)).fetchone()
        return Booking(booked, Slot(*row) if row else None)

    def _booking_of(self, request_id: str | None) -> Slot | None:
        if request_id is None:
            return None
        row = self._writer.execute(GET_BOOKING_SQL, (request_id,)).fetchone()
        return Slot(*row) if row else None

    def add_upcoming_slots(self, today: date) -> int:
        """The demo's slots for the week after ``today`` where missing: a file kept across
        restarts (the default, in AGENT_STATE_DIR) still has upcoming slots a week later."""
        with self._lock:
            before = self._writer.total_changes
            self._writer.executemany(TOP_UP_SLOT_SQL, demo_slot_rows(today))
            return self._writer.total_changes - before

    async def search_faq(self, text: str, limit: int = 3) -> list[FaqEntry]:
        query = fts_query(text)
        if query is None:
            return []
        return [FaqEntry(*row) for row in self._read(SEARCH_FAQ_SQL, (query, limit))]

    async def close(self) -> None:
        self.close_now()

    def close_now(self) -> None:
        """Close both connections and delete the file if this object created it. Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._reader.close()
            self._writer.close()
        if self._cleanup_dir is not None:
            shutil.rmtree(self._cleanup_dir, ignore_errors=True)

    def __enter__(self) -> SqliteBusinessStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close_now()

    def _read(self, sql: str, params: tuple[object, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._reader.execute(sql, params).fetchall())


def _migrate(db: sqlite3.Connection) -> None:
    # Files seeded by earlier releases: bookings were not keyed by request nor bound to a
    # phone, orders were not bound to one (such an order is then visible to nobody).
    slots = {row[1] for row in db.execute("PRAGMA table_info(appointment_slots)")}
    if "request_id" not in slots:
        db.execute("ALTER TABLE appointment_slots ADD COLUMN request_id TEXT")
        db.execute(
            "CREATE UNIQUE INDEX appointment_slots_request ON appointment_slots (request_id)"
        )
    if "phone" not in slots:
        db.execute("ALTER TABLE appointment_slots ADD COLUMN phone TEXT")
    orders = {row[1] for row in db.execute("PRAGMA table_info(orders)")}
    if "phone" not in orders:
        db.execute("ALTER TABLE orders ADD COLUMN phone TEXT")


def open_demo_database(path: str | os.PathLike[str] | None = None) -> SqliteBusinessStore:
    """Open the demo database at ``path``, creating and seeding the file if it is missing.

    With ``path`` None a fresh database is seeded in a new temporary folder, which ``close()``
    deletes: each caller gets its own isolated data.
    """
    cleanup_dir: Path | None = None
    if path is None:
        cleanup_dir = Path(tempfile.mkdtemp(prefix="wa-agent-db-"))
        db_path = cleanup_dir / "demo.db"
    else:
        db_path = Path(path)
    if not db_path.exists():
        _create_seeded(db_path, today=date.today())
    store = SqliteBusinessStore(db_path, cleanup_dir=cleanup_dir)
    store.add_upcoming_slots(date.today())
    return store


def _create_seeded(db_path: Path, *, today: date) -> None:
    # Seed a private file, then hard-link it into place: link() fails if the name exists, so
    # processes starting together never see a half-seeded file nor replace each other's.
    db_path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".seed-", suffix=".db", dir=db_path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            # One transaction: one sync to disk instead of one per statement.
            schema = resources.files(_PACKAGE).joinpath("schema.sqlite.sql").read_text()
            data = resources.files(_PACKAGE).joinpath("demo_data.sql").read_text()
            # executescript commits before it starts: one transaction, one sync to disk.
            conn.executescript(f"BEGIN;\n{schema}\n{data}\n{_FTS_REBUILD}")
            conn.executemany(INSERT_SLOT_SQL, demo_slot_rows(today))
            conn.execute("COMMIT")
        finally:
            conn.close()
        try:
            os.link(tmp, db_path)
            logger.info("seeded demo database at %s", db_path)
        except FileExistsError:
            logger.info("demo database %s was created concurrently; using it", db_path)
        except OSError:  # a filesystem without hard links: fall back to a plain rename
            if not db_path.exists():
                os.replace(tmp, db_path)
    finally:
        tmp.unlink(missing_ok=True)
