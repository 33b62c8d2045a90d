"""The delivery log that stops a poison request: counts of deliveries that never settled, in
memory and in its SQLite file (WAL, shared by the replicas of a host), pruned by age."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from agent_service.pipeline import deliveries
from agent_service.pipeline.deliveries import MemoryDeliveryLog, SqliteDeliveryLog

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


async def test_the_memory_log_counts_unsettled_deliveries() -> None:
    log = MemoryDeliveryLog()
    assert await log.arrived("a", redelivered=False) == 0 and log.rows == {}
    assert await log.arrived("a", redelivered=True) == 1  # the first one never settled
    await log.settled("a", final=False)
    assert log.rows == {"a": (2, 1)}
    assert await log.arrived("a", redelivered=True) == 1
    await log.settled("b", final=False)  # a first delivery handed back
    assert log.rows["b"] == (1, 1)
    await log.settled("a", final=True)
    assert log.rows == {"b": (1, 1)}


async def test_the_sqlite_log_counts_the_same_way(tmp_path: Path) -> None:
    log = SqliteDeliveryLog(tmp_path / "deep" / "er" / "deliveries.sqlite3")
    assert await log.arrived("a", redelivered=False) == 0
    assert await log.arrived("a", redelivered=True) == 1
    assert await log.arrived("a", redelivered=True) == 2
    await log.settled("a", final=False)
    assert await log.arrived("a", redelivered=True) == 2  # 4 began, 1 handed back
    await log.settled("b", final=False)
    assert await log.arrived("b", redelivered=True) == 0  # its only delivery was handed back
    log.close()


async def test_a_final_settle_deletes_the_row(tmp_path: Path) -> None:
    path = tmp_path / "deliveries.sqlite3"
    log = SqliteDeliveryLog(path)
    await log.arrived("a", redelivered=True)
    await log.settled("b", final=False)
    await log.settled("a", final=True)
    await log.settled("b", final=True)
    await log.settled("never seen", final=True)
    rows = sqlite3.connect(path).execute("SELECT count(*) FROM deliveries").fetchone()
    assert rows == (0,)
    assert await log.arrived("a", redelivered=True) == 1  # counting starts afresh
    log.close()


async def test_the_file_is_shared_safely(tmp_path: Path) -> None:
    log = SqliteDeliveryLog(tmp_path / "deliveries.sqlite3")
    db = log._db
    assert db.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    # Used from a worker thread too (check_same_thread=False).
    assert await asyncio.to_thread(lambda: asyncio.run(log.arrived("t", redelivered=True))) == 1
    log.close()


async def test_old_rows_are_pruned_every_500_writes(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "deliveries.sqlite3"
    log = SqliteDeliveryLog(path, clock=clock)
    await log.settled("old", final=False)  # write 1
    clock.now += 24 * 3600 + 1
    for i in range(498):  # writes 2..499
        await log.settled(f"r{i}", final=False)
    count = "SELECT count(*) FROM deliveries WHERE request_id = 'old'"
    assert sqlite3.connect(path).execute(count).fetchone() == (1,)
    await log.settled("last", final=False)  # write 500: prunes
    assert sqlite3.connect(path).execute(count).fetchone() == (0,)
    log.close()


async def test_a_row_from_a_restart_is_pruned_at_open(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "deliveries.sqlite3"
    log = SqliteDeliveryLog(path, clock=clock)
    await log.settled("old", final=False)
    log.close()
    clock.now += 24 * 3600 - 1
    SqliteDeliveryLog(path, clock=clock).close()
    count = "SELECT count(*) FROM deliveries"
    assert sqlite3.connect(path).execute(count).fetchone() == (1,)  # not old enough yet
    clock.now += 2
    SqliteDeliveryLog(path, clock=clock).close()
    assert sqlite3.connect(path).execute(count).fetchone() == (0,)


async def test_the_known_ids_are_a_bounded_hint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(deliveries, "_MAX_KNOWN", 2)
    log = SqliteDeliveryLog(tmp_path / "deliveries.sqlite3")
    await log.settled("a", final=False)
    await log.settled("b", final=False)
    assert log._known == {"a", "b"}  # at the limit, not over it
    await log.settled("c", final=False)
    assert log._known == {"c"}
    log.close()
