"""``agent-service`` / ``python -m agent_service``: run until SIGTERM or SIGINT.

``agent-service migrate`` creates or updates the PostgreSQL schemas of DATABASE_URL (the
business tables, seeded with the demo data when empty, and the request-state tables) and exits;
the service does the same at start, so this is for deployments that migrate before they roll.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
from urllib.parse import urlsplit

from agent_service.settings import Settings, SettingsError, load_settings


async def _serve(settings: Settings) -> None:
    from agent_service.service import AgentService

    async with AgentService(settings) as service:
        await service.run_until_signal()


async def _migrate(settings: Settings) -> str:
    from contextlib import AsyncExitStack

    from agent_service.state.backends import open_pool

    async with AsyncExitStack() as stack:
        pool = await open_pool(settings, stack)
        if pool is None:
            raise ValueError("migrate needs DATABASE_URL (the embedded SQLite needs no migration)")
    return "PostgreSQL schemas are up to date"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args not in ([], ["migrate"]):
        print("usage: agent-service [migrate]", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"agent-service: {exc}", file=sys.stderr)
        return 2
    from agent_service.observability.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    try:
        if args == ["migrate"]:
            print(f"agent-service: {asyncio.run(_migrate(settings))}")
        else:
            asyncio.run(_serve(settings))
    except ValueError as exc:  # model configuration (no API key) and similar start-up errors
        logging.getLogger("agent_service").error("cannot start: %s", exc)
        print(f"agent-service: cannot start: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"agent-service: cannot start: {_explain(exc, settings)}", file=sys.stderr)
        return 3
    return 0


def _explain(exc: OSError, settings: Settings) -> str:
    """The start-up error in the words of the setting to fix. A TLS failure comes wrapped
    (aiormq's connection error around ssl's), and its raw text blames a 'self-signed
    certificate in certificate chain' when the broker's CA is simply not the one trusted."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    if not isinstance(cause, ssl.SSLCertVerificationError):
        return str(exc)
    where = urlsplit(settings.amqp_url())
    return (
        f"the broker at {where.hostname}:{where.port or 5671} presented a TLS certificate this"
        f" service does not trust ({cause.verify_message}); set RABBITMQ_CA_FILE to the CA that"
        " signed it, and use a host in RABBITMQ_URL/RABBITMQ_HOST that the certificate names"
    )


if __name__ == "__main__":
    sys.exit(main())
