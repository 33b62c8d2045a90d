"""Where the service keeps what outlives one request: chosen once at start by ``DATABASE_URL``.

Without it (the embedded default, one host): the business data in an SQLite file every
replica on the host shares (``AGENT_STATE_DIR/business.sqlite3``), the delivery counts in
another, and the request states in this process's memory. Replicas on one host then book each
slot once (bookings are keyed by request in the shared file), but a redelivery that reaches
another replica runs the agent again: one answer per request across replicas needs
``DATABASE_URL``. With it: all three in PostgreSQL, shared by every replica on any host.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from agent_service.pipeline.dedup import Deduplicator
from agent_service.pipeline.deliveries import DeliveryLog, SqliteDeliveryLog
from agent_service.pipeline.request_state import MemoryRequestStates, RequestStates
from agent_service.settings import Settings

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

    from agent_service.agent.business.records import BusinessStore


class DatabaseUnavailable(OSError):
    """PostgreSQL (DATABASE_URL) could not be reached or prepared at start."""


@dataclass
class Backends:
    states: RequestStates
    deliveries: DeliveryLog
    pool: AsyncConnectionPool[Any] | None = None


async def open_pool(settings: Settings, stack: AsyncExitStack) -> AsyncConnectionPool[Any] | None:
    """The PostgreSQL pool of DATABASE_URL with its schemas in place (None without it)."""
    dsn = settings.database_dsn()
    if dsn is None:
        return None
    from agent_service.state.migrations import migrate
    from agent_service.state.postgres import DATABASE_ERRORS
    from agent_service.state.postgres import open_pool as open_postgres_pool

    try:
        pool = await open_postgres_pool(dsn, max_size=settings.database_pool_size)
    except DATABASE_ERRORS as exc:
        raise DatabaseUnavailable(f"cannot reach PostgreSQL (DATABASE_URL): {exc}") from exc
    stack.push_async_callback(pool.close)
    try:
        await migrate(pool)
    except DATABASE_ERRORS as exc:
        raise DatabaseUnavailable(f"cannot prepare PostgreSQL (DATABASE_URL): {exc}") from exc
    return pool


async def open_backends(
    settings: Settings, stack: AsyncExitStack, pool: AsyncConnectionPool[Any] | None
) -> Backends:
    """The request states and delivery counts; closed when ``stack`` closes."""
    if pool is None:
        deliveries = SqliteDeliveryLog(settings.deliveries_path())
        stack.callback(deliveries.close)
        dedup = Deduplicator(settings.dedup_ttl, settings.dedup_max_entries)
        return Backends(MemoryRequestStates(dedup, order_wait=settings.order_wait), deliveries)
    from agent_service.state.postgres import PostgresDeliveryLog, PostgresRequestStates

    states = PostgresRequestStates(
        pool,
        lease=settings.request_lease,
        order_wait=settings.order_wait,
        order_grace=settings.order_grace,
        ttl=settings.dedup_ttl,
    )
    await states.start()
    stack.push_async_callback(states.close)
    return Backends(states, PostgresDeliveryLog(pool), pool)


def open_business_store(
    settings: Settings, stack: AsyncExitStack, pool: AsyncConnectionPool[Any] | None
) -> BusinessStore:
    """The business data the tools use: PostgreSQL's with a pool, else the shared SQLite file."""
    if pool is not None:
        from agent_service.agent.business.postgres_store import PostgresBusinessStore

        return PostgresBusinessStore(pool)
    from agent_service.agent.business.sqlite_store import open_demo_database

    store = open_demo_database(settings.business_path())
    stack.push_async_callback(store.close)
    return store
