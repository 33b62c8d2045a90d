"""Counting the deliveries of a request that never settled, so a poison request stops looping.

A request that crashes the service (or hangs it until the broker drops the link) on every
delivery would come back until its TTL ran out: classic queues have no delivery limit and the
broker only says "redelivered", not how often. This log counts, per request, the deliveries
that began and never settled, in a place a crash does not erase (an SQLite file by default,
shared by the replicas on one host). The handler dead-letters a request whose count reaches
MAX_DELIVERIES.

Cost: a first delivery (not redelivered) that settles touches no file at all; only
redeliveries and hand-backs, which are rare, are written.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

# Rows of requests that settled elsewhere (another replica) are forgotten after this long:
# no request lives in the queues that long (ag_queue's TTL is minutes, retries add minutes).
_HORIZON_SECONDS = 24 * 3600
_PRUNE_EVERY = 500
_MAX_KNOWN = 10_000


class DeliveryLog(Protocol):
    async def arrived(self, request_id: str, *, redelivered: bool) -> int:
        """A delivery of the request begins: how many earlier deliveries never settled."""
        ...

    async def settled(self, request_id: str, *, final: bool) -> None:
        """This delivery settled: ``final`` (acked: the request is done here) or handed back
        on purpose (it will be redelivered, and that is no crash)."""
        ...

    def close(self) -> None: ...


class MemoryDeliveryLog:
    """The same rules in memory, for tests: a 'crash' is a delivery that never settles."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[int, int]] = {}  # request id -> (started, settled)

    async def arrived(self, request_id: str, *, redelivered: bool) -> int:
        if not redelivered:
            return 0
        started, settled = self.rows.get(request_id, (1, 0))
        self.rows[request_id] = (started + 1, settled)
        return started - settled

    async def settled(self, request_id: str, *, final: bool) -> None:
        if final:
            self.rows.pop(request_id, None)
            return
        started, settled = self.rows.get(request_id, (1, 0))
        self.rows[request_id] = (started, settled + 1)

    def close(self) -> None:
        self.rows.clear()


class SqliteDeliveryLog:
    """The delivery log in an SQLite file (WAL), safe to share between processes on one host.

    A row exists only for a request that was redelivered or handed back: ``started`` counts
    its deliveries (the first one, never written, included), ``settled`` those that ended in a
    deliberate hand-back.
    """

    def __init__(self, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._clock = clock
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # WAL with synchronous=NORMAL survives a crash of the process (what this log is for);
        # the busy timeout lets replicas on one host share the file.
        self._db.execute("PRAGMA busy_timeout = 5000")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS deliveries (request_id TEXT PRIMARY KEY,"
            " started INTEGER NOT NULL, settled INTEGER NOT NULL, updated_at REAL NOT NULL)"
        )
        self._known: set[str] = set()
        self._writes = 0
        self._prune()

    async def arrived(self, request_id: str, *, redelivered: bool) -> int:
        if not redelivered:
            return 0
        row = self._write(
            "INSERT INTO deliveries VALUES (?, 2, 0, ?) ON CONFLICT (request_id) DO UPDATE"
            " SET started = started + 1, updated_at = excluded.updated_at"
            " RETURNING started, settled",
            (request_id, self._clock()),
        )
        self._remember(request_id)
        started, settled = row if row is not None else (2, 0)
        return started - 1 - settled

    async def settled(self, request_id: str, *, final: bool) -> None:
        if final:
            if request_id in self._known:
                self._known.discard(request_id)
                self._write("DELETE FROM deliveries WHERE request_id = ?", (request_id,))
            return
        self._write(
            "INSERT INTO deliveries VALUES (?, 1, 1, ?) ON CONFLICT (request_id) DO UPDATE"
            " SET settled = settled + 1, updated_at = excluded.updated_at",
            (request_id, self._clock()),
        )
        self._remember(request_id)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _remember(self, request_id: str) -> None:
        if len(self._known) >= _MAX_KNOWN:
            # Only a hint that a row may exist; rows left behind are pruned by age.
            self._known.clear()
        self._known.add(request_id)

    def _write(self, sql: str, params: tuple[object, ...]) -> tuple[int, int] | None:
        with self._lock:
            row: tuple[int, int] | None = self._db.execute(sql, params).fetchone()
            self._writes += 1
        if self._writes % _PRUNE_EVERY == 0:
            self._prune()
        return row

    def _prune(self) -> None:
        with self._lock:
            self._db.execute(
                "DELETE FROM deliveries WHERE updated_at < ?", (self._clock() - _HORIZON_SECONDS,)
            )
