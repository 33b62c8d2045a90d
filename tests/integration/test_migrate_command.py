"""``agent-service migrate`` on a real PostgreSQL: it makes the schemas and the demo data once,
and a database that cannot be reached is reported in PostgreSQL's own words (exit code 3)."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable

import psycopg
import pytest

from harness.postgres import server_url, with_database

pytestmark = pytest.mark.e2e


async def migrate(database_url: str) -> tuple[int, str]:
    env = {**os.environ, "DATABASE_URL": database_url, "LOG_LEVEL": "WARNING"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent_service",
        "migrate",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, out.decode()


async def count(url: str, sql: str) -> int:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        row = await (await conn.execute(sql)).fetchone()
        assert row is not None
        return int(row[0])


async def test_migrate_makes_the_schemas_and_seeds_once(
    make_database: Callable[..., Awaitable[str]],
) -> None:
    url = await make_database(seeded=False)
    assert await migrate(url) == (0, "agent-service: PostgreSQL schemas are up to date\n")
    products = await count(url, "SELECT count(*) FROM products")
    slots = await count(url, "SELECT count(*) FROM appointment_slots")
    assert products > 0 and slots > 0
    assert await count(url, "SELECT count(*) FROM agent_request_state") == 0
    code, _ = await migrate(url)  # again: nothing changes, nothing is seeded twice
    assert code == 0
    assert await count(url, "SELECT count(*) FROM products") == products
    assert await count(url, "SELECT count(*) FROM appointment_slots") == slots


async def test_a_database_that_does_not_exist_is_named_in_the_error() -> None:
    code, out = await migrate(with_database(server_url(), "wa_test_no_such_database"))
    assert code == 3
    assert 'database "wa_test_no_such_database" does not exist' in out
    assert "DATABASE_URL" in out
