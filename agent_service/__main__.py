"""``agent-service`` / ``python -m agent_service``: run until SIGTERM or SIGINT."""

from __future__ import annotations

import asyncio
import logging
import sys

from agent_service.settings import Settings, SettingsError, load_settings


async def _serve(settings: Settings) -> None:
    from agent_service.service import AgentService

    async with AgentService(settings) as service:
        await service.run_until_signal()


def main() -> int:
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"agent-service: {exc}", file=sys.stderr)
        return 2
    from agent_service.observability.logging import configure_logging

    configure_logging(settings.log_level, settings.log_format)
    try:
        asyncio.run(_serve(settings))
    except ValueError as exc:  # model configuration (no API key) and similar start-up errors
        logging.getLogger("agent_service").error("cannot start: %s", exc)
        print(f"agent-service: cannot start: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"agent-service: cannot start: {exc}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
