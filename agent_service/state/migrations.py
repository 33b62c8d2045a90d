"""Creating or updating the PostgreSQL schemas: at start, or by ``agent-service migrate``.

Both steps are idempotent and run under advisory locks, so replicas starting together neither
race nor seed the demo data twice.
"""

from __future__ import annotations

from typing import Any

from psycopg_pool import AsyncConnectionPool

from agent_service.agent.business.postgres_store import migrate as migrate_business
from agent_service.state.postgres import migrate_request_states


async def migrate(pool: AsyncConnectionPool[Any]) -> bool:
    """The business tables (seeded with the demo data when empty) and the request-state tables;
    True when this call seeded the demo data."""
    seeded = await migrate_business(pool)
    await migrate_request_states(pool)
    return seeded
