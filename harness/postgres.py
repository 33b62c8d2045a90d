"""Throwaway PostgreSQL databases for runs and tests: created on a server, dropped after.

The server is ``HARNESS_POSTGRES_URL`` (default: this machine's, user postgres, trust
authentication). Each database is named ``wa_test_<random>``, so runs and test sessions side by
side never meet, and nothing else on the server is touched. A database can start from a
template that was migrated and seeded once (``TemplateDatabase``): a copy takes a fraction of
a second where migrating and seeding takes several statements.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
from dataclasses import dataclass
from types import TracebackType
from typing import Self
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

DEFAULT_SERVER_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
PREFIX = "wa_test_"


def server_url() -> str:
    return os.environ.get("HARNESS_POSTGRES_URL", "").strip() or DEFAULT_SERVER_URL


def with_database(url: str, name: str) -> str:
    """``url`` pointing at database ``name`` instead of its own."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


def describe(url: str) -> str:
    """Host, port and database of ``url``, without credentials (for messages and reports)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 5432}{parts.path}"


class PostgresUnavailable(RuntimeError):
    pass


async def _admin(url: str) -> psycopg.AsyncConnection[object]:
    try:
        return await psycopg.AsyncConnection.connect(url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        raise PostgresUnavailable(
            f"cannot reach PostgreSQL at {describe(url)} (HARNESS_POSTGRES_URL): {exc}"
        ) from exc


@dataclass
class ThrowawayDatabase:
    """``async with ThrowawayDatabase() as db: db.url`` -- a new empty database, or a copy of
    ``template``; dropped on exit (connections still open to it are ended)."""

    server: str = ""
    template: str | None = None
    name: str = ""

    def __post_init__(self) -> None:
        self.server = self.server or server_url()
        self.name = self.name or PREFIX + secrets.token_hex(6)

    @property
    def url(self) -> str:
        return with_database(self.server, self.name)

    async def __aenter__(self) -> Self:
        conn = await _admin(self.server)
        async with conn:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name))
            if self.template is not None:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(self.template))
            await conn.execute(statement)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await drop_database(self.server, self.name)


async def drop_database(server: str, name: str) -> None:
    with contextlib.suppress(PostgresUnavailable):
        conn = await _admin(server)
        async with conn:
            # FORCE: a killed replica's connections may linger for a moment.
            await conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )


class TemplateDatabase(ThrowawayDatabase):
    """A throwaway database migrated and seeded once, then closed so it can be copied."""

    async def __aenter__(self) -> Self:
        await super().__aenter__()
        from agent_service.state.migrations import migrate
        from agent_service.state.postgres import open_pool

        pool = await open_pool(self.url, max_size=1)
        try:
            await migrate(pool)
        finally:
            await pool.close()
        return self

    def copy(self) -> ThrowawayDatabase:
        return ThrowawayDatabase(self.server, template=self.name)
