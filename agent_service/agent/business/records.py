"""The business data the agent's tools read and write, whatever holds it.

``BusinessStore`` is the interface the tools use; ``SqliteBusinessStore`` (the embedded default,
one file shared by the replicas on a host) and ``PostgresBusinessStore`` (``DATABASE_URL``,
shared by replicas on any host) implement it with the same statements' meaning and the same
demo data. User text only ever reaches a database as a bound parameter.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol


@dataclass(frozen=True)
class Product:
    id: int
    name: str
    description: str
    price_cents: int
    stock: int


@dataclass(frozen=True)
class Order:
    id: int
    status: str
    eta: str | None
    placed_on: str
    items: tuple[tuple[str, int], ...]


@dataclass(frozen=True)
class Slot:
    id: int
    date: str
    time: str
    service: str
    status: str


@dataclass(frozen=True)
class Booking:
    booked: bool
    slot: Slot | None
    """The slot booked, or the one asked for (None when it does not exist)."""
    repeated: bool = False
    """The request had booked it before: this is the same booking, not a new one."""
    limit_reached: bool = False
    """The contact already holds the most open bookings allowed."""


@dataclass(frozen=True)
class Booker:
    """Who a booking is for: the contact who asked, from the request, never the model."""

    phone: str
    name: str
    request_id: str | None = None


@dataclass(frozen=True)
class FaqEntry:
    id: int
    question: str
    answer: str


class BusinessStore(Protocol):
    async def search_products(self, text: str, limit: int = 5) -> list[Product]: ...

    async def get_order(self, order_id: int, phone: str) -> Order | None:
        """The order if ``phone`` placed it; None for an unknown number and for another
        contact's order alike, so a stranger learns nothing by trying numbers."""
        ...

    async def list_free_slots(
        self, *, on: date | None, from_day: date, limit: int = 6
    ) -> list[Slot]:
        """Free slots on one day, or (``on`` None) the next ones from ``from_day``."""
        ...

    async def get_slot(self, slot_id: int) -> Slot | None: ...

    async def book_slot(
        self, slot_id: int, booker: Booker, *, max_open: int, today: date
    ) -> Booking:
        """Book a free slot for the contact. A request that booked before gets that booking
        back, whichever slot it asks for now (the request's id is unique among bookings); a
        contact holding ``max_open`` upcoming bookings gets no more; otherwise the slot is
        booked if it is free."""
        ...

    async def search_faq(self, text: str, limit: int = 3) -> list[FaqEntry]: ...

    async def close(self) -> None: ...


# --- what both stores share ---------------------------------------------------------------

_MAX_QUERY_TOKENS = 12
_MAX_TOKEN_LENGTH = 40


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS = _words(
    "a an and are as at be can do does for from have how i in is it me my of on or please the to"
    " what when where which who why you your we our with any"
)


def search_terms(text: str) -> list[str]:
    """The words of ``text`` a full-text search looks for: ``\\w+`` tokens only, so nothing in
    user text can act as query syntax, stopwords left out (unless nothing else is left)."""
    words = [w.lower()[:_MAX_TOKEN_LENGTH] for w in re.findall(r"\w+", text)]
    tokens = list(dict.fromkeys(w for w in words if w not in _STOPWORDS))
    if not tokens:
        tokens = list(dict.fromkeys(words))
    return tokens[:_MAX_QUERY_TOKENS]


_SLOT_TIMES = ("09:00", "10:00", "11:00", "14:00", "15:00", "16:00")
_SLOT_SERVICES = ("haircut", "braiding", "manicure")
_SLOT_DAYS = 7


def demo_slot_rows(today: date) -> list[tuple[str, str, str, str]]:
    """The demo appointment slots (date, time, service, status) for the week after ``today``,
    so freshly seeded data always has upcoming free slots."""
    rows = []
    index = 0
    for offset in range(1, _SLOT_DAYS + 1):
        day = today + timedelta(days=offset)
        if day.weekday() == 6:  # closed on Sundays, as the FAQ says
            continue
        for time in _SLOT_TIMES:
            status = "booked" if index % 4 == 3 else "free"
            service = _SLOT_SERVICES[index % len(_SLOT_SERVICES)]
            rows.append((day.isoformat(), time, service, status))
            index += 1
    return rows
