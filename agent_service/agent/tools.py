"""The agent's function tools, bound to one ``BusinessStore`` (SQLite or PostgreSQL).

Each tool is a plain, type-annotated method whose name, signature and docstring ADK turns into
the function declaration the model sees. Bad arguments come back as an error dict the model can
read and correct; a failing backend raises ``TransientAgentError`` (code TOOL_UNAVAILABLE).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from google.adk.tools.tool_context import ToolContext

from agent_service.agent.business.records import Booker, BusinessStore
from agent_service.errors import ErrorCode, TransientAgentError

logger = logging.getLogger(__name__)

# Session state keys the engine sets for each run: who is asking, and which request. Tools
# read them from ADK's tool context; the model cannot set them (DESIGN.md section 10).
REQUEST_ID_STATE = "request_id"
CONTACT_PHONE_STATE = "contact_phone"
CONTACT_NAME_STATE = "contact_name"
DEFAULT_MAX_OPEN_BOOKINGS = 3
_ORDER_ID = re.compile(r"\s*(?:order\s*)?(?:no\.?|number)?\s*#?\s*(\d{1,9})\s*", re.IGNORECASE)
_MAX_QUERY_CHARS = 500
_MAX_NAME_CHARS = 80

ToolFunction = Callable[..., Awaitable[dict[str, Any]]]


def invalid_argument(message: str) -> dict[str, Any]:
    """The result a tool returns for arguments it cannot use; the model reads ``message``."""
    return {"status": "error", "error": "invalid_argument", "message": message}


def _state(tool_context: ToolContext | None, key: str) -> str | None:
    value = tool_context.state.get(key) if tool_context is not None else None
    return str(value) if value else None


def _booker(tool_context: ToolContext | None) -> Booker | None:
    phone = _state(tool_context, CONTACT_PHONE_STATE)
    if phone is None:
        return None
    name = _state(tool_context, CONTACT_NAME_STATE) or phone
    return Booker(phone, name[:_MAX_NAME_CHARS], _state(tool_context, REQUEST_ID_STATE))


def _driver_errors() -> tuple[type[Exception], ...]:
    errors: list[type[Exception]] = [sqlite3.Error]
    try:
        import psycopg
        import psycopg_pool

        errors += [psycopg.Error, psycopg_pool.PoolTimeout]
    except ImportError:  # pragma: no cover - psycopg is a dependency of the service
        pass
    return tuple(errors)


_DRIVER_ERRORS = _driver_errors()


@contextmanager
def _backend(tool: str) -> Iterator[None]:
    try:
        yield
    except _DRIVER_ERRORS as exc:
        logger.warning("tool %s: database error: %s", tool, exc)
        raise TransientAgentError(
            f"{tool}: the business database is unavailable", code=ErrorCode.TOOL_UNAVAILABLE
        ) from exc


class BusinessTools:
    """The tools, as bound async methods ready to hand to ``Agent(tools=...)`` (ADK awaits
    them on the event loop; a store's query is either microseconds of SQLite or a network
    round trip to PostgreSQL, which must not block the loop)."""

    def __init__(
        self,
        database: BusinessStore,
        *,
        today: Callable[[], dt.date] = dt.date.today,
        max_open_bookings: int = DEFAULT_MAX_OPEN_BOOKINGS,
    ) -> None:
        self._db = database
        self._today = today
        self._max_open = max_open_bookings

    def by_name(self) -> dict[str, ToolFunction]:
        """Every tool, keyed by the name the model calls it by."""
        tools: list[ToolFunction] = [
            self.search_catalogue,
            self.get_order_status,
            self.list_free_slots,
            self.book_appointment,
            self.search_faq,
        ]
        return {tool.__name__: tool for tool in tools}

    async def search_catalogue(self, query: str) -> dict[str, Any]:
        """Search the shop's product catalogue (hair care, nails, skin care, gift vouchers).

        Args:
            query: Words describing what the customer looks for, e.g. "shampoo for dry hair".

        Returns:
            {"status": "ok", "count": n, "results": [{"name", "description", "price",
            "in_stock", "stock"}]}, best matches first; an error dict for an empty query.
        """
        if not query.strip() or len(query) > _MAX_QUERY_CHARS:
            return invalid_argument(f"query must be 1 to {_MAX_QUERY_CHARS} characters")
        with _backend("search_catalogue"):
            products = await self._db.search_products(query)
        results = [
            {
                "name": p.name,
                "description": p.description,
                "price": round(p.price_cents / 100, 2),
                "in_stock": p.stock > 0,
                "stock": p.stock,
            }
            for p in products
        ]
        return {"status": "ok", "count": len(results), "results": results}

    async def get_order_status(
        self, order_id: str, tool_context: ToolContext | None = None
    ) -> dict[str, Any]:
        """Look up the status, items and expected delivery of one of the customer's orders.

        Args:
            order_id: The order number, e.g. "1042" or "#1042".

        Returns:
            {"status": "ok", "found": true, "order": {"id", "status", "eta", "placed_on",
            "items": [{"name", "quantity"}]}}, or "found": false when the customer has no
            order with that number.
        """
        # Only the asking contact's orders exist for this tool: another contact's order is
        # "not found" with no detail (found in a review: any contact read any order by number).
        match = _ORDER_ID.fullmatch(str(order_id))
        if match is None:
            return invalid_argument("order_id must be an order number such as 1042")
        number = int(match.group(1))
        phone = _state(tool_context, CONTACT_PHONE_STATE)
        if phone is None:
            return {"status": "ok", "found": False, "order_id": number}
        with _backend("get_order_status"):
            order = await self._db.get_order(number, phone)
        if order is None:
            return {"status": "ok", "found": False, "order_id": number}
        return {
            "status": "ok",
            "found": True,
            "order": {
                "id": order.id,
                "status": order.status,
                "eta": order.eta,
                "placed_on": order.placed_on,
                "items": [{"name": name, "quantity": qty} for name, qty in order.items],
            },
        }

    async def list_free_slots(self, date: str) -> dict[str, Any]:
        """List free appointment slots at the salon.

        Args:
            date: A day as YYYY-MM-DD, or "today" or "tomorrow"; an empty string lists the
                next free slots on any day.

        Returns:
            {"status": "ok", "date": ..., "slots": [{"slot_id", "date", "time", "service"}]}.
        """
        day = self._parse_day(date)
        if isinstance(day, dict):
            return day
        with _backend("list_free_slots"):
            slots = await self._db.list_free_slots(on=day, from_day=self._today())
        return {
            "status": "ok",
            "date": day.isoformat() if day else "any",
            "slots": [
                {"slot_id": s.id, "date": s.date, "time": s.time, "service": s.service}
                for s in slots
            ],
        }

    async def book_appointment(
        self, slot_id: int, tool_context: ToolContext | None = None
    ) -> dict[str, Any]:
        """Book a free appointment slot for the customer who is writing.

        Args:
            slot_id: The slot_id of a free slot, as returned by list_free_slots.

        Returns:
            {"status": "ok", "booked": true, "slot": {...}}, or "booked": false with a
            "reason" when the slot does not exist or is taken, or when the customer already
            holds the most bookings allowed.
        """
        # The booking is for the contact of the request, from ADK's tool context: the model
        # cannot book for anyone else (found in a review: any name was booked). The request's
        # id keys it, so processing the request again returns the booking it made.
        if not isinstance(slot_id, int) or isinstance(slot_id, bool) or slot_id <= 0:
            return invalid_argument("slot_id must be a positive whole number from list_free_slots")
        booker = _booker(tool_context)
        if booker is None:
            return invalid_argument("bookings are made for the customer of a conversation")
        with _backend("book_appointment"):
            booking = await self._db.book_slot(
                slot_id, booker, max_open=self._max_open, today=self._today()
            )
        slot = booking.slot
        if booking.limit_reached:
            return {
                "status": "ok",
                "booked": False,
                "reason": f"you already hold {self._max_open} upcoming appointments",
            }
        if slot is None:
            return {"status": "ok", "booked": False, "reason": "no such slot"}
        details = {
            "slot_id": slot.id,
            "date": slot.date,
            "time": slot.time,
            "service": slot.service,
        }
        if not booking.booked:
            return {
                "status": "ok",
                "booked": False,
                "reason": "slot already booked",
                "slot": details,
            }
        if not booking.repeated:
            logger.info("booked slot %s", slot.id)
        return {"status": "ok", "booked": True, "slot": details}

    async def search_faq(self, query: str) -> dict[str, Any]:
        """Search the salon's frequently asked questions (hours, location, delivery, returns,
        payment, services, vouchers).

        Args:
            query: The customer's question or its key words.

        Returns:
            {"status": "ok", "count": n, "results": [{"question", "answer"}]}, best first.
        """
        if not query.strip() or len(query) > _MAX_QUERY_CHARS:
            return invalid_argument(f"query must be 1 to {_MAX_QUERY_CHARS} characters")
        with _backend("search_faq"):
            entries = await self._db.search_faq(query)
        results = [{"question": e.question, "answer": e.answer} for e in entries]
        return {"status": "ok", "count": len(results), "results": results}

    def _parse_day(self, text: str) -> dt.date | dict[str, Any] | None:
        cleaned = text.strip().lower()
        if cleaned in ("", "any", "next", "soon"):
            return None
        if cleaned == "today":
            return self._today()
        if cleaned == "tomorrow":
            return self._today() + dt.timedelta(days=1)
        if len(cleaned) == 10:
            try:
                return dt.date.fromisoformat(cleaned)
            except ValueError:
                pass
        return invalid_argument('date must be YYYY-MM-DD, "today", "tomorrow" or empty')
