"""The business data and the agent's tools: results, bad arguments, injection, failures.

The tools' behaviour is checked on both stores: the embedded SQLite file and PostgreSQL (a
fresh copy of a seeded database per test, on this machine's server). What only one store has
(SQLite's statement trace, its file migration) is checked on that one.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from agent_service.agent import open_demo_database
from agent_service.agent.business.postgres_store import (
    INSERT_SLOT_SQL,
    PostgresBusinessStore,
    tsquery,
)
from agent_service.agent.business.records import BusinessStore, demo_slot_rows
from agent_service.agent.business.sqlite_store import (
    BOOK_SLOT_SQL,
    SqliteBusinessStore,
    fts_query,
    is_fixed_statement,
)
from agent_service.agent.tools import (
    CONTACT_NAME_STATE,
    CONTACT_PHONE_STATE,
    REQUEST_ID_STATE,
    BusinessTools,
)
from agent_service.errors import ErrorCode, TransientAgentError

if TYPE_CHECKING:
    from harness.postgres import TemplateDatabase

pytestmark = pytest.mark.unit

INJECTIONS = [
    "1042'; DROP TABLE orders;--",
    '" OR 1=1 --',
    "shampoo\" OR name:* AND NEAR(a b) NOT 'x' {x} ) (",
    "'; DELETE FROM faq; --",
    "*",
    "",
]


OWNER = "+256703722777"  # owns order 1042 in the demo data
STRANGER = "+447700900123"  # owns no order


class Ctx:
    """What the tools read of ADK's ToolContext: the session state the engine sets."""

    def __init__(
        self, phone: str = OWNER, name: str = "Amos Okello", request_id: str | None = None
    ) -> None:
        self.state = {CONTACT_PHONE_STATE: phone, CONTACT_NAME_STATE: name}
        if request_id is not None:
            self.state[REQUEST_ID_STATE] = request_id


@pytest.fixture
def db() -> Iterator[SqliteBusinessStore]:
    with open_demo_database(None) as database:
        yield database


@pytest.fixture(scope="module")
async def postgres_pool(postgres_template: TemplateDatabase) -> AsyncIterator[Any]:
    """One seeded PostgreSQL database for the module; each test gets its slots re-seeded."""
    from agent_service.state.postgres import open_pool

    async with postgres_template.copy() as database:
        pool = await open_pool(database.url, max_size=8)
        try:
            yield pool
        finally:
            await pool.close()


@pytest.fixture(params=["sqlite", "postgres"])
async def store(
    request: pytest.FixtureRequest, db: SqliteBusinessStore, postgres_pool: Any
) -> AsyncIterator[BusinessStore]:
    if request.param == "sqlite":
        yield db
        return
    pool = postgres_pool
    # Only the slots change under the tools: back to the seeded ones, as a fresh copy has.
    async with pool.connection() as conn, conn.transaction():
        await conn.execute("TRUNCATE appointment_slots RESTART IDENTITY")
        async with conn.cursor() as cursor:
            await cursor.executemany(INSERT_SLOT_SQL, demo_slot_rows(date.today()))
    yield PostgresBusinessStore(pool)


@pytest.fixture
def tools(store: BusinessStore) -> BusinessTools:
    return BusinessTools(store)


@pytest.fixture
def sqlite_tools(db: SqliteBusinessStore) -> BusinessTools:
    return BusinessTools(db)


async def booked_for(store: BusinessStore, slot_id: int) -> tuple[str, str]:
    """Who a slot is booked for, read straight from the store's database."""
    if isinstance(store, SqliteBusinessStore):
        with sqlite3.connect(store.path) as conn:
            row = conn.execute(
                "SELECT phone, customer_name FROM appointment_slots WHERE id = ?", (slot_id,)
            ).fetchone()
            return (row[0], row[1])
    assert isinstance(store, PostgresBusinessStore)
    async with store.pool.connection() as conn:
        cursor = await conn.execute(
            "SELECT phone, customer_name FROM appointment_slots WHERE id = %s", (slot_id,)
        )
        found = await cursor.fetchone()
        assert found is not None
        return (found[0], found[1])


def table_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        tables = ("products", "orders", "order_items", "appointment_slots", "faq")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def sqlite_internal(sql: str) -> bool:
    # FTS5 runs its own statements on its shadow tables: nested ones are traced with a "--"
    # prefix, the ones loading its config on first use name the schema as 'main'.
    return sql.startswith("--") or "'main'." in sql


async def call_every_tool(tools: BusinessTools, text: str, ctx: Any = None) -> list[dict[str, Any]]:
    ctx = ctx or Ctx(name=text)
    return [
        await tools.search_catalogue(text),
        await tools.get_order_status(text, ctx),
        await tools.list_free_slots(text),
        await tools.book_appointment(1, ctx),
        await tools.search_faq(text),
    ]


async def test_tools_are_named_and_documented_for_the_model(tools: BusinessTools) -> None:
    by_name = tools.by_name()
    assert list(by_name) == [
        "search_catalogue",
        "get_order_status",
        "list_free_slots",
        "book_appointment",
        "search_faq",
    ]
    assert all(tool.__doc__ and "Args:" in tool.__doc__ for tool in by_name.values())


async def test_search_catalogue_ranks_matches_and_reports_stock(tools: BusinessTools) -> None:
    result = await tools.search_catalogue("shampoos for dry hair")
    names = [r["name"] for r in result["results"]]
    assert result["status"] == "ok"
    assert names[0] == "Argan Oil Shampoo"  # porter stemming: "shampoos" finds "shampoo"
    tea_tree = next(r for r in result["results"] if r["name"] == "Tea Tree Shampoo")
    assert tea_tree["in_stock"] is False
    assert tea_tree["price"] == 12.0


async def test_get_order_status_accepts_common_spellings(tools: BusinessTools) -> None:
    for spelling in ("1042", "#1042", "order 1042", " Order #1042 "):
        result = await tools.get_order_status(spelling, Ctx())
        assert result["found"] is True
        assert result["order"]["status"] == "shipped"
    not_found = {"status": "ok", "found": False, "order_id": 9999}
    assert await tools.get_order_status("9999", Ctx()) == not_found


@pytest.mark.parametrize("number", range(1041, 1047))
async def test_another_contacts_order_is_not_found_and_shows_nothing(
    tools: BusinessTools, number: int
) -> None:
    # Found in a review: a contact who owns no order asked for 1041 ... 1046 and got each
    # one's status, delivery estimate and items.
    answer = await tools.get_order_status(str(number), Ctx(STRANGER))
    assert answer == {"status": "ok", "found": False, "order_id": number}
    # Without a contact in the tool context (a call from outside a conversation): nothing.
    assert (await tools.get_order_status(str(number)))["found"] is False


async def test_each_seeded_order_is_visible_to_its_own_contact(tools: BusinessTools) -> None:
    owners = {1041: "+256700000000", 1042: OWNER, 1043: "+256700000001"}
    owners |= {1044: "+256700000002", 1045: "+256700000003", 1046: "+256700000004"}
    for number, phone in owners.items():
        assert (await tools.get_order_status(str(number), Ctx(phone)))["order"]["id"] == number
        others = [p for n, p in owners.items() if n != number]
        seen = [(await tools.get_order_status(str(number), Ctx(p)))["found"] for p in others]
        assert not any(seen)


async def test_list_free_slots_any_day_and_one_day(tools: BusinessTools) -> None:
    upcoming = await tools.list_free_slots("")
    assert upcoming["date"] == "any"
    assert upcoming["slots"]
    first_day = upcoming["slots"][0]["date"]
    one_day = await tools.list_free_slots(first_day)
    assert {s["date"] for s in one_day["slots"]} == {first_day}
    assert (await tools.list_free_slots("1999-01-01"))["slots"] == []


@pytest.mark.parametrize("bad", ["next week", "2026-02-30", "31/12/2026", "tomorrow; DROP"])
async def test_list_free_slots_rejects_unreadable_dates(tools: BusinessTools, bad: str) -> None:
    assert (await tools.list_free_slots(bad))["error"] == "invalid_argument"


async def test_booking_takes_a_free_slot_exactly_once(tools: BusinessTools) -> None:
    slot_id = (await tools.list_free_slots(""))["slots"][0]["slot_id"]
    first = await tools.book_appointment(slot_id, Ctx())
    again = await tools.book_appointment(slot_id, Ctx(STRANGER, "Someone Else"))
    assert first["booked"] is True
    assert again == {**again, "booked": False, "reason": "slot already booked"}
    assert slot_id not in [s["slot_id"] for s in (await tools.list_free_slots(""))["slots"]]
    assert (await tools.book_appointment(99_999, Ctx()))["reason"] == "no such slot"


async def test_a_booking_is_for_the_contact_who_asks(
    store: BusinessStore, tools: BusinessTools
) -> None:
    slot_id = (await tools.list_free_slots(""))["slots"][0]["slot_id"]
    assert (await tools.book_appointment(slot_id, Ctx(STRANGER, "Eve")))["booked"]
    assert await booked_for(store, slot_id) == (STRANGER, "Eve")
    # The model cannot name anyone: the tool takes no name, and no contact means no booking.
    assert "customer_name" not in inspect.signature(tools.book_appointment).parameters
    assert (await tools.book_appointment(slot_id + 1))["error"] == "invalid_argument"


async def test_a_contact_holds_at_most_the_configured_open_bookings(
    store: BusinessStore,
) -> None:
    tools = BusinessTools(store, max_open_bookings=2)
    slots = [s["slot_id"] for s in (await tools.list_free_slots(""))["slots"]]
    booked = [(await tools.book_appointment(s, Ctx()))["booked"] for s in slots[:3]]
    assert booked == [True, True, False]
    assert "already hold 2 upcoming" in (await tools.book_appointment(slots[3], Ctx()))["reason"]
    assert (await tools.book_appointment(slots[3], Ctx(STRANGER)))["booked"]  # another may


async def test_a_request_processed_twice_books_once_and_gets_its_booking(
    tools: BusinessTools,
) -> None:
    slots = [s["slot_id"] for s in (await tools.list_free_slots(""))["slots"]]
    first = await tools.book_appointment(slots[0], Ctx(request_id="req-1"))
    # The retry (or a redelivery) books again, even another slot: it gets its first booking.
    again = await tools.book_appointment(slots[0], Ctx(request_id="req-1"))
    other = await tools.book_appointment(slots[1], Ctx(request_id="req-1"))
    assert first["booked"] and again == first and other == first
    assert slots[1] in [s["slot_id"] for s in (await tools.list_free_slots(""))["slots"]]
    stranger = await tools.book_appointment(slots[0], Ctx(STRANGER, "Eve", "req-2"))
    assert stranger["booked"] is False and stranger["reason"] == "slot already booked"


async def test_a_database_from_before_request_keyed_bookings_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    with open_demo_database(path):
        pass
    with sqlite3.connect(path) as old:  # the schema of the previous release
        old.execute("DROP INDEX IF EXISTS appointment_slots_request")
        old.execute("ALTER TABLE appointment_slots DROP COLUMN request_id")
        old.execute("ALTER TABLE appointment_slots DROP COLUMN phone")
        old.execute("ALTER TABLE orders DROP COLUMN phone")
    with open_demo_database(path) as db:
        tools = BusinessTools(db)
        slot = (await tools.list_free_slots(""))["slots"][0]["slot_id"]
        assert (await tools.book_appointment(slot, Ctx(request_id="r")))["booked"]
        assert (await tools.book_appointment(slot, Ctx(request_id="r")))["booked"]


@pytest.mark.parametrize("slot_id", [0, -3, True, "7", 1.5, None])
async def test_booking_rejects_bad_arguments(tools: BusinessTools, slot_id: Any) -> None:
    assert (await tools.book_appointment(slot_id, Ctx()))["error"] == "invalid_argument"


async def test_concurrent_bookings_of_one_slot_have_one_winner(tools: BusinessTools) -> None:
    slot_id = (await tools.list_free_slots(""))["slots"][0]["slot_id"]
    results = await asyncio.gather(
        *(tools.book_appointment(slot_id, Ctx(f"+2567100{i:05d}")) for i in range(20))
    )
    assert sum(r["booked"] for r in results) == 1


async def test_one_contact_booking_at_once_gets_no_more_than_the_limit(
    store: BusinessStore,
) -> None:
    # Bookings of one contact on several replicas at once: the count and the booking are one
    # step, so the limit holds (each request has its own id, so each may book).
    tools = BusinessTools(store, max_open_bookings=2)
    slots = [s["slot_id"] for s in (await tools.list_free_slots(""))["slots"]]
    results = await asyncio.gather(
        *(tools.book_appointment(s, Ctx(request_id=f"r{s}")) for s in slots[:5])
    )
    assert sum(r["booked"] for r in results) == 2


@pytest.mark.parametrize("text", ["", "   ", "x" * 501])
async def test_searches_reject_empty_or_huge_queries(tools: BusinessTools, text: str) -> None:
    assert (await tools.search_catalogue(text))["error"] == "invalid_argument"
    assert (await tools.search_faq(text))["error"] == "invalid_argument"


async def test_fts_query_quotes_every_token() -> None:
    assert fts_query('shampoo" OR name:* NEAR(a b)') == '"shampoo" OR "name" OR "near" OR "b"'
    assert fts_query("what is the") == '"what" OR "is" OR "the"'  # only stopwords: keep them
    assert fts_query("'; -- *") is None


async def test_tsquery_joins_plain_words_only() -> None:
    assert tsquery("shampoo' & !name:* <-> (a|b)") == "shampoo | name | b"
    assert tsquery("'; -- *") is None


@pytest.mark.parametrize("text", INJECTIONS)
async def test_hostile_text_is_only_ever_a_bound_value(
    db: SqliteBusinessStore, sqlite_tools: BusinessTools, text: str
) -> None:
    before = table_counts(db.path)
    traced: list[str] = []
    db.set_trace_callback(traced.append)
    results = await call_every_tool(sqlite_tools, text)
    db.set_trace_callback(None)
    json.dumps(results)  # every result is JSON-able
    ours = [sql for sql in traced if not sqlite_internal(sql)]
    assert ours
    assert [sql for sql in ours if not is_fixed_statement(sql)] == []
    assert table_counts(db.path) == before


async def test_hostile_text_leaves_postgres_data_as_it_was(
    store: BusinessStore, tools: BusinessTools
) -> None:
    if not isinstance(store, PostgresBusinessStore):
        return  # SQLite: the statement trace above checks more
    before = await postgres_counts(store)
    for text in INJECTIONS:
        json.dumps(await call_every_tool(tools, text))
    after = await postgres_counts(store)
    # One write only: the first call booked slot 1, named verbatim; nothing else changed.
    assert after == {**before, "booked": before["booked"] + 1}
    assert await booked_for(store, 1) == (OWNER, INJECTIONS[0])


async def postgres_counts(store: PostgresBusinessStore) -> dict[str, int]:
    tables = ("products", "orders", "order_items", "appointment_slots", "faq")
    counts = {}
    async with store.pool.connection() as conn:
        for table in tables:
            cursor = await conn.execute(f"SELECT count(*) FROM {table}")
            counts[table] = (await cursor.fetchone() or (0,))[0]
        cursor = await conn.execute(
            "SELECT count(*) FROM appointment_slots WHERE customer_name IS NOT NULL"
        )
        counts["booked"] = (await cursor.fetchone() or (0,))[0]
    return counts


async def test_the_only_write_is_the_booking_update(
    db: SqliteBusinessStore, sqlite_tools: BusinessTools
) -> None:
    traced: list[str] = []
    db.set_trace_callback(traced.append)
    await call_every_tool(sqlite_tools, "argan shampoo 1042 today")
    writes = [s for s in traced if not s.startswith("SELECT") and not sqlite_internal(s)]
    booking = [s for s in writes if s.startswith(BOOK_SLOT_SQL.split("?")[0])]
    assert booking
    # Around it only the transaction that makes the limit check and the booking one step.
    assert [s for s in writes if s not in booking] == ["BEGIN IMMEDIATE", "COMMIT"]


async def test_a_booking_stores_hostile_names_verbatim(
    store: BusinessStore, tools: BusinessTools
) -> None:
    name = "Bobby'); DROP TABLE orders;--"
    slot_id = (await tools.list_free_slots(""))["slots"][0]["slot_id"]
    assert (await tools.book_appointment(slot_id, Ctx(name=name)))["booked"]
    assert await booked_for(store, slot_id) == (OWNER, name)
    assert (await tools.get_order_status("1042", Ctx()))["found"]  # orders still there


async def test_a_failing_backend_raises_a_retryable_error(
    store: BusinessStore, postgres_template: TemplateDatabase
) -> None:
    if isinstance(store, PostgresBusinessStore):
        from agent_service.state.postgres import open_pool

        pool = await open_pool(postgres_template.url, max_size=1)
        await pool.close()  # every query now fails, as a lost database would
        tools = BusinessTools(PostgresBusinessStore(pool))
    else:
        tools = BusinessTools(store)
        await store.close()
    with pytest.raises(TransientAgentError) as caught:
        await tools.search_faq("opening hours")
    assert caught.value.code == ErrorCode.TOOL_UNAVAILABLE
    assert caught.value.retryable


async def test_a_named_database_is_created_once_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "shop.db"
    with open_demo_database(path) as db:
        slot_id = (await BusinessTools(db).list_free_slots(""))["slots"][0]["slot_id"]
        assert (await BusinessTools(db).book_appointment(slot_id, Ctx()))["booked"]
    with open_demo_database(str(path)) as db:
        assert (await BusinessTools(db).book_appointment(slot_id, Ctx(STRANGER)))["booked"] is False
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["shop.db"]  # no seed leftovers


async def test_a_temporary_database_is_removed_on_close() -> None:
    db = open_demo_database(None)
    folder = db.path.parent
    assert db.path.exists()
    await db.close()
    db.close_now()
    assert not folder.exists()


async def test_the_harness_knows_who_owns_each_demo_order(tools: BusinessTools) -> None:
    from harness.scenarios.conversation import DEMO_ORDER_OWNERS

    for phone, number in DEMO_ORDER_OWNERS.items():
        assert (await tools.get_order_status(str(number), Ctx(phone)))["found"], (phone, number)


async def test_a_demo_file_seeded_weeks_ago_gets_the_coming_weeks_slots(tmp_path: Path) -> None:
    from agent_service.agent.business.sqlite_store import _create_seeded

    path = tmp_path / "old.db"
    _create_seeded(path, today=date.today() - timedelta(days=30))
    with open_demo_database(path) as db:
        slots = (await BusinessTools(db).list_free_slots(""))["slots"]
        assert slots and min(s["date"] for s in slots) > date.today().isoformat()
        assert db.add_upcoming_slots(date.today()) == 0  # once only


async def test_a_postgres_database_seeded_weeks_ago_gets_the_coming_weeks_slots(
    make_database: Callable[..., Awaitable[str]],
) -> None:
    from agent_service.agent.business.postgres_store import migrate
    from agent_service.state.postgres import open_pool

    pool = await open_pool(await make_database(seeded=False), max_size=2)
    try:
        assert await migrate(pool, today=date.today() - timedelta(days=30))
        tools = BusinessTools(PostgresBusinessStore(pool))
        assert (await tools.list_free_slots(""))["slots"] == []
        assert not await migrate(pool)  # a restart: not seeded again, slots topped up
        slots = (await tools.list_free_slots(""))["slots"]
        assert slots and min(s["date"] for s in slots) > date.today().isoformat()
    finally:
        await pool.close()
