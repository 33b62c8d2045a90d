"""The Node service's database, in SQLite: contacts, the message history, and request outcomes.

Queries run synchronously on the event loop thread: the file is local and every query touches a
handful of rows (well under a millisecond), which costs less than a thread hop would, and one
thread means no locking. ``OutcomeLedger`` adds the in-memory claims that make "one outcome per
request id" hold while sends are still in flight.
"""

from __future__ import annotations

import enum
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from fakes.webhooks import InboundMessage

Role = Literal["user", "assistant"]
RequestOutcome = Literal["reply", "fallback", "parked"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS contacts (
    phone TEXT PRIMARY KEY,
    name TEXT,
    ai_enabled INTEGER NOT NULL,
    user_notes TEXT
);
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    whatsapp_id TEXT UNIQUE,
    phone TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('user', 'assistant')),
    text TEXT NOT NULL,
    at INTEGER NOT NULL,
    request_id TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_phone ON messages (phone, id);
CREATE INDEX IF NOT EXISTS messages_by_request ON messages (request_id);
CREATE TABLE IF NOT EXISTS outcomes (
    request_id TEXT PRIMARY KEY,
    outcome TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS sends (
    msg_id TEXT PRIMARY KEY,
    request_id TEXT NOT NULL,
    at INTEGER NOT NULL
);
"""


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class ContactRow:
    phone: str
    name: str | None
    ai_enabled: bool
    user_notes: str | None


@dataclass(frozen=True, slots=True)
class StoredMessage:
    """One turn of a conversation as stored: what the user wrote or what was sent back."""

    role: Role
    text: str
    at: int  # epoch ms, when the simulator stored it
    whatsapp_id: str | None
    request_id: str | None


class Store:
    """All SQL of the simulator. Phones are stored as E.164 (`+256...`)."""

    def __init__(self, path: Path, *, ai_enabled_by_default: bool = True) -> None:
        # isolation_level=None: autocommit, every statement is its own transaction.
        self._db = sqlite3.connect(path, isolation_level=None)
        # The queries run on the event loop: in the default rollback journal every autocommit
        # statement waits for fsyncs, five or so per message, and at 50 messages/s open loop
        # that stalled the loop (webhooks, sends, the reply consumer) for hundreds of ms
        # (harness bench --only openloop). WAL with synchronous=NORMAL syncs at checkpoints
        # only and still survives a crash of the process (not a power cut: a fake's trade).
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._ai_default = ai_enabled_by_default

    def close(self) -> None:
        self._db.close()

    # -- contacts --------------------------------------------------------------------------

    def ensure_contact(self, phone: str, name: str | None = None) -> None:
        """Create the contact with the default AI setting; a new push name replaces the old."""
        self._db.execute(
            "INSERT INTO contacts (phone, name, ai_enabled) VALUES (?, ?, ?) "
            "ON CONFLICT (phone) DO UPDATE SET name = COALESCE(excluded.name, contacts.name)",
            (phone, name, int(self._ai_default)),
        )

    def contact(self, phone: str) -> ContactRow | None:
        row = self._db.execute(
            "SELECT phone, name, ai_enabled, user_notes FROM contacts WHERE phone = ?", (phone,)
        ).fetchone()
        return None if row is None else ContactRow(row[0], row[1], bool(row[2]), row[3])

    def set_ai_enabled(self, phone: str, enabled: bool) -> None:
        self.ensure_contact(phone)
        self._db.execute(
            "UPDATE contacts SET ai_enabled = ? WHERE phone = ?", (int(enabled), phone)
        )

    def set_user_notes(self, phone: str, notes: str | None) -> None:
        self.ensure_contact(phone)
        self._db.execute("UPDATE contacts SET user_notes = ? WHERE phone = ?", (notes, phone))

    # -- messages --------------------------------------------------------------------------

    def insert_inbound(self, message: InboundMessage, phone: str) -> int | None:
        """Store a user message; its row id, or None when that WhatsApp id is already stored."""
        try:
            cursor = self._db.execute(
                "INSERT INTO messages (whatsapp_id, phone, role, text, at) "
                "VALUES (?, ?, 'user', ?, ?)",
                (message.message_id, phone, message.text or "", _now_ms()),
            )
        except sqlite3.IntegrityError:
            return None
        return cursor.lastrowid

    def forget_inbound(self, row_id: int) -> None:
        """Undo insert_inbound, so Wasender's retry of a webhook we answered 503 is new again."""
        self._db.execute("DELETE FROM messages WHERE id = ?", (row_id,))

    def set_request_id(self, row_id: int, request_id: str) -> None:
        self._db.execute("UPDATE messages SET request_id = ? WHERE id = ?", (request_id, row_id))

    def add_assistant(self, phone: str, text: str, request_id: str) -> None:
        self._db.execute(
            "INSERT INTO messages (phone, role, text, at, request_id) "
            "VALUES (?, 'assistant', ?, ?, ?)",
            (phone, text, _now_ms(), request_id),
        )

    def history(
        self, phone: str, limit: int | None = None, before_id: int | None = None
    ) -> list[StoredMessage]:
        """The contact's turns, oldest first: the last `limit` ones before row `before_id`."""
        rows = self._db.execute(
            "SELECT role, text, at, whatsapp_id, request_id FROM messages "
            "WHERE phone = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (phone, before_id if before_id is not None else 2**62, -1 if limit is None else limit),
        ).fetchall()
        return [StoredMessage(r[0], r[1], r[2], r[3], r[4]) for r in reversed(rows)]

    def whatsapp_id_for(self, request_id: str) -> str | None:
        row = self._db.execute(
            "SELECT whatsapp_id FROM messages WHERE request_id = ? AND role = 'user'",
            (request_id,),
        ).fetchone()
        return None if row is None else str(row[0])

    # -- outcomes --------------------------------------------------------------------------

    def outcome_of(self, request_id: str) -> RequestOutcome | None:
        row = self._db.execute(
            "SELECT outcome FROM outcomes WHERE request_id = ?", (request_id,)
        ).fetchone()
        return None if row is None else row[0]

    def record_outcome(self, request_id: str, outcome: RequestOutcome) -> bool:
        """Record the final outcome; False (and no change) when one is already recorded."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO outcomes (request_id, outcome, at) VALUES (?, ?, ?)",
            (request_id, outcome, _now_ms()),
        )
        return cursor.rowcount == 1

    def record_send(self, msg_id: str, request_id: str) -> None:
        """Wasender's msgId of a send made for ``request_id``: what ties a send to its message
        (the harness's ledger reads it; a phone number alone cannot, in a burst)."""
        self._db.execute(
            "INSERT OR REPLACE INTO sends (msg_id, request_id, at) VALUES (?, ?, ?)",
            (msg_id, request_id, _now_ms()),
        )

    def request_of_send(self, msg_id: str) -> str | None:
        row = self._db.execute(
            "SELECT request_id FROM sends WHERE msg_id = ?", (msg_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def outcomes(self) -> dict[str, RequestOutcome]:
        rows = self._db.execute("SELECT request_id, outcome FROM outcomes ORDER BY at").fetchall()
        return {r[0]: r[1] for r in rows}


class _Claim(enum.Enum):
    ACTIVE = "active"  # a handler is sending it right now
    WAITING = "waiting"  # republished to a retry queue; only that copy may carry on


class OutcomeLedger:
    """Who may act for a request id, so each request ends in exactly one outcome.

    A reply, its duplicate, a late copy from dlx_webhook and a fallback for the same request all
    meet here. Claims live in memory (a restart forgets them, and the broker then redelivers
    whatever was not acked, so nothing is stuck behind a claim nobody holds); final outcomes
    live in the store.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._claims: dict[str, _Claim] = {}

    def claim(self, request_id: str, *, continuation: bool = False) -> bool:
        """True when the caller may act. `continuation` marks the copy a retry queue returned."""
        if self._store.outcome_of(request_id) is not None:
            return False
        held = self._claims.get(request_id)
        if held is _Claim.ACTIVE or (held is _Claim.WAITING and not continuation):
            return False
        self._claims[request_id] = _Claim.ACTIVE
        return True

    def wait(self, request_id: str) -> None:
        """The holder handed the message to a retry queue and let go of this delivery."""
        self._claims[request_id] = _Claim.WAITING

    def release(self, request_id: str) -> None:
        """The holder gave up without an outcome; the broker will deliver the message again."""
        self._claims.pop(request_id, None)

    def finish(self, request_id: str, outcome: RequestOutcome) -> None:
        self._store.record_outcome(request_id, outcome)
        self._claims.pop(request_id, None)
