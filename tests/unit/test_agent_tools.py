"""The demo database and the agent's tools: results, bad arguments, injection, failures."""

from __future__ import annotations

import inspect
import json
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agent_service.agent import open_demo_database
from agent_service.agent.database import (
    BOOK_SLOT_SQL,
    BusinessDatabase,
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
def db() -> Iterator[BusinessDatabase]:
    with open_demo_database(None) as database:
        yield database


@pytest.fixture
def tools(db: BusinessDatabase) -> BusinessTools:
    return BusinessTools(db)


def table_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        tables = ("products", "orders", "order_items", "appointment_slots", "faq")
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def sqlite_internal(sql: str) -> bool:
    # FTS5 runs its own statements on its shadow tables: nested ones are traced with a "--"
    # prefix, the ones loading its config on first use name the schema as 'main'.
    return sql.startswith("--") or "'main'." in sql


def call_every_tool(tools: BusinessTools, text: str, ctx: Any = None) -> list[dict[str, Any]]:
    ctx = ctx or Ctx(name=text)
    return [
        tools.search_catalogue(text),
        tools.get_order_status(text, ctx),
        tools.list_free_slots(text),
        tools.book_appointment(1, ctx),
        tools.search_faq(text),
    ]


def test_tools_are_named_and_documented_for_the_model(tools: BusinessTools) -> None:
    by_name = tools.by_name()
    assert list(by_name) == [
        "search_catalogue",
        "get_order_status",
        "list_free_slots",
        "book_appointment",
        "search_faq",
    ]
    assert all(tool.__doc__ and "Args:" in tool.__doc__ for tool in by_name.values())


def test_search_catalogue_ranks_matches_and_reports_stock(tools: BusinessTools) -> None:
    result = tools.search_catalogue("shampoos for dry hair")
    names = [r["name"] for r in result["results"]]
    assert result["status"] == "ok"
    assert names[0] == "Argan Oil Shampoo"  # porter stemming: "shampoos" finds "shampoo"
    tea_tree = next(r for r in result["results"] if r["name"] == "Tea Tree Shampoo")
    assert tea_tree["in_stock"] is False
    assert tea_tree["price"] == 12.0


def test_get_order_status_accepts_common_spellings(tools: BusinessTools) -> None:
    for spelling in ("1042", "#1042", "order 1042", " Order #1042 "):
        result = tools.get_order_status(spelling, Ctx())
        assert result["found"] is True
        assert result["order"]["status"] == "shipped"
    not_found = {"status": "ok", "found": False, "order_id": 9999}
    assert tools.get_order_status("9999", Ctx()) == not_found


@pytest.mark.parametrize("number", range(1041, 1047))
def test_another_contacts_order_is_not_found_and_shows_nothing(
    tools: BusinessTools, number: int
) -> None:
    # Found in a review: a contact who owns no order asked for 1041 ... 1046 and got each
    # one's status, delivery estimate and items.
    answer = tools.get_order_status(str(number), Ctx(STRANGER))
    assert answer == {"status": "ok", "found": False, "order_id": number}
    # Without a contact in the tool context (a call from outside a conversation): nothing.
    assert tools.get_order_status(str(number))["found"] is False


def test_each_seeded_order_is_visible_to_its_own_contact(tools: BusinessTools) -> None:
    owners = {1041: "+256700000000", 1042: OWNER, 1043: "+256700000001"}
    owners |= {1044: "+256700000002", 1045: "+256700000003", 1046: "+256700000004"}
    for number, phone in owners.items():
        assert tools.get_order_status(str(number), Ctx(phone))["order"]["id"] == number
        others = [p for n, p in owners.items() if n != number]
        assert not any(tools.get_order_status(str(number), Ctx(p))["found"] for p in others)


def test_list_free_slots_any_day_and_one_day(tools: BusinessTools) -> None:
    upcoming = tools.list_free_slots("")
    assert upcoming["date"] == "any"
    assert upcoming["slots"]
    first_day = upcoming["slots"][0]["date"]
    one_day = tools.list_free_slots(first_day)
    assert {s["date"] for s in one_day["slots"]} == {first_day}
    assert tools.list_free_slots("1999-01-01")["slots"] == []


@pytest.mark.parametrize("bad", ["next week", "2026-02-30", "31/12/2026", "tomorrow; DROP"])
def test_list_free_slots_rejects_unreadable_dates(tools: BusinessTools, bad: str) -> None:
    assert tools.list_free_slots(bad)["error"] == "invalid_argument"


def test_booking_takes_a_free_slot_exactly_once(tools: BusinessTools) -> None:
    slot_id = tools.list_free_slots("")["slots"][0]["slot_id"]
    first = tools.book_appointment(slot_id, Ctx())
    again = tools.book_appointment(slot_id, Ctx(STRANGER, "Someone Else"))
    assert first["booked"] is True
    assert again == {**again, "booked": False, "reason": "slot already booked"}
    assert slot_id not in [s["slot_id"] for s in tools.list_free_slots("")["slots"]]
    assert tools.book_appointment(99_999, Ctx())["reason"] == "no such slot"


def test_a_booking_is_for_the_contact_who_asks(db: BusinessDatabase, tools: BusinessTools) -> None:
    slot_id = tools.list_free_slots("")["slots"][0]["slot_id"]
    assert tools.book_appointment(slot_id, Ctx(STRANGER, "Eve"))["booked"]
    with sqlite3.connect(db.path) as conn:
        row = conn.execute(
            "SELECT phone, customer_name FROM appointment_slots WHERE id = ?", (slot_id,)
        )
        assert row.fetchone() == (STRANGER, "Eve")
    # The model cannot name anyone: the tool takes no name, and no contact means no booking.
    assert "customer_name" not in inspect.signature(tools.book_appointment).parameters
    assert tools.book_appointment(slot_id + 1)["error"] == "invalid_argument"


def test_a_contact_holds_at_most_the_configured_open_bookings(db: BusinessDatabase) -> None:
    tools = BusinessTools(db, max_open_bookings=2)
    slots = [s["slot_id"] for s in tools.list_free_slots("")["slots"]]
    assert [tools.book_appointment(s, Ctx())["booked"] for s in slots[:3]] == [True, True, False]
    assert "already hold 2 upcoming" in tools.book_appointment(slots[3], Ctx())["reason"]
    assert tools.book_appointment(slots[3], Ctx(STRANGER))["booked"]  # another contact may


def test_a_request_processed_twice_books_once_and_gets_its_booking(tools: BusinessTools) -> None:
    slots = [s["slot_id"] for s in tools.list_free_slots("")["slots"]]
    first = tools.book_appointment(slots[0], Ctx(request_id="req-1"))
    # The retry (or a redelivery) books again, even another slot: it gets its first booking.
    again = tools.book_appointment(slots[0], Ctx(request_id="req-1"))
    other = tools.book_appointment(slots[1], Ctx(request_id="req-1"))
    assert first["booked"] and again == first and other == first
    assert slots[1] in [s["slot_id"] for s in tools.list_free_slots("")["slots"]]
    stranger = tools.book_appointment(slots[0], Ctx(STRANGER, "Eve", "req-2"))
    assert stranger["booked"] is False and stranger["reason"] == "slot already booked"


def test_a_database_from_before_request_keyed_bookings_is_migrated(tmp_path: Path) -> None:
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
        slot = tools.list_free_slots("")["slots"][0]["slot_id"]
        assert tools.book_appointment(slot, Ctx(request_id="r"))["booked"]
        assert tools.book_appointment(slot, Ctx(request_id="r"))["booked"]


@pytest.mark.parametrize("slot_id", [0, -3, True, "7", 1.5, None])
def test_booking_rejects_bad_arguments(tools: BusinessTools, slot_id: Any) -> None:
    assert tools.book_appointment(slot_id, Ctx())["error"] == "invalid_argument"


def test_concurrent_bookings_of_one_slot_have_one_winner(tools: BusinessTools) -> None:
    slot_id = tools.list_free_slots("")["slots"][0]["slot_id"]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(
            pool.map(lambda i: tools.book_appointment(slot_id, Ctx(f"+2567100{i:05d}")), range(20))
        )
    assert sum(r["booked"] for r in results) == 1


@pytest.mark.parametrize("text", ["", "   ", "x" * 501])
def test_searches_reject_empty_or_huge_queries(tools: BusinessTools, text: str) -> None:
    assert tools.search_catalogue(text)["error"] == "invalid_argument"
    assert tools.search_faq(text)["error"] == "invalid_argument"


def test_fts_query_quotes_every_token() -> None:
    assert fts_query('shampoo" OR name:* NEAR(a b)') == '"shampoo" OR "name" OR "near" OR "b"'
    assert fts_query("what is the") == '"what" OR "is" OR "the"'  # only stopwords: keep them
    assert fts_query("'; -- *") is None


@pytest.mark.parametrize("text", INJECTIONS)
def test_hostile_text_is_only_ever_a_bound_value(
    db: BusinessDatabase, tools: BusinessTools, text: str
) -> None:
    before = table_counts(db.path)
    traced: list[str] = []
    db.set_trace_callback(traced.append)
    results = call_every_tool(tools, text)
    db.set_trace_callback(None)
    json.dumps(results)  # every result is JSON-able
    ours = [sql for sql in traced if not sqlite_internal(sql)]
    assert ours
    assert [sql for sql in ours if not is_fixed_statement(sql)] == []
    assert table_counts(db.path) == before


def test_the_only_write_is_the_booking_update(db: BusinessDatabase, tools: BusinessTools) -> None:
    traced: list[str] = []
    db.set_trace_callback(traced.append)
    call_every_tool(tools, "argan shampoo 1042 today")
    writes = [s for s in traced if not s.startswith("SELECT") and not sqlite_internal(s)]
    assert writes
    assert all(s.startswith(BOOK_SLOT_SQL.split("?")[0]) for s in writes)


def test_a_booking_stores_hostile_names_verbatim(
    db: BusinessDatabase, tools: BusinessTools
) -> None:
    slot_id = tools.list_free_slots("")["slots"][0]["slot_id"]
    assert tools.book_appointment(slot_id, Ctx(name="Bobby'); DROP TABLE orders;--"))["booked"]
    with sqlite3.connect(db.path) as conn:
        row = conn.execute("SELECT customer_name FROM appointment_slots WHERE id = ?", (slot_id,))
        assert row.fetchone()[0] == "Bobby'); DROP TABLE orders;--"
    assert table_counts(db.path)["orders"] == 6


def test_a_failing_backend_raises_a_retryable_error(db: BusinessDatabase) -> None:
    tools = BusinessTools(db)
    db.close()
    with pytest.raises(TransientAgentError) as caught:
        tools.search_faq("opening hours")
    assert caught.value.code == ErrorCode.TOOL_UNAVAILABLE
    assert caught.value.retryable


def test_a_named_database_is_created_once_and_persists(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "shop.db"
    with open_demo_database(path) as db:
        slot_id = BusinessTools(db).list_free_slots("")["slots"][0]["slot_id"]
        assert BusinessTools(db).book_appointment(slot_id, Ctx())["booked"]
    with open_demo_database(str(path)) as db:
        assert BusinessTools(db).book_appointment(slot_id, Ctx(STRANGER))["booked"] is False
    assert path.exists()
    assert [p.name for p in path.parent.iterdir()] == ["shop.db"]  # no seed leftovers


def test_a_temporary_database_is_removed_on_close() -> None:
    db = open_demo_database(None)
    folder = db.path.parent
    assert db.path.exists()
    db.close()
    db.close()
    assert not folder.exists()


def test_the_harness_knows_who_owns_each_demo_order(tools: BusinessTools) -> None:
    from harness.scenarios.conversation import DEMO_ORDER_OWNERS

    for phone, number in DEMO_ORDER_OWNERS.items():
        assert tools.get_order_status(str(number), Ctx(phone))["found"], (phone, number)
